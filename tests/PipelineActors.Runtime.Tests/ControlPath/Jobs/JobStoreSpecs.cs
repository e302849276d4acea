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

    [Fact]
    public void A_jobs_codec_and_first_hop_survive_the_file_and_a_file_written_before_them_reads_as_exact_and_raw()
    {
        var path = Path.Combine(PrivateFiles.EnsureFolder(Path.Combine(_root, "state-fields")), "jobs.json");
        var spec = new Protocol.JobSpec(
            "cam-1", new string('a', 64), "blazeface.onnx", 1, "{}", "video:/tmp/v.avi", [], [], 0, 0, 0, string.Empty,
            Akka.Actor.ActorRefs.Nobody, "int8", "jpeg:75");
        var status = new Protocol.JobStatus("cam-1", Protocol.JobStates.Running, string.Empty, 0, 0, 0, 0, 0, 0, 0, -1, [], string.Empty, 0);
        var store = new JobStore(path);
        store.Save([(spec, status)]);

        var loaded = Assert.Single(store.Load()).Spec;
        Assert.Equal("int8", loaded.Codec);
        Assert.Equal("jpeg:75", loaded.FirstHop);

        // The file as the version before wrote it: no codec, no first hop.
        var old = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        old[0]!["spec"]!.AsObject().Remove("codec");
        old[0]!["spec"]!.AsObject().Remove("firstHop");
        File.WriteAllText(path, old.ToJsonString());
        var before = Assert.Single(store.Load()).Spec;
        Assert.Equal("exact", before.Codec);
        Assert.Equal("raw", before.FirstHop);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
