using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.DataPath.Monitoring;

/// <summary>
/// Subscribes to the monitor topic and keeps what every job, stage and worker reports in a <see cref="MonitorState"/>; answers
/// <see cref="GetMonitorSnapshot"/> with the jobs and the cluster's members as they stand. Runs on a node with the monitor role,
/// which takes no part in placement.
/// </summary>
public sealed class MonitorActor : ReceiveActor
{
    private readonly MonitorState _state = new();

    public MonitorActor()
    {
        Receive<SubscribeAck>(_ => { });
        Receive<StageReport>(r => _state.Add(r, MonitorTopic.Now()));
        Receive<WorkerStatus>(w => _state.Add(NodeAddress.Of(NodeAddress.NodeOf(Context.System, w.Agent)), w));
        Receive<PipelineReport>(r => _state.Add(r, MonitorTopic.Now()));
        Receive<PipelineEvent>(e => _state.Add(e, MonitorTopic.Now()));
        Receive<GetMonitorSnapshot>(_ => Sender.Tell(_state.Snapshot(MonitorTopic.Now(), Members(Context.System))));
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new MonitorActor());

    protected override void PreStart() =>
        DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(Topics.Pipeline, Self));

    private static List<ClusterMember> Members(ActorSystem system)
    {
        var state = Akka.Cluster.Cluster.Get(system).State;
        return state.Members.Select(m => new ClusterMember(
            NodeAddress.Of(m.Address),
            m.Roles.Where(r => !r.StartsWith("dc-", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList(),
            m.Status.ToString(),
            !state.Unreachable.Contains(m))).ToList();
    }
}
