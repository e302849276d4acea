using Akka;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>
/// Keeps a working member up when Akka.NET asks it to shut down over a peer's failed TLS handshake.
/// <para>
/// Akka.NET 1.5.74 runs <see cref="CoordinatedShutdown"/> (reason <c>TlsHandshakeFailureReason</c>, exit code 79)
/// whenever a handshake this node started fails on its side. Upstream means it for a misconfigured node (akka.net #7839)
/// and exempted the server side (#7939). But a handshake with a peer that dies or stops mid-way fails the same way
/// ("Channel is closed"). Three chaos soaks ended so: the head connected to a worker being killed and shut itself down.
/// </para>
/// <para>
/// A member that is Up and hears another member is not misconfigured: for it, the first shutdown phase waits instead.
/// It is released, and the shutdown goes on, when this node really goes: it leaves, is downed or removed, or its host
/// stops it (<see cref="Release"/>). A node that never got in (a bad certificate, a foreign CA) shuts down as Akka
/// means it to.
/// </para>
/// </summary>
public sealed class PeerHandshakeShutdownGuard
{
    private readonly TaskCompletionSource<Done> _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Akka's reason for that shutdown; internal to Akka.Remote, so it is known by name (a spec checks it exists).</summary>
    public const string HandshakeFailureReason = "Akka.Remote.Transport.DotNetty.TlsHandshakeFailureReason";

    private PeerHandshakeShutdownGuard()
    {
    }

    /// <summary>How many shutdowns over a peer's handshake this node has outlived (tests and logs read it).</summary>
    public int Outlived { get; private set; }

    /// <summary>Adds the guard to the first shutdown phase of <paramref name="system"/>, a cluster member.</summary>
    public static PeerHandshakeShutdownGuard Install(ActorSystem system)
    {
        var guard = new PeerHandshakeShutdownGuard();
        var shutdown = CoordinatedShutdown.Get(system);
        var cluster = Cluster.Get(system);
        var log = Logging.GetLogger(system, typeof(PeerHandshakeShutdownGuard));
        shutdown.AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "outlive-a-peers-tls-handshake", () =>
        {
            if (shutdown.ShutdownReason?.GetType().FullName != HandshakeFailureReason || !Working(cluster))
            {
                return Task.FromResult(Done.Instance);
            }

            guard.Outlived++;
            log.Warning(
                "Akka asked this node to shut down because a TLS handshake it started failed; this node is an Up member "
                + "that hears others, so the peer died or stopped mid-handshake: it stays up, and shuts down only when it leaves or is downed");
            return guard._release.Task;
        });

        // Its own end: leaving, downed, removed. Watched from the start, since the shutdown's own cluster phases wait on it.
        cluster.RegisterOnMemberRemoved(guard.Release);
        system.ActorOf(Props.Create(() => new SelfWatch(cluster, guard)), "peer-handshake-shutdown-guard");
        return guard;
    }

    /// <summary>This node really goes: a shutdown held by the guard goes on.</summary>
    public void Release() => _release.TrySetResult(Done.Instance);

    private static bool Working(Cluster cluster) =>
        cluster.SelfMember.Status == MemberStatus.Up
        && cluster.State.Members.Any(m => !m.UniqueAddress.Equals(cluster.SelfUniqueAddress) && !cluster.State.Unreachable.Contains(m));

    /// <summary>Releases the guard when this member leaves or is downed.</summary>
    private sealed class SelfWatch : ReceiveActor
    {
        public SelfWatch(Cluster cluster, PeerHandshakeShutdownGuard guard)
        {
            Receive<ClusterEvent.IMemberEvent>(e =>
            {
                if (e.Member.UniqueAddress.Equals(cluster.SelfUniqueAddress)
                    && e.Member.Status is MemberStatus.Leaving or MemberStatus.Exiting or MemberStatus.Down or MemberStatus.Removed)
                {
                    guard.Release();
                }
            });
            Receive<ClusterEvent.CurrentClusterState>(_ => { });
            cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));
        }
    }
}
