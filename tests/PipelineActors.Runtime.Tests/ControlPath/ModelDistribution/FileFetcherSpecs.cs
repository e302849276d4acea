using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Tests.DataPath.Stages;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.ControlPath.ModelDistribution;

/// <summary>
/// Stage files fetched onto a disk that refuses them (the cache folder turned into a plain file, as a
/// full or unmounted disk would): the fetcher retries with backoff, and a deploy waiting on it fails
/// with the disk's reason in seconds instead of the supervisor's 60 s timeout.
/// </summary>
public sealed class FileFetcherSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly TinyNetStages _stages = new();
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-cache-").FullName;

    public FileFetcherSpecs()
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
    }

    private StageFile File => _stages.Middle.File;

    [Fact]
    public void A_fetch_onto_a_disk_that_refuses_the_file_for_a_moment_is_retried_and_caches_the_file_once_the_disk_takes_it()
    {
        var cache = new ModelCache(_folder);
        var store = Sys.ActorOf(ModelStoreActor.Props(new Dictionary<string, string> { [File.Sha256] = _stages.MiddlePath }));
        BreakCacheFolder();

        ChildActorOf(FileFetcher.Props(cache, File, store, new FetchRetry(6, TimeSpan.FromMilliseconds(200))));
        ExpectNoMsg(TimeSpan.FromMilliseconds(500)); // refused twice by now, and still trying
        RepairCacheFolder();

        var fetched = ExpectMsg<FileFetched>(TimeSpan.FromSeconds(10));
        Assert.Null(fetched.Error);
        Assert.True(cache.Has(File.Sha256));
        Assert.Equal([File.Sha256 + ".onnx"], Directory.GetFiles(_folder).Select(Path.GetFileName));
    }

    [Fact]
    public void A_fetch_onto_a_disk_that_keeps_refusing_the_file_fails_after_its_tries_with_the_disks_reason()
    {
        var cache = new ModelCache(_folder);
        var store = Sys.ActorOf(ModelStoreActor.Props(new Dictionary<string, string> { [File.Sha256] = _stages.MiddlePath }));
        BreakCacheFolder();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        ChildActorOf(FileFetcher.Props(cache, File, store, new FetchRetry(3, TimeSpan.FromMilliseconds(100))));
        var fetched = ExpectMsg<FileFetched>(TimeSpan.FromSeconds(10));

        Assert.NotNull(fetched.Error);
        Assert.Contains("refused the file 3 times", fetched.Error, StringComparison.Ordinal);
        Assert.Contains(_folder, fetched.Error, StringComparison.Ordinal);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(280), $"gave up after {clock.Elapsed.TotalMilliseconds:0} ms: no backoff");
    }

    [Fact]
    public void A_deploy_on_a_worker_whose_disk_refuses_the_stage_file_fails_in_seconds_with_the_reason_and_succeeds_once_the_disk_is_back()
    {
        var cache = new ModelCache(_folder);
        var store = Sys.ActorOf(ModelStoreActor.Props(new Dictionary<string, string> { [File.Sha256] = _stages.MiddlePath }));
        var agent = Sys.ActorOf(WorkerAgent.Props(CreateTestProbe().Ref, cache, 1, 65536));
        var deploy = new DeployStage("job-1", 1, 3, _stages.Middle, store);
        BreakCacheFolder();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        agent.Tell(deploy, TestActor);
        var failed = ExpectMsg<StageDeployFailed>(TimeSpan.FromSeconds(10));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the deploy failed after {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Contains("fetching the stage file failed", failed.Reason, StringComparison.Ordinal);
        Assert.Contains("refused the file", failed.Reason, StringComparison.Ordinal);

        // The failed fetch is forgotten: the next deploy fetches again, and this time the disk takes the file.
        RepairCacheFolder();
        agent.Tell(deploy with { Epoch = 2 }, TestActor);
        var deployed = ExpectMsg<StageDeployed>(TimeSpan.FromSeconds(30));
        Assert.Equal((2L, 1), (deployed.Epoch, deployed.Index));
        Assert.True(cache.Has(File.Sha256));
    }

    [Fact]
    public void A_deploy_whose_fetcher_is_stopped_midway_fails_at_once_and_the_next_deploy_fetches_again()
    {
        var cache = new ModelCache(_folder);
        var silentStore = CreateTestProbe();
        var agent = Sys.ActorOf(WorkerAgent.Props(CreateTestProbe().Ref, cache, 1, 65536));
        agent.Tell(new DeployStage("job-1", 1, 3, _stages.Middle, silentStore.Ref), TestActor);
        silentStore.ExpectMsg<FetchFileChunk>(TimeSpan.FromSeconds(5));

        Sys.Stop(silentStore.LastSender); // the fetcher dies without a word, as one that crashed does
        var failed = ExpectMsg<StageDeployFailed>(TimeSpan.FromSeconds(3));
        Assert.Contains("stopped before the file was cached", failed.Reason, StringComparison.Ordinal);

        var store = Sys.ActorOf(ModelStoreActor.Props(new Dictionary<string, string> { [File.Sha256] = _stages.MiddlePath }));
        agent.Tell(new DeployStage("job-1", 2, 3, _stages.Middle, store), TestActor);
        Assert.Equal(2, ExpectMsg<StageDeployed>(TimeSpan.FromSeconds(30)).Epoch);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing)
        {
            return;
        }

        _stages.Dispose();
        if (System.IO.File.Exists(_folder))
        {
            System.IO.File.Delete(_folder);
        }

        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary>The cache folder becomes a plain file: every write under it fails with an IOException ("Not a directory").</summary>
    private void BreakCacheFolder()
    {
        Directory.Delete(_folder, recursive: true);
        System.IO.File.WriteAllText(_folder, "not a folder");
    }

    private void RepairCacheFolder()
    {
        System.IO.File.Delete(_folder);
        Directory.CreateDirectory(_folder);
    }
}
