using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>A certificate a peer presented in a TLS handshake that this node accepted.</summary>
public sealed record PeerCertificate(string Peer, string? NodeName, IReadOnlyList<string> Roles, string Thumbprint, DateTimeOffset SeenAt);

/// <summary>
/// TLS with mutual authentication for one node's ActorSystem: the HOCON that turns it on and a
/// <see cref="DotNettySslSetup"/> whose validation trusts the cluster's CA only. It also remembers the certificate each
/// peer presented on the connections this node opened, so roles can be checked against certificates.
/// </summary>
public sealed class ClusterTls : IDisposable
{
    /// <summary>
    /// What Akka needs in HOCON besides the setup: TLS on, peers must present a certificate, validation on. Hostname
    /// validation is off because the cluster's CA, not DNS, says who a node is, and peers dial addresses from gossip.
    /// The certificate itself travels in the setup, so no path or password is written here. The role-proof messages of
    /// <see cref="CertificateRoleGuard"/> get their own serializer, never Akka's JSON fallback.
    /// </summary>
    public static readonly Config Hocon = ConfigurationFactory.ParseString("""
        akka.remote.dot-netty.tcp {
          enable-ssl = true
          ssl {
            suppress-validation = false
            require-mutual-authentication = true
            validate-certificate-hostname = false
          }
        }
        akka.actor {
          serializers {
            role-proof = "PipelineActors.Runtime.Hosting.Security.RoleProofSerializer, PipelineActors.Runtime"
          }
          serialization-bindings {
            "PipelineActors.Runtime.Hosting.Security.IRoleProofMessage, PipelineActors.Runtime" = role-proof
          }
          serialization-identifiers {
            "PipelineActors.Runtime.Hosting.Security.RoleProofSerializer, PipelineActors.Runtime" = 437
          }
        }
        """);

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    private readonly ConcurrentDictionary<string, PeerCertificate> _peers = new(StringComparer.OrdinalIgnoreCase);
    private long _rejected;

    private ClusterTls(X509Certificate2 authority, X509Certificate2 certificate)
    {
        if (!certificate.HasPrivateKey)
        {
            throw new ArgumentException("The node certificate has no private key.", nameof(certificate));
        }

        Authority = authority;
        Certificate = certificate;
        Roles = ClusterCertificates.RolesOf(certificate);
        SslSetup = new DotNettySslSetup(certificate, false, true, false, Validate);
    }

    /// <summary>The cluster's CA: the only root a peer's certificate may chain to.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>This node's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The roles this node's certificate grants.</summary>
    public IReadOnlyList<string> Roles { get; }

    /// <summary>Pass next to <see cref="BootstrapSetup"/>; it carries the certificate and the validation.</summary>
    public DotNettySslSetup SslSetup { get; }

    /// <summary>How many peer certificates this node has refused.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Loads a node's TLS folder, as <c>pipeline certs issue</c> writes it.</summary>
    public static ClusterTls Load(string folder) =>
        new(ClusterCertificates.ReadCaCertificate(folder), ClusterCertificates.ReadNodeCertificate(folder));

    /// <summary>From certificates in memory (throwaway clusters, tests); takes ownership of both.</summary>
    public static ClusterTls From(X509Certificate2 authority, X509Certificate2 certificate) => new(authority, certificate);

    /// <summary>The ActorSystem setup for a node: its configuration with TLS on top, and the TLS setup.</summary>
    public ActorSystemSetup Setup(Config config) => BootstrapSetup.Create().WithConfig(Hocon.WithFallback(config)).And(SslSetup);

    /// <summary>
    /// The certificate that the node listening at <paramref name="address"/> presented when this node connected to it.
    /// Only outbound connections are keyed by Akka address; on inbound ones Akka names the peer by its TCP source port.
    /// </summary>
    public bool TryGetPeer(Address address, out PeerCertificate peer) =>
        _peers.TryGetValue(EndpointKey(address.Host, address.Port), out peer!);

    /// <summary>
    /// Accepts a peer's certificate only when it chains to the cluster's CA (custom root trust: the machine's roots
    /// count for nothing), is valid now, is not itself a CA, and allows both TLS server and client use. Revocation
    /// is not checked: the cluster CA publishes no CRL; a compromised node is handled by rotating the CA.
    /// </summary>
    public bool Validate(X509Certificate2? certificate, string peer, out string reason)
    {
        if (!Verify(certificate, out reason))
        {
            Interlocked.Increment(ref _rejected);
            return false;
        }

        var key = OutboundKey(peer);
        if (key is not null)
        {
            var name = ClusterCertificates.NodeNameOf(certificate!);
            _peers[key] = new PeerCertificate(peer, name, ClusterCertificates.RolesOf(certificate!), certificate!.Thumbprint, DateTimeOffset.UtcNow);
        }

        return true;
    }

    /// <summary>The same check as <see cref="Validate(X509Certificate2?, string, out string)"/>, for a certificate not from a handshake.</summary>
    public bool Verify(X509Certificate2? certificate, out string reason)
    {
        reason = Check(certificate);
        return reason.Length == 0;
    }

    public void Dispose()
    {
        Certificate.Dispose();
        Authority.Dispose();
    }

    private bool Validate(X509Certificate2? certificate, X509Chain? chain, string peer, SslPolicyErrors errors, ILoggingAdapter log)
    {
        // The platform's verdict (errors, chain) is built against the machine's roots and the dialled host name; it is
        // replaced by our own chain against the cluster CA, so only "no certificate at all" is taken from it.
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            certificate = null;
        }

        if (Validate(certificate, peer, out var reason))
        {
            return true;
        }

        log.Warning("Refused the TLS certificate of {0}: {1}", peer, reason);
        return false;
    }

    private string Check(X509Certificate2? certificate)
    {
        if (certificate is null)
        {
            return "it presented no certificate";
        }

        if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority))
        {
            return $"{certificate.Subject} is a CA certificate, not a node's";
        }

        if (!ClusterCertificates.AllowsServerAndClientAuth(certificate))
        {
            return $"{certificate.Subject} is not valid for both TLS server and client authentication";
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ServerAuthOid));
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ClientAuthOid));
        try
        {
            if (!chain.Build(certificate))
            {
                var status = string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct(StringComparer.Ordinal));
                return $"{certificate.Subject} does not chain to the cluster CA ({status})";
            }

            var root = chain.ChainElements[^1].Certificate;
            if (!root.RawDataMemory.Span.SequenceEqual(Authority.RawDataMemory.Span))
            {
                return $"{certificate.Subject} chains to {root.Subject}, not to the cluster CA";
            }

            return string.Empty;
        }
        finally
        {
            // The chain hands out copies; the peer's own certificate object belongs to the TLS stream and stays open.
            foreach (var element in chain.ChainElements)
            {
                if (!ReferenceEquals(element.Certificate, certificate))
                {
                    element.Certificate.Dispose();
                }
            }
        }
    }

    private static string EndpointKey(string? host, int? port) => $"{host}:{port}";

    // Outbound peers are Akka addresses ("ssl.tcp://pipeline@127.0.0.1:4053"); inbound ones are socket endpoints.
    private static string? OutboundKey(string peer) =>
        peer.Contains("://", StringComparison.Ordinal) && peer.Contains('@', StringComparison.Ordinal)
        && Uri.TryCreate(peer, UriKind.Absolute, out var uri)
            ? EndpointKey(uri.Host, uri.Port)
            : null;
}
