using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>The peer-certificate check that the TLS handshake calls, without sockets.</summary>
public sealed class ClusterTlsValidationSpecs : IDisposable
{
    private static int Identifier(ActorSystem system, object message)
    {
        _ = Akka.Cluster.Tools.PublishSubscribe.DistributedPubSub.Get(system);
        return system.Serialization.FindSerializerFor(message).Identifier;
    }

    private const string Outbound = "akka.ssl.tcp://pipeline@127.0.0.1:4711";

    private readonly X509Certificate2 _ca = ClusterCertificates.CreateAuthority("cluster");
    private readonly ClusterTls _tls;

    public ClusterTlsValidationSpecs()
    {
        _tls = ClusterTls.From(
            X509CertificateLoader.LoadCertificate(_ca.RawData), ClusterCertificates.IssueNode(_ca, "self", "127.0.0.1", [Roles.Coordinator]));
    }

    [Fact]
    public void A_certificate_from_the_cluster_CA_is_accepted_and_remembered_for_the_address_dialled()
    {
        using var peer = ClusterCertificates.IssueNode(_ca, "w1", "127.0.0.1", [Roles.Worker]);

        Assert.True(_tls.Validate(peer, Outbound, out var reason), reason);
        Assert.True(_tls.TryGetPeer(Address.Parse(Outbound), out var seen));
        Assert.Equal([Roles.Worker], seen.Roles);
        Assert.Equal("w1", seen.NodeName);
        Assert.Equal(peer.Thumbprint, seen.Thumbprint);
        Assert.Equal(0, _tls.Rejected);
    }

    [Fact]
    public void An_inbound_peer_named_by_its_socket_is_accepted_but_not_mapped_to_an_address()
    {
        using var peer = ClusterCertificates.IssueNode(_ca, "w1", "127.0.0.1", [Roles.Worker]);

        Assert.True(_tls.Validate(peer, "[::ffff:127.0.0.1]:40112", out _));
        Assert.False(_tls.TryGetPeer(Address.Parse(Outbound), out _));
    }

    [Fact]
    public void A_certificate_from_another_CA_is_refused_even_with_the_same_names()
    {
        using var otherCa = ClusterCertificates.CreateAuthority("cluster");
        using var rogue = ClusterCertificates.IssueNode(otherCa, "w1", "127.0.0.1", [Roles.Worker]);

        Assert.False(_tls.Validate(rogue, Outbound, out var reason));
        Assert.Contains("does not chain to the cluster CA", reason, StringComparison.Ordinal);
        Assert.False(_tls.TryGetPeer(Address.Parse(Outbound), out _));
        Assert.Equal(1, _tls.Rejected);
    }

    [Fact]
    public void No_certificate_is_refused()
    {
        Assert.False(_tls.Validate(null, Outbound, out var reason));
        Assert.Contains("no certificate", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_CA_itself_is_not_a_node_certificate() =>
        Assert.False(_tls.Validate(_ca, Outbound, out _));

    [Theory]
    [InlineData("1.3.6.1.5.5.7.3.1")]
    [InlineData("1.3.6.1.5.5.7.3.2")]
    public void A_certificate_for_only_one_side_of_TLS_is_refused(string usage)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=half", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        using var half = request.Create(_ca, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3, 4]);

        Assert.False(_tls.Validate(half, Outbound, out var reason));
        Assert.Contains("server and client", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_expired_certificate_from_the_cluster_CA_is_refused()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=old", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        // The CA was made valid from five minutes ago, so a two-minute certificate from then has expired.
        var start = new DateTimeOffset(_ca.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        using var old = request.Create(_ca, start, start.AddMinutes(2), [5, 6, 7, 8]);

        Assert.False(_tls.Validate(old, Outbound, out var reason));
        Assert.Contains("NotTimeValid", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_HOCON_turns_TLS_and_mutual_authentication_on_and_validation_stays_on()
    {
        var config = ClusterTls.Hocon;

        Assert.True(config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl"));
        Assert.True(config.GetBoolean("akka.remote.dot-netty.tcp.ssl.require-mutual-authentication"));
        Assert.False(config.GetBoolean("akka.remote.dot-netty.tcp.ssl.suppress-validation"));
        Assert.True(_tls.SslSetup.RequireMutualAuthentication);
        Assert.False(_tls.SslSetup.SuppressValidation);
        Assert.NotNull(_tls.SslSetup.CustomValidator);
        Assert.Equal([Roles.Coordinator], _tls.Roles);
    }

    [Fact]
    public async Task The_TLS_configuration_keeps_the_serializers_that_extensions_add_later()
    {
        // DistributedPubSub adds its serializer when it starts; the TLS layer must not shadow that, or pub-sub fails.
        var node = PipelineConfig.Build(new NodeOptions { Roles = [Roles.Worker] });
        var plain = ActorSystem.Create(PipelineConfig.SystemName, node);
        var secure = ActorSystem.Create(PipelineConfig.SystemName, _tls.Setup(node));
        try
        {
            var message = new Akka.Cluster.Tools.PublishSubscribe.Publish("topic", "text");
            var expected = Identifier(plain, message);
            Assert.Equal(expected, Identifier(secure, message));
            Assert.NotEqual(Identifier(plain, new object()), expected);
            Assert.IsType<RoleProofSerializer>(secure.Serialization.FindSerializerFor(new ProveRoles(new byte[RoleProof.NonceBytes])));
        }
        finally
        {
            await Task.WhenAll(plain.Terminate(), secure.Terminate()).WaitAsync(TimeSpan.FromSeconds(15));
        }
    }

    public void Dispose()
    {
        _tls.Dispose();
        _ca.Dispose();
    }
}
