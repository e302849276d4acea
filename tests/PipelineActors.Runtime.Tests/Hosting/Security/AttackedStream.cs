using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>
/// What the exploit specs attack: tinynet in one stage on a head and one worker, streaming <see cref="Frames"/> frames at 15 fps
/// with its first plan live, and a second actor system on 127.0.0.1 (the attacker) that reaches the nodes' ports over plain TCP.
/// Disposing it stops the attacker, then the cluster, and removes the model with the cluster's folder.
/// </summary>
internal sealed class AttackedStream : IAsyncDisposable
{
    public const int Frames = 60;

    private AttackedStream(
        TestCluster cluster, PreparedModel prepared, CollectingResultWriter writer, IngestSession session, PlanActivated plan, ActorSystem attacker)
    {
        (Cluster, Prepared, Writer, Session, Plan, Attacker) = (cluster, prepared, writer, session, plan, attacker);
    }

    public TestCluster Cluster { get; }

    public PipelineNode Head => Cluster.Head;

    public PipelineNode Worker => Cluster.Workers[0];

    public PreparedModel Prepared { get; }

    public CollectingResultWriter Writer { get; }

    public IngestSession Session { get; }

    /// <summary>The stream's first live plan.</summary>
    public PlanActivated Plan { get; }

    public ActorSystem Attacker { get; }

    public static async Task<AttackedStream> StartAsync(string jobId)
    {
        var cluster = await TestCluster.StartAsync(new TestClusterOptions { Workers = 1 });
        try
        {
            var prepared = ZooJobs.Prepare(cluster.Folder, "tinynet", parts: 1);
            var writer = new CollectingResultWriter();
            var source = new SyntheticSource(prepared.SourceInputs, 15, Frames, live: false);
            var session = IngestSession.Start(cluster.Head, prepared, source, writer, TestStreams.Settings(), jobId);
            var plan = await TestStreams.WaitForPlanAsync(session);
            var attacker = ActorSystem.Create(PipelineConfig.SystemName, TestNodes.Config(Roles.Worker));
            return new AttackedStream(cluster, prepared, writer, session, plan, attacker);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The attacker's ref to an actor of <paramref name="node"/>, by the path anyone can read off a port and a name.</summary>
    public IActorRef Remote(IActorRef actor, PipelineNode node) =>
        ((ExtendedActorSystem)Attacker).Provider.ResolveActorRef(actor.Path.ToStringWithAddress(node.Address));

    public async ValueTask DisposeAsync()
    {
        await Attacker.Terminate();
        await Cluster.DisposeAsync();
    }
}
