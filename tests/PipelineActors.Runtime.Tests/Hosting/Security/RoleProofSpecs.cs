using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>The signed role proof and its serializer, which reads bytes from members not yet trusted.</summary>
public sealed class RoleProofSpecs : IDisposable
{
    private const string Self = "akka.ssl.tcp://pipeline@127.0.0.1:4711";

    private readonly X509Certificate2 _ca = ClusterCertificates.CreateAuthority("cluster");
    private readonly X509Certificate2 _node;
    private readonly ActorSystem _system = ActorSystem.Create("proof", ClusterTls.Hocon);

    public RoleProofSpecs() => _node = ClusterCertificates.IssueNode(_ca, "w1", "127.0.0.1", [Roles.Worker]);

    [Fact]
    public void A_proof_verifies_with_the_signers_certificate_only_and_only_for_the_address_signed()
    {
        var nonce = RandomNumberGenerator.GetBytes(RoleProof.NonceBytes);
        var proof = RoleProof.Sign(nonce, Self, _node);
        using var other = ClusterCertificates.IssueNode(_ca, "w2", "127.0.0.1", [Roles.Worker]);

        Assert.True(proof.SignatureHolds(_node));
        Assert.False(proof.SignatureHolds(other));
        Assert.False((proof with { Address = "akka.ssl.tcp://pipeline@127.0.0.1:4712" }).SignatureHolds(_node));
        Assert.False((proof with { Nonce = RandomNumberGenerator.GetBytes(RoleProof.NonceBytes) }).SignatureHolds(_node));
        Assert.Equal(_node.RawData, proof.Certificate);
    }

    [Fact]
    public void Both_messages_go_through_the_role_proof_serializer_and_round_trip()
    {
        var nonce = RandomNumberGenerator.GetBytes(RoleProof.NonceBytes);
        var proof = RoleProof.Sign(nonce, Self, _node);
        var serialization = _system.Serialization;

        foreach (object message in new object[] { new ProveRoles(nonce), proof })
        {
            var serializer = Assert.IsType<RoleProofSerializer>(serialization.FindSerializerFor(message));
            var back = serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message));
            Assert.Equal(message.GetType(), back.GetType());
        }

        var copy = (RoleProof)Serializer().FromBinary(Serializer().ToBinary(proof), "R");
        Assert.Equal(proof.Nonce, copy.Nonce);
        Assert.Equal(proof.Address, copy.Address);
        Assert.Equal(proof.Certificate, copy.Certificate);
        Assert.Equal(proof.Signature, copy.Signature);
        Assert.True(copy.SignatureHolds(_node));
    }

    [Fact]
    public void Truncated_oversized_padded_and_unknown_input_is_refused_without_allocating_its_claims()
    {
        var serializer = Serializer();
        var good = serializer.ToBinary(RoleProof.Sign(RandomNumberGenerator.GetBytes(RoleProof.NonceBytes), Self, _node));

        for (var cut = 0; cut < good.Length; cut += 7)
        {
            Assert.ThrowsAny<Exception>(() => serializer.FromBinary(good[..cut], "R"));
        }

        Assert.ThrowsAny<Exception>(() => serializer.FromBinary([.. good, 0], "R"));
        // A nonce that claims 65535 bytes: refused by its limit, not read.
        Assert.ThrowsAny<Exception>(() => serializer.FromBinary([0xFF, 0xFF, .. new byte[64]], "P"));
        Assert.ThrowsAny<Exception>(() => serializer.FromBinary(good, "X"));
        var random = new Random(11);
        for (var i = 0; i < 500; i++)
        {
            var bytes = new byte[random.Next(0, 200)];
            random.NextBytes(bytes);
            try
            {
                serializer.FromBinary(bytes, i % 2 == 0 ? "R" : "P");
            }
            catch (System.Runtime.Serialization.SerializationException)
            {
                // refused, as it should be; any other exception type fails the test
            }
        }
    }

    public void Dispose()
    {
        _system.Terminate().Wait(TimeSpan.FromSeconds(10));
        _node.Dispose();
        _ca.Dispose();
    }

    private RoleProofSerializer Serializer() => new((ExtendedActorSystem)_system);
}
