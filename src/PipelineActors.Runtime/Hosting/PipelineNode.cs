using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.ControlPath.Supervision;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.ControlPath.Jobs;
using PipelineActors.Runtime.Hosting.Jobs;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.Hosting;

/// <summary>
/// One member of the pipeline cluster in this process: the ActorSystem with the cluster provider,
/// the supervisor singleton (coordinator role) and its proxy, and the worker agent (worker role).
/// The node service, <c>pipeline run</c> and the tests all start nodes through this.
/// </summary>
public sealed class PipelineNode : IAsyncDisposable
{
    private PipelineNode(ActorSystem system, IActorRef supervisor, IActorRef jobs, IActorRef? agent, NodeOptions options, PipelineSettings settings)
    {
        System = system;
        Supervisor = supervisor;
        Jobs = jobs;
        Agent = agent;
        Options = options;
        Settings = settings;
    }

    /// <summary>This node's <c>pipeline.*</c> settings, read and checked once at start.</summary>
    public PipelineSettings Settings { get; }

    public ActorSystem System { get; }

    /// <summary>Proxy to the supervisor singleton, wherever it runs.</summary>
    public IActorRef Supervisor { get; }

    /// <summary>Proxy to the job registry singleton (submit, list, status, stop).</summary>
    public IActorRef Jobs { get; }

    /// <summary>The ingest role's job host, null on other nodes.</summary>
    public IActorRef? JobHost { get; private init; }

    /// <summary>What a harness in this process changes in the runs of this node's jobs (<c>pipeline run</c>); unused by a service.</summary>
    public JobRunHookTable JobHooks { get; private init; } = new();

    public IActorRef? Agent { get; }

    public NodeOptions Options { get; }

    public Akka.Actor.Address Address => Akka.Cluster.Cluster.Get(System).SelfAddress;

    /// <summary>This node's address as a seed URI (<c>akka.ssl.tcp://pipeline@host:port</c> with TLS, <c>akka.tcp://</c> without).</summary>
    public string SeedUri => Address.ToString();

    /// <summary>
    /// Starts the node and joins the seeds; with no seeds it forms a cluster of its own. With <paramref name="tls"/> the node
    /// speaks akka.ssl.tcp with mutual authentication and runs the guard that checks members' roles against certificates.
    /// </summary>
    public static PipelineNode Start(NodeOptions options, IPlacementPolicy? policy = null, ClusterTls? tls = null)
    {
        var config = PipelineConfig.Build(options);
        // Checked before the ActorSystem starts: a bad value is one sentence here, not a failure deep inside an actor.
        var settings = PipelineSettings.From(config);
        var declared = options.Roles.Contains(Roles.Ingest) ? DeclaredJob.From(config, node: string.Empty) : [];
        var system = tls is null ? ActorSystem.Create(PipelineConfig.SystemName, config)
            : ActorSystem.Create(PipelineConfig.SystemName, tls.Setup(config));
        if (tls is not null)
        {
            system.ActorOf(CertificateRoleGuard.Props(tls), CertificateRoleGuard.Name);
        }

        var cluster = Akka.Cluster.Cluster.Get(system);
        var guard = tls is null ? null : Security.PeerHandshakeShutdownGuard.Install(system);
        if (options.Seeds.Count == 0)
        {
            cluster.Join(cluster.SelfAddress);
        }

        if (options.Roles.Contains(Roles.Coordinator))
        {
            system.ActorOf(
                ClusterSingletonManager.Props(
                    PipelineSupervisor.Props(policy),
                    PoisonPill.Instance,
                    ClusterSingletonManagerSettings.Create(system).WithRole(Roles.Coordinator).WithSingletonName("supervisor")),
                "supervisor");
        }

        var proxy = system.ActorOf(
            ClusterSingletonProxy.Props("/user/supervisor",
                ClusterSingletonProxySettings.Create(system).WithRole(Roles.Coordinator).WithSingletonName("supervisor")),
            "supervisor-proxy");

        if (options.Roles.Contains(Roles.Coordinator))
        {
            system.ActorOf(
                ClusterSingletonManager.Props(
                    JobRegistry.Props(settings),
                    PoisonPill.Instance,
                    ClusterSingletonManagerSettings.Create(system).WithRole(Roles.Coordinator).WithSingletonName(JobRegistry.Name)),
                JobRegistry.Name);
        }

        var jobs = system.ActorOf(
            ClusterSingletonProxy.Props(
                $"/user/{JobRegistry.Name}",
                ClusterSingletonProxySettings.Create(system).WithRole(Roles.Coordinator).WithSingletonName(JobRegistry.Name)),
            "jobs-proxy");

        IActorRef? agent = null;
        if (options.Roles.Contains(Roles.Worker))
        {
            var cache = new ModelCache(settings.ModelCacheFolder, settings.CacheMaxBytes);
            agent = system.ActorOf(
                WorkerAgent.Props(proxy, cache, settings.IntraOpThreads, settings.ChunkBytes, settings.LinkDelay),
                WorkerAgent.Name);
        }

        IActorRef? host = null;
        var hooks = new JobRunHookTable();
        if (options.Roles.Contains(Roles.Ingest))
        {
            var context = new JobRunContext(
                settings,
                proxy,
                new ModelCache(settings.ModelCacheFolder, settings.CacheMaxBytes),
                Path.Combine(settings.StateFolder, "stages"),
                name => DataPath.Sink.Destinations.ResultContext.ForNode(system, name))
            {
                Hooks = hooks,
            };
            // Declared jobs run here: they name this node, now that its address (and port, if it was 0) is known.
            var here = NodeAddress.Of(cluster.SelfAddress);
            var local = declared.Select(d => d with { Spec = d.Spec with { IngestNode = here } }).ToList();
            host = system.ActorOf(Hosting.Jobs.JobHost.Props(jobs, context, local), Hosting.Jobs.JobHost.Name);
        }

        return new PipelineNode(system, proxy, jobs, agent, options, settings) { JobHost = host, JobHooks = hooks, ShutdownGuard = guard };
    }

    /// <summary>Waits until this node is an Up member of the cluster.</summary>
    public async Task WaitUntilUpAsync(TimeSpan timeout)
    {
        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(System).RegisterOnMemberUp(() => up.TrySetResult());
        if (await Task.WhenAny(up.Task, Task.Delay(timeout)) != up.Task)
        {
            throw new TimeoutException($"Node {Address} did not join the cluster within {timeout.TotalSeconds:0} s.");
        }
    }

    /// <summary>Holds a shutdown Akka asked for over a peer's failed TLS handshake (null without TLS).</summary>
    public Security.PeerHandshakeShutdownGuard? ShutdownGuard { get; private init; }

    /// <summary>Leaves the cluster gracefully (CoordinatedShutdown) and stops the ActorSystem.</summary>
    public async ValueTask DisposeAsync() => await ShutDown();

    /// <summary>Leaves the cluster gracefully and stops the ActorSystem, also after a shutdown the guard held.</summary>
    public Task ShutDown()
    {
        ShutdownGuard?.Release();
        return CoordinatedShutdown.Get(System).Run(CoordinatedShutdown.ClrExitReason.Instance);
    }
}
