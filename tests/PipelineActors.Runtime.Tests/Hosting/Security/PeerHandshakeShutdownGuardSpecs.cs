using Akka.Actor;
using Akka.Cluster;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>
/// Akka.NET shuts a node down when a TLS handshake it started fails, also when the peer merely died mid-handshake: a
/// working member outlives that shutdown and still goes when it really leaves. Two TLS nodes on 127.0.0.1.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PeerHandshakeShutdownGuardSpecs : IDisposable
{
    private readonly TestCertificates _certificates = new();

    [Fact]
    public void Akka_still_names_its_handshake_shutdown_reason_as_the_guard_knows_it()
    {
        // Internal to Akka.Remote: an upgrade that renames it would leave the guard holding nothing, so it fails here.
        var reason = typeof(Akka.Remote.RemoteSettings).Assembly.GetType(PeerHandshakeShutdownGuard.HandshakeFailureReason);

        Assert.NotNull(reason);
        Assert.True(typeof(CoordinatedShutdown.Reason).IsAssignableFrom(reason));
    }

    [Fact]
    public async Task An_up_member_outlives_a_shutdown_over_a_peers_handshake_and_still_leaves_when_asked()
    {
        await using var cluster = await TestCluster.StartAsync(new TestClusterOptions { Workers = 1, Certificates = _certificates });
        var (head, worker) = (cluster.Head, cluster.Workers[0]);
        await Poll.UntilAsync(
            () => Cluster.Get(head.System).State.Members.Count(m => m.Status == MemberStatus.Up) == 2, TimeSpan.FromSeconds(30), "timed out");

        // What Akka's transport runs when the handshake it started fails on its side.
        var reason = (CoordinatedShutdown.Reason)Activator.CreateInstance(
            typeof(Akka.Remote.RemoteSettings).Assembly.GetType(PeerHandshakeShutdownGuard.HandshakeFailureReason)!,
            System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic,
            null,
            ["TLS handshake failed on channel [test]"],
            null)!;
        var held = CoordinatedShutdown.Get(head.System).Run(reason);
        await Task.Delay(TimeSpan.FromSeconds(4));

        Assert.False(held.IsCompleted, "the shutdown went on");
        Assert.False(head.System.WhenTerminated.IsCompleted);
        Assert.Equal(MemberStatus.Up, Cluster.Get(head.System).SelfMember.Status);
        Assert.Equal(1, head.ShutdownGuard!.Outlived);
        Assert.Contains(Cluster.Get(worker.System).State.Members, m => m.Address.Equals(head.Address) && m.Status == MemberStatus.Up);

        // Asked to go for real, it goes: it leaves and its system stops.
        await head.ShutDown().WaitAsync(TimeSpan.FromSeconds(60));
        await head.System.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public void Dispose() => _certificates.Dispose();
}
