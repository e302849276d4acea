using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>
/// Real ActorSystems on 127.0.0.1 forming an Akka.Cluster over <c>akka.ssl.tcp://</c>: members with certificates
/// from the cluster CA join; a certificate from another CA, plain TCP, and no client certificate do not.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterTlsSpecs(ITestOutputHelper output) : IAsyncLifetime
{
    // Long enough for several join attempts (a permitted join takes under 2 s here), short enough to keep the refused
    // peers' retries, and the warnings they cause, few.
    private static readonly TimeSpan RefusalWindow = TimeSpan.FromSeconds(6);
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(30);

    private readonly X509Certificate2 _ca = ClusterCertificates.CreateAuthority("cluster");
    private readonly List<ActorSystem> _systems = [];
    private readonly List<IDisposable> _disposables = [];

    [Fact]
    public async Task Two_nodes_with_certificates_from_the_same_CA_form_a_cluster_over_TLS()
    {
        var (seed, seedTls) = await StartSeedAsync();
        var workerTls = Tls("w1", Roles.Worker);
        var worker = Start(workerTls.Setup(Node([Roles.Worker], SeedOf(seed))));

        await Poll.UntilAsync(() => UpCount(seed) == 2 && UpCount(worker) == 2, JoinTimeout, "the two TLS nodes did not form a cluster");

        Assert.Equal("akka.ssl.tcp", Akka.Cluster.Cluster.Get(seed).SelfAddress.Protocol);
        Assert.Equal("akka.ssl.tcp", Akka.Cluster.Cluster.Get(worker).SelfAddress.Protocol);
        Assert.Equal(0, seedTls.Rejected);
        Assert.Equal(0, workerTls.Rejected);
        // The worker dialled the seed, so it knows the seed's certificate by the seed's address. (The seed answers on that
        // same inbound connection, so it never dials the worker: Akka names that peer by its socket, not its address.)
        Assert.True(workerTls.TryGetPeer(Akka.Cluster.Cluster.Get(seed).SelfAddress, out var seenByWorker));
        Assert.Equal([Roles.Coordinator], seenByWorker.Roles);
    }

    [Fact]
    public async Task A_node_with_a_certificate_from_another_CA_cannot_join()
    {
        var (seed, seedTls) = await StartSeedAsync();
        using var otherCa = ClusterCertificates.CreateAuthority("cluster");
        using var rogueCertificate = ClusterCertificates.IssueNode(otherCa, "w1", "127.0.0.1", [Roles.Worker]);
        // The rogue trusts anything, so the refusal has to come from the seed's check of the rogue's certificate.
        var rogue = Start(RogueSetup(rogueCertificate, mutual: true, Node([Roles.Worker], SeedOf(seed))));

        await Task.Delay(RefusalWindow);

        Assert.Equal(1, UpCount(seed));
        Assert.Single(Akka.Cluster.Cluster.Get(seed).State.Members);
        Assert.False(IsUp(rogue));
        Assert.True(seedTls.Rejected > 0, "the seed never refused the rogue's certificate");
    }

    [Fact]
    public async Task A_node_without_TLS_cannot_join()
    {
        var (seed, _) = await StartSeedAsync();
        var seedAddress = Akka.Cluster.Cluster.Get(seed).SelfAddress;
        // The plain node dials the seed's port over plain TCP; it logs nothing, since it would retry furiously.
        var quiet = ConfigurationFactory.ParseString("akka.loglevel = OFF\nakka.stdout-loglevel = OFF");
        var plainNode = Node([Roles.Worker], $"akka.tcp://{seedAddress.System}@{seedAddress.Host}:{seedAddress.Port}");
        var plain = Start(ActorSystemSetup.Create(BootstrapSetup.Create().WithConfig(quiet.WithFallback(plainNode))));

        await Task.Delay(RefusalWindow);

        Assert.Single(Akka.Cluster.Cluster.Get(seed).State.Members);
        Assert.False(IsUp(plain));
    }

    [Fact]
    public async Task A_node_that_sends_no_client_certificate_cannot_join()
    {
        var (seed, _) = await StartSeedAsync();
        // A certificate from the right CA, but with mutual authentication off the rogue never presents it as a client.
        using var certificate = ClusterCertificates.IssueNode(_ca, "w1", "127.0.0.1", [Roles.Worker]);
        var rogue = Start(RogueSetup(certificate, mutual: false, Node([Roles.Worker], SeedOf(seed))));

        await Task.Delay(RefusalWindow);

        Assert.Single(Akka.Cluster.Cluster.Get(seed).State.Members);
        Assert.False(IsUp(rogue));
    }

    [Fact]
    public async Task A_member_that_claims_a_role_its_certificate_lacks_is_downed_and_an_honest_member_stays()
    {
        var (seed, seedTls) = await StartSeedAsync();
        Guard(seed, seedTls);
        var events = Record(seed);
        var honestTls = Tls("w1", Roles.Worker);
        var honest = Start(honestTls.Setup(Node([Roles.Worker], SeedOf(seed))));
        Guard(honest, honestTls);
        await Poll.UntilAsync(() => UpCount(seed) == 2, JoinTimeout, "the honest worker did not join");

        // A certificate from the right CA that grants monitor only, on a node that claims worker.
        var liarTls = Tls("m1", Roles.Monitor);
        var liar = Start(liarTls.Setup(Node([Roles.Worker], SeedOf(seed))));
        Guard(liar, liarTls);
        var liarAddress = Akka.Cluster.Cluster.Get(liar).SelfAddress;

        // Removed means it had been a member: TLS let it in and a guard threw it out. (Which guard downs it first, the
        // seed's or the honest worker's, varies; the seed may see it go from Joining straight to Down.)
        await Poll.UntilAsync(() => events.Contains($"removed {liarAddress}"), JoinTimeout, "the seed never removed the member that claimed worker");
        await liar.WhenTerminated.WaitAsync(JoinTimeout);

        // The honest worker proved its role and is still there.
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(2, UpCount(seed));
        Assert.True(IsUp(honest));
    }

    [Fact]
    public async Task A_member_that_cannot_prove_its_certificate_is_downed()
    {
        var (seed, seedTls) = await StartSeedAsync();
        Guard(seed, seedTls);
        var events = Record(seed);
        // Valid TLS and a certificate that grants what it claims, but no guard to sign the proof with.
        var mute = Start(Tls("w1", Roles.Worker).Setup(Node([Roles.Worker], SeedOf(seed))));
        var muteAddress = Akka.Cluster.Cluster.Get(mute).SelfAddress;

        await Poll.UntilAsync(() => events.Contains($"removed {muteAddress}"), JoinTimeout, "the seed never removed the member that sent no proof");
        Assert.Contains($"up {muteAddress}", events);
        Assert.Equal(1, UpCount(seed));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var system in _systems)
        {
            try
            {
                await system.Terminate().WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (TimeoutException)
            {
                output.WriteLine($"{system.Name} did not stop within 15 s");
            }
        }

        foreach (var disposable in _disposables)
        {
            disposable.Dispose();
        }

        _ca.Dispose();
    }

    private async Task<(ActorSystem System, ClusterTls Tls)> StartSeedAsync()
    {
        var tls = Tls("seed", Roles.Coordinator);
        var seed = Start(tls.Setup(Node([Roles.Coordinator])));
        var cluster = Akka.Cluster.Cluster.Get(seed);
        cluster.Join(cluster.SelfAddress);
        await Poll.UntilAsync(() => UpCount(seed) == 1, JoinTimeout, "the seed did not come up");
        return (seed, tls);
    }

    private ClusterTls Tls(string name, params string[] roles)
    {
        var tls = ClusterTls.From(X509CertificateLoader.LoadCertificate(_ca.RawData), ClusterCertificates.IssueNode(_ca, name, "127.0.0.1", roles));
        _disposables.Add(tls);
        return tls;
    }

    private static Config Node(string[] roles, params string[] seeds) => PipelineConfig.Build(new NodeOptions { Roles = roles, Seeds = seeds });

    private static string SeedOf(ActorSystem seed) => Akka.Cluster.Cluster.Get(seed).SelfAddress.ToString();

    /// <summary>TLS that accepts any peer; <paramref name="mutual"/> off means it presents no client certificate.</summary>
    private static ActorSystemSetup RogueSetup(X509Certificate2 certificate, bool mutual, Config node) =>
        BootstrapSetup.Create()
            .WithConfig(ConfigurationFactory.ParseString($"akka.remote.dot-netty.tcp.ssl.require-mutual-authentication = {(mutual ? "on" : "off")}")
                .WithFallback(ClusterTls.Hocon)
                .WithFallback(node))
            .And(new DotNettySslSetup(certificate, false, mutual, false, (_, _, _, _, _) => true));

    private ActorSystem Start(ActorSystemSetup setup)
    {
        var system = ActorSystem.Create(PipelineConfig.SystemName, setup);
        _systems.Add(system);
        return system;
    }

    // Asks for a proof every half second, six times: a silent member is downed about 3 s after it is Up.
    private static void Guard(ActorSystem system, ClusterTls tls) =>
        system.ActorOf(CertificateRoleGuard.Props(tls, TimeSpan.FromMilliseconds(500), 6), CertificateRoleGuard.Name);

    /// <summary>Membership changes as one node sees them: "up ADDRESS" and "removed ADDRESS" lines, in order.</summary>
    private static ConcurrentQueue<string> Record(ActorSystem system)
    {
        var events = new ConcurrentQueue<string>();
        system.ActorOf(Props.Create(() => new MembershipRecorder(events)));
        return events;
    }

    private static int UpCount(ActorSystem system) =>
        Akka.Cluster.Cluster.Get(system).State.Members.Count(m => m.Status == MemberStatus.Up);

    private static bool IsUp(ActorSystem system)
    {
        if (system.WhenTerminated.IsCompleted)
        {
            return false;
        }

        var cluster = Akka.Cluster.Cluster.Get(system);
        return cluster.State.Members.Any(m => m.Address == cluster.SelfAddress && m.Status == MemberStatus.Up);
    }

    private sealed class MembershipRecorder : ReceiveActor
    {
        public MembershipRecorder(ConcurrentQueue<string> events)
        {
            Receive<ClusterEvent.MemberUp>(e => events.Enqueue($"up {e.Member.Address}"));
            Receive<ClusterEvent.MemberRemoved>(e => events.Enqueue($"removed {e.Member.Address}"));
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(
                Self,
                ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(ClusterEvent.MemberUp),
                typeof(ClusterEvent.MemberRemoved));
    }
}
