using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>The cluster CA and node certificates: what is in them, and writing and reading them back.</summary>
public sealed class ClusterCertificatesSpecs : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-certs-").FullName;

    [Fact]
    public void The_authority_is_a_self_signed_P256_CA_that_may_sign_certificates()
    {
        using var ca = ClusterCertificates.CreateAuthority("test cluster");

        Assert.True(ca.HasPrivateKey);
        Assert.Equal(ca.Subject, ca.Issuer);
        var constraints = Assert.Single(ca.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.True(constraints.CertificateAuthority);
        Assert.True(constraints.Critical);
        var usage = Assert.Single(ca.Extensions.OfType<X509KeyUsageExtension>());
        Assert.True(usage.KeyUsages.HasFlag(X509KeyUsageFlags.KeyCertSign));
        using var key = ca.GetECDsaPublicKey();
        Assert.NotNull(key);
        Assert.Equal(256, key.KeySize);
    }

    [Fact]
    public void A_node_certificate_chains_to_its_CA_allows_server_and_client_auth_and_names_its_host_and_roles()
    {
        using var ca = ClusterCertificates.CreateAuthority("test cluster");
        using var node = ClusterCertificates.IssueNode(ca, "worker-1", "127.0.0.1", [Roles.Worker, Roles.Ingest]);

        Assert.True(node.HasPrivateKey);
        Assert.Equal(ca.Subject, node.Issuer);
        Assert.False(Assert.Single(node.Extensions.OfType<X509BasicConstraintsExtension>()).CertificateAuthority);
        Assert.True(ClusterCertificates.AllowsServerAndClientAuth(node));
        var san = Assert.Single(node.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Equal([IPAddress.Loopback], san.EnumerateIPAddresses());
        Assert.Empty(san.EnumerateDnsNames());
        Assert.Equal([Roles.Worker, Roles.Ingest], ClusterCertificates.RolesOf(node));
        Assert.Equal("worker-1", ClusterCertificates.NodeNameOf(node));

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.True(chain.Build(node), string.Join(", ", chain.ChainStatus.Select(s => s.Status)));
    }

    [Fact]
    public void A_DNS_host_becomes_a_DNS_name_and_a_node_without_roles_has_none()
    {
        using var ca = ClusterCertificates.CreateAuthority("test cluster");
        using var node = ClusterCertificates.IssueNode(ca, "edge.7", "edge-7.plant.local", []);

        var san = Assert.Single(node.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Equal(["edge-7.plant.local"], san.EnumerateDnsNames());
        Assert.Empty(ClusterCertificates.RolesOf(node));
        Assert.Equal("edge.7", ClusterCertificates.NodeNameOf(node));
    }

    [Fact]
    public void A_certificate_from_elsewhere_grants_no_roles()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=outsider", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri("urn:other:role:worker"));
        san.AddDnsName("outsider");
        request.CertificateExtensions.Add(san.Build());
        using var outsider = request.CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1));

        Assert.Empty(ClusterCertificates.RolesOf(outsider));
        Assert.Null(ClusterCertificates.NodeNameOf(outsider));
    }

    [Theory]
    [InlineData("worker-1", "127.0.0.1", "admin", "Unknown role 'admin'")]
    [InlineData("worker-1", "not a host!", "worker", "neither an IP address nor a DNS name")]
    [InlineData("worker/1", "127.0.0.1", "worker", "Node name 'worker/1'")]
    [InlineData("", "127.0.0.1", "worker", "Node name ''")]
    public void Bad_names_hosts_and_roles_are_refused_with_a_sentence_naming_them(string name, string host, string role, string message)
    {
        using var ca = ClusterCertificates.CreateAuthority("test cluster");

        var error = Assert.Throws<PipelineInputException>(() => ClusterCertificates.IssueNode(ca, name, host, [role]));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_authority_is_written_as_PEM_with_an_owner_only_key_and_read_back_able_to_sign()
    {
        var folder = Path.Combine(_folder, "ca");
        using (var ca = ClusterCertificates.CreateAuthority("test cluster"))
        {
            ClusterCertificates.WriteAuthority(ca, folder, force: false);
        }

        Assert.Equal(["ca.crt", "ca.key"], Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", File.ReadAllText(Path.Combine(folder, "ca.crt")), StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(Path.Combine(folder, "ca.key")), StringComparison.Ordinal);
        AssertOwnerOnly(Path.Combine(folder, "ca.key"));

        using var read = ClusterCertificates.ReadAuthority(folder);
        Assert.True(read.HasPrivateKey);
        using var node = ClusterCertificates.IssueNode(read, "n1", "127.0.0.1", [Roles.Worker]);
        Assert.Equal(read.Subject, node.Issuer);
        Assert.Empty(Directory.GetDirectories(_folder, ".ca.*"));
    }

    [Fact]
    public void An_existing_authority_is_replaced_only_when_forced()
    {
        var folder = Path.Combine(_folder, "ca");
        using var first = ClusterCertificates.CreateAuthority("first");
        using var second = ClusterCertificates.CreateAuthority("second");
        ClusterCertificates.WriteAuthority(first, folder, force: false);

        var error = Assert.Throws<PipelineInputException>(() => ClusterCertificates.WriteAuthority(second, folder, force: false));
        Assert.Contains("--force", error.Message, StringComparison.Ordinal);
        using (var kept = ClusterCertificates.ReadCaCertificate(folder))
        {
            Assert.Equal(first.Thumbprint, kept.Thumbprint);
        }

        ClusterCertificates.WriteAuthority(second, folder, force: true);
        using (var replaced = ClusterCertificates.ReadCaCertificate(folder))
        {
            Assert.Equal(second.Thumbprint, replaced.Thumbprint);
        }

        Assert.Equal(["ca"], Directory.GetFileSystemEntries(_folder).Select(Path.GetFileName));
    }

    [Fact]
    public void A_node_folder_holds_the_CA_the_PEM_pair_and_a_pfx_and_reads_back_with_its_key_from_either()
    {
        var folder = Path.Combine(_folder, "node");
        using var ca = ClusterCertificates.CreateAuthority("test cluster");
        using var node = ClusterCertificates.IssueNode(ca, "w1", "127.0.0.1", [Roles.Worker]);
        ClusterCertificates.WriteNode(ca, node, folder, force: false);

        Assert.Equal(
            ["ca.crt", "node.crt", "node.key", "node.pfx", "node.pfx.pass"],
            Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        AssertOwnerOnly(Path.Combine(folder, "node.key"));
        AssertOwnerOnly(Path.Combine(folder, "node.pfx"));
        AssertOwnerOnly(Path.Combine(folder, "node.pfx.pass"));
        Assert.False(File.ReadAllText(Path.Combine(folder, "ca.crt")).Contains("PRIVATE", StringComparison.Ordinal));

        using (var fromPfx = ClusterCertificates.ReadNodeCertificate(folder))
        {
            Assert.True(fromPfx.HasPrivateKey);
            Assert.Equal(node.Thumbprint, fromPfx.Thumbprint);
            Assert.Equal([Roles.Worker], ClusterCertificates.RolesOf(fromPfx));
        }

        File.Delete(Path.Combine(folder, "node.pfx"));
        using (var fromPem = ClusterCertificates.ReadNodeCertificate(folder))
        {
            Assert.True(fromPem.HasPrivateKey);
            Assert.Equal(node.Thumbprint, fromPem.Thumbprint);
        }

        using var caRead = ClusterCertificates.ReadCaCertificate(folder);
        Assert.Equal(ca.Thumbprint, caRead.Thumbprint);
        Assert.False(caRead.HasPrivateKey);
    }

    [Fact]
    public void The_pfx_opens_only_with_its_password()
    {
        var folder = Path.Combine(_folder, "node");
        using var ca = ClusterCertificates.CreateAuthority("test cluster");
        using var node = ClusterCertificates.IssueNode(ca, "w1", "127.0.0.1", [Roles.Worker]);
        ClusterCertificates.WriteNode(ca, node, folder, force: false);

        var pfx = Path.Combine(folder, "node.pfx");
        Assert.ThrowsAny<CryptographicException>(() => X509CertificateLoader.LoadPkcs12FromFile(pfx, "wrong"));
        var password = File.ReadAllText(Path.Combine(folder, "node.pfx.pass"));
        Assert.Matches("^[0-9A-F]{48}$", password);
        using var opened = X509CertificateLoader.LoadPkcs12FromFile(pfx, password);
        Assert.True(opened.HasPrivateKey);
    }

    [Fact]
    public void Reading_a_folder_without_a_CA_or_node_certificate_says_how_to_make_one()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_folder, "empty")).FullName;

        var noCa = Assert.Throws<PipelineInputException>(() => ClusterCertificates.ReadAuthority(empty));
        var noNode = Assert.Throws<PipelineInputException>(() => ClusterCertificates.ReadNodeCertificate(empty));
        var noCaCertificate = Assert.Throws<PipelineInputException>(() => ClusterCertificates.ReadCaCertificate(empty));

        Assert.Contains("pipeline certs init", noCa.Message, StringComparison.Ordinal);
        Assert.Contains("pipeline certs issue", noNode.Message, StringComparison.Ordinal);
        Assert.Contains("pipeline certs issue", noCaCertificate.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_folder_is_not_written_over_a_non_empty_folder_unless_forced()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_folder, "node")).FullName;
        File.WriteAllText(Path.Combine(folder, "keep.txt"), "mine");
        using var ca = ClusterCertificates.CreateAuthority("test cluster");
        using var node = ClusterCertificates.IssueNode(ca, "w1", "127.0.0.1", [Roles.Worker]);

        Assert.Throws<PipelineInputException>(() => ClusterCertificates.WriteNode(ca, node, folder, force: false));
        Assert.Equal(["keep.txt"], Directory.GetFiles(folder).Select(Path.GetFileName));

        ClusterCertificates.WriteNode(ca, node, folder, force: true);
        Assert.False(File.Exists(Path.Combine(folder, "keep.txt")));
        Assert.True(File.Exists(Path.Combine(folder, "node.pfx")));
        Assert.Equal(["node"], Directory.GetFileSystemEntries(_folder).Select(Path.GetFileName));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static void AssertOwnerOnly(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
    }
}
