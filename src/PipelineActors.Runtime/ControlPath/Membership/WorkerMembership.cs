using Akka.Actor;
using Akka.Cluster;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.ControlPath.Membership;

/// <summary>
/// A worker's membership change in the supervisor's terms. The supervisor turns Akka.Cluster's
/// events into these and also accepts them as messages, so a spec can drive membership without a
/// cluster (Akka's <see cref="Member"/> cannot be built outside Akka).
/// </summary>
public abstract record WorkerMembership(Address Node)
{
    /// <summary>The change a cluster event means for the workers, or null when it means none.</summary>
    public static WorkerMembership? From(object clusterEvent) => clusterEvent switch
    {
        ClusterEvent.MemberUp up when up.Member.HasRole(Roles.Worker) => new WorkerUp(up.Member.Address),
        ClusterEvent.UnreachableMember u => new WorkerLost(u.Member.Address, LossKind.Unreachable),
        ClusterEvent.MemberLeft l => new WorkerLost(l.Member.Address, LossKind.Leaving),
        ClusterEvent.MemberExited e => new WorkerLost(e.Member.Address, LossKind.Exited),
        ClusterEvent.MemberRemoved r => new WorkerLost(r.Member.Address, LossKind.Removed),
        ClusterEvent.ReachableMember r => new WorkerReachable(r.Member.Address),
        _ => null,
    };
}

/// <summary>A worker member is up.</summary>
public sealed record WorkerUp(Address Node) : WorkerMembership(Node);

/// <summary>A member was lost, for a while (unreachable) or for good.</summary>
public sealed record WorkerLost(Address Node, LossKind Kind) : WorkerMembership(Node);

/// <summary>An unreachable member is reachable again.</summary>
public sealed record WorkerReachable(Address Node) : WorkerMembership(Node);
