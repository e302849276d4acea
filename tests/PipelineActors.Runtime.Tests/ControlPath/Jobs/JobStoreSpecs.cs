using PipelineActors.Runtime.ControlPath.Jobs;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.Tests.ControlPath.Jobs;

/// <summary>The registry's jobs file holds camera URLs with their passwords: it lives where only this user can read.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class JobStoreSpecs : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("pa-jobstore-").FullName;

    [Fact]
    public void The_jobs_file_is_written_into_a_folder_only_this_user_may_enter()
    {
        var state = Path.Combine(_root, "state");
        Directory.CreateDirectory(state);
        File.SetUnixFileMode(state, (UnixFileMode)0x1ED); // 0755, as mkdir leaves it

        var store = new JobStore(Path.Combine(state, "jobs.json"));
        store.Save([]);

        Assert.Equal(PrivateFiles.OwnerOnly, File.GetUnixFileMode(state));
        Assert.Empty(store.Load());
    }

    [Fact]
    public void The_jobs_file_is_0600_even_where_an_earlier_version_left_it_readable_and_a_stale_temporary_is_not_written_through()
    {
        var state = PrivateFiles.EnsureFolder(Path.Combine(_root, "state-0600"));
        var path = Path.Combine(state, "jobs.json");
        File.WriteAllText(path, "[]");
        File.SetUnixFileMode(path, (UnixFileMode)0x1A4); // 0644, as File.WriteAllText leaves it under umask 022
        var elsewhere = Path.Combine(_root, "elsewhere.txt");
        File.WriteAllText(elsewhere, "untouched");
        File.CreateSymbolicLink($"{path}.{Environment.ProcessId}.tmp", elsewhere);

        new JobStore(path).Save([]);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.False(PrivateFiles.IsLink(path));
        Assert.Equal("untouched", File.ReadAllText(elsewhere));
        Assert.Empty(new JobStore(path).Load());
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
