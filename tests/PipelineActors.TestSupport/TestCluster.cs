using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.TestSupport;

/// <summary>What an in-process test cluster is made of: the head's roles, how many workers join it, logs, TLS.</summary>
public sealed record TestClusterOptions
{
    /// <summary>The seed node's roles; it forms the cluster on its own before any worker starts.</summary>
    public IReadOnlyList<string> HeadRoles { get; init; } = [Roles.Coordinator, Roles.Ingest];

    /// <summary>Nodes with the worker role only that join the head, each with its own model cache.</summary>
    public int Workers { get; init; }

    /// <summary>Each node's Akka log to a file in the cluster's folder, not the console (specs that read the console, long runs).</summary>
    public bool LogToFiles { get; init; }

    /// <summary>With certificates every node speaks akka.ssl.tcp, with a certificate from their CA for its own roles.</summary>
    public TestCertificates? Certificates { get; init; }
}

/// <summary>
/// Pipeline nodes in this process that form one Akka cluster on 127.0.0.1: real sockets on ports the OS picks, each node started
/// as production starts it (<see cref="PipelineNode.Start"/>: the project's HOCON, serializers and guards). The head seeds the
/// cluster and is Up before the workers start; every worker is Up before <see cref="StartAsync"/> returns. Disposing it shuts
/// the workers down, then the head, then removes the nodes' folder.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    /// <summary>How long a node may take to be Up: generous, since the test machine is shared and loaded.</summary>
    public static readonly TimeSpan UpTimeout = TimeSpan.FromSeconds(30);

    private readonly List<PipelineNode> _workers = [];
    private readonly List<ClusterTls> _tls = [];

    private TestCluster(string folder) => Folder = folder;

    /// <summary>The nodes' folder (model caches, logs); a test may keep its own files here too. Removed with the cluster.</summary>
    public string Folder { get; }

    /// <summary>The seed node (coordinator and ingest unless the options say otherwise).</summary>
    public PipelineNode Head { get; private set; } = null!;

    /// <summary>The workers, in the order they were started.</summary>
    public IReadOnlyList<PipelineNode> Workers => _workers;

    /// <summary>Every node: the head first.</summary>
    public IEnumerable<PipelineNode> Nodes => [Head, .. _workers];

    /// <summary>Starts the head, waits until it is Up, starts the workers against it and waits until each is Up.</summary>
    public static async Task<TestCluster> StartAsync(TestClusterOptions options)
    {
        var cluster = new TestCluster(Directory.CreateTempSubdirectory("pa-test-cluster-").FullName);
        try
        {
            var headHostsStages = options.HeadRoles.Contains(Roles.Worker);
            cluster.Head = cluster.Start(options, "head", options.HeadRoles, seeds: [], cache: headHostsStages);
            await cluster.Head.WaitUntilUpAsync(UpTimeout);
            for (var i = 0; i < options.Workers; i++)
            {
                cluster._workers.Add(cluster.Start(options, $"worker-{i}", [Roles.Worker], [cluster.Head.SeedUri], cache: true));
            }

            foreach (var worker in cluster._workers)
            {
                await worker.WaitUntilUpAsync(UpTimeout);
            }

            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Shuts every node down (the worker started last first, the head last), then drops their TLS and folder; as nested
    /// <c>await using</c> would, a node whose shutdown throws does not keep the others running.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await ShutDownWorkersAsync(_workers.Count - 1);
        }
        finally
        {
            if (Head is not null)
            {
                await Head.DisposeAsync();
            }

            _tls.ForEach(t => t.Dispose());
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException)
            {
                // A log file may still be open for a moment while a system stops; the temp folder is the system's to clean then.
            }
        }
    }

    private async Task ShutDownWorkersAsync(int last)
    {
        if (last < 0)
        {
            return;
        }

        try
        {
            await _workers[last].DisposeAsync();
        }
        finally
        {
            await ShutDownWorkersAsync(last - 1);
        }
    }

    private PipelineNode Start(TestClusterOptions options, string name, IReadOnlyList<string> roles, IReadOnlyList<string> seeds, bool cache)
    {
        var node = new NodeOptions
        {
            Roles = roles,
            Seeds = seeds,
            ModelCache = cache ? Path.Combine(Folder, name, "cache") : null,
            LogFile = options.LogToFiles ? Path.Combine(Folder, $"{name}.log") : null,
        };
        ClusterTls? tls = null;
        if (options.Certificates is { } certificates)
        {
            tls = certificates.Tls([.. roles]);
            _tls.Add(tls);
        }

        return PipelineNode.Start(node, tls: tls);
    }
}
