using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using SerializationException = System.Runtime.Serialization.SerializationException;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>Messages of the role-proof exchange; bound to <see cref="RoleProofSerializer"/> by <see cref="ClusterTls.Hocon"/>.</summary>
public interface IRoleProofMessage;

/// <summary>Asks a member to prove which certificate it holds by signing a fresh nonce.</summary>
public sealed record ProveRoles(byte[] Nonce) : IRoleProofMessage;

/// <summary>
/// A member's answer: its own address and certificate, and a signature with the certificate's key over the nonce and
/// that address. The address is signed so that a member cannot pass on another member's proof as its own.
/// </summary>
public sealed record RoleProof(byte[] Nonce, string Address, byte[] Certificate, byte[] Signature) : IRoleProofMessage
{
    public const int NonceBytes = 32;

    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("pipelineactors role proof v1\n");

    /// <summary>Signs a proof for <paramref name="self"/> with the node certificate's private key.</summary>
    public static RoleProof Sign(byte[] nonce, string self, X509Certificate2 certificate)
    {
        using var key = certificate.GetECDsaPrivateKey()
            ?? throw new ArgumentException("The node certificate has no ECDSA private key.", nameof(certificate));
        return new RoleProof(nonce, self, certificate.RawData, key.SignData(Payload(nonce, self), HashAlgorithmName.SHA256));
    }

    /// <summary>True when the signature over this proof's nonce and address verifies with the certificate's public key.</summary>
    public bool SignatureHolds(X509Certificate2 certificate)
    {
        using var key = certificate.GetECDsaPublicKey();
        return key is not null && key.VerifyData(Payload(Nonce, Address), Signature, HashAlgorithmName.SHA256);
    }

    private static byte[] Payload(byte[] nonce, string address) => [.. Domain, .. nonce, .. Encoding.UTF8.GetBytes(address)];
}

/// <summary>
/// Binary form of the role-proof messages: length-prefixed fields, each length checked against a small limit before
/// anything is allocated, since these messages arrive from members not yet trusted.
/// </summary>
public sealed class RoleProofSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 437;

    private const int MaxAddressBytes = 512;
    private const int MaxCertificateBytes = 16 * 1024;
    private const int MaxSignatureBytes = 512;

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        ProveRoles => "P",
        RoleProof => "R",
        _ => throw new ArgumentException($"RoleProofSerializer cannot serialize {o.GetType()}.", nameof(o)),
    };

    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        switch (obj)
        {
            case ProveRoles prove:
                Write(stream, prove.Nonce);
                break;
            case RoleProof proof:
                Write(stream, proof.Nonce);
                Write(stream, Encoding.UTF8.GetBytes(proof.Address));
                Write(stream, proof.Certificate);
                Write(stream, proof.Signature);
                break;
            default:
                throw new ArgumentException($"RoleProofSerializer cannot serialize {obj.GetType()}.", nameof(obj));
        }

        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        var offset = 0;
        object message = manifest switch
        {
            "P" => new ProveRoles(Read(bytes, ref offset, RoleProof.NonceBytes)),
            "R" => new RoleProof(
                Read(bytes, ref offset, RoleProof.NonceBytes),
                Encoding.UTF8.GetString(Read(bytes, ref offset, MaxAddressBytes)),
                Read(bytes, ref offset, MaxCertificateBytes),
                Read(bytes, ref offset, MaxSignatureBytes)),
            _ => throw new SerializationException($"Unknown role-proof manifest '{manifest}'."),
        };
        if (offset != bytes.Length)
        {
            throw new SerializationException($"A role-proof message has {bytes.Length - offset} bytes after its last field.");
        }

        return message;
    }

    private static void Write(MemoryStream stream, byte[] field)
    {
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(length, checked((ushort)field.Length));
        stream.Write(length);
        stream.Write(field);
    }

    private static byte[] Read(byte[] bytes, ref int offset, int limit)
    {
        if (bytes.Length - offset < 2)
        {
            throw new SerializationException("A role-proof message ends inside a length field.");
        }

        int length = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset, 2));
        offset += 2;
        if (length > limit || length > bytes.Length - offset)
        {
            throw new SerializationException($"A role-proof field of {length} bytes is longer than its limit or the message.");
        }

        var field = bytes.AsSpan(offset, length).ToArray();
        offset += length;
        return field;
    }
}
