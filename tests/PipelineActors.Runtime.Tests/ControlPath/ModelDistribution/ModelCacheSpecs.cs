using System.Security.Cryptography;
using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Tests.DataPath.Stages;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.ControlPath.ModelDistribution;

/// <summary>
/// The model cache against hostile names and files (review S2, S3, S8): a SHA from the wire with a path in it, a link
/// planted where a model should be, a model changed after it was checked; and its size limit.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ModelCacheSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly TinyNetStages _stages = new();
    private readonly string _root = Directory.CreateTempSubdirectory("pa-cache-specs-").FullName;

    public ModelCacheSpecs()
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
    }

    private string CacheFolder => Path.Combine(_root, "cache");

    [Fact]
    public void A_sha_with_a_path_in_it_is_never_made_a_path_deletes_nothing_and_a_fetch_of_it_writes_nothing()
    {
        var victims = Directory.CreateDirectory(Path.Combine(_root, "victims")).FullName;
        var victim = Path.Combine(victims, "prod.onnx");
        File.WriteAllText(victim, "the customer's model");
        var cache = new ModelCache(CacheFolder);
        var crafted = Path.Combine(victims, "prod");

        Assert.False(cache.Has(crafted));
        Assert.False(cache.Has(new string('A', 64))); // upper case is not how the cache names files
        Assert.False(cache.Has("../" + new string('a', 61)));
        Assert.Throws<InvalidDataException>(() => cache.PathOf(crafted));
        Assert.Equal("the customer's model", File.ReadAllText(victim));

        var store = Sys.ActorOf(ModelStoreActor.Props(new Dictionary<string, string> { [crafted] = _stages.MiddlePath }));
        ChildActorOf(FileFetcher.Props(cache, new StageFile(crafted, 10), store));
        var fetched = ExpectMsg<FileFetched>(TimeSpan.FromSeconds(10));

        Assert.NotNull(fetched.Error);
        Assert.Contains("not a SHA-256", fetched.Error, StringComparison.Ordinal);
        Assert.Equal([victim], Directory.GetFiles(victims));
        Assert.Empty(Directory.GetFiles(CacheFolder));
    }

    [Fact]
    public void A_deploy_whose_sha_is_a_path_fails_with_the_reason_and_the_file_it_names_stays()
    {
        var victim = Path.Combine(_root, "victim.onnx");
        File.WriteAllText(victim, "not a model, and not to be deleted");
        var cache = new ModelCache(CacheFolder);
        var store = Sys.ActorOf(ModelStoreActor.Props(cache));
        var agent = Sys.ActorOf(WorkerAgent.Props(CreateTestProbe().Ref, cache, 1, 65536));
        var spec = _stages.Middle with { File = new StageFile(Path.Combine(_root, "victim"), 10) };

        agent.Tell(new DeployStage("job-1", 1, 3, spec, store), TestActor);
        var failed = ExpectMsg<StageDeployFailed>(TimeSpan.FromSeconds(10));

        Assert.Contains("not a SHA-256", failed.Reason, StringComparison.Ordinal);
        Assert.True(File.Exists(victim));
        Assert.Equal([victim], Directory.GetFiles(_root)); // no partial file beside it either
    }

    [Fact]
    public void A_link_planted_in_the_cache_is_no_copy_and_no_store_serves_what_it_points_at()
    {
        var secret = Path.Combine(_root, "id_rsa");
        File.WriteAllText(secret, "-----BEGIN PRIVATE KEY----- not for the network");
        var sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(secret)));
        var cache = new ModelCache(CacheFolder);
        var link = Path.Combine(CacheFolder, sha + ".onnx");
        File.CreateSymbolicLink(link, secret);

        Assert.False(cache.Has(sha));
        foreach (var props in new[] { ModelStoreActor.Props(cache), ModelStoreActor.Props(new Dictionary<string, string> { [sha] = link }) })
        {
            var store = Sys.ActorOf(props);
            store.Tell(new FetchFileChunk(sha, 0), TestActor);
            var answer = ExpectMsg<object>(TimeSpan.FromSeconds(5));
            Assert.IsType<FileUnavailable>(answer);
        }

        Assert.Throws<IOException>(() => ModelCache.ReadVerified(link, sha));
    }

    [Fact]
    public void A_stage_file_changed_after_it_was_checked_is_not_loaded_and_the_stage_says_why()
    {
        var cache = new ModelCache(CacheFolder);
        var sha = _stages.Middle.File.Sha256;
        var temp = Path.Combine(_root, "fetched.partial");
        File.Copy(_stages.MiddlePath, temp);
        cache.Store(sha, temp);
        Assert.True(cache.Has(sha));
        Assert.Equal(File.ReadAllBytes(_stages.MiddlePath), ModelCache.ReadVerified(cache.PathOf(sha), sha));

        // Someone with write access changes the file once it is known good: the next load hashes what it loads.
        var bytes = File.ReadAllBytes(cache.PathOf(sha));
        bytes[^1] ^= 0x5A;
        File.WriteAllBytes(cache.PathOf(sha), bytes);
        Assert.True(cache.Has(sha)); // still believed verified: only the load itself can catch this

        ChildActorOf(StageActor.Props(3, _stages.Middle, cache, 1, 65536));
        var failed = ExpectMsg<StageLoadFailed>(TimeSpan.FromSeconds(20));
        Assert.Contains("changed after it was fetched", failed.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cache_with_a_size_limit_evicts_the_least_recently_used_models_and_never_one_in_use()
    {
        var cache = new ModelCache(CacheFolder, maxBytes: 2500);
        var a = Put(cache, 1);
        var b = Put(cache, 2);
        Assert.True(cache.Has(a)); // a used after b: b is now the least recently used

        var c = Put(cache, 3);

        Assert.Equal(new[] { a, c }.Order(), Cached());
        using (cache.Use(a))
        {
            Assert.True(cache.Has(c)); // c is used later than a, but a is held by a stage
            var d = Put(cache, 4);
            Assert.Equal(new[] { a, d }.Order(), Cached());
        }

        Assert.False(cache.Has(b));
        Assert.False(cache.Has(c));

        string Put(ModelCache into, int seed)
        {
            var data = new byte[1000];
            new Random(seed).NextBytes(data);
            var sha = Convert.ToHexStringLower(SHA256.HashData(data));
            var temp = Path.Combine(_root, $"{seed}.partial");
            File.WriteAllBytes(temp, data);
            into.Store(sha, temp);
            return sha;
        }

        List<string> Cached() =>
            Directory.GetFiles(CacheFolder, "*.onnx").Select(Path.GetFileNameWithoutExtension).Order().ToList()!;
    }

    [Fact]
    public void The_cache_folder_is_made_private_to_this_user()
    {
        var cache = new ModelCache(CacheFolder);

        Assert.Equal(PrivateFiles.OwnerOnly, File.GetUnixFileMode(cache.Folder));
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _stages.Dispose();
            Directory.Delete(_root, recursive: true);
        }
    }
}
