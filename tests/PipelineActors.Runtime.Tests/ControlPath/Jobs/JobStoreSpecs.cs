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

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
