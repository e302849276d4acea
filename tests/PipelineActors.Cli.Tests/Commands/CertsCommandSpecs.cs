using System.Net;
using System.Security.Cryptography.X509Certificates;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary><c>pipeline certs init</c> and <c>pipeline certs issue</c>: what they write and how they refuse.</summary>
public sealed class CertsCommandSpecs : IDisposable
{
    private readonly TempFolder _folder = new();

    [Fact]
    public void Init_writes_a_CA_and_refuses_to_replace_it_without_force()
    {
        var first = Cli.Run("certs", "init", "--out", _folder["ca"]);
        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Contains("wrote", first.Output, StringComparison.Ordinal);
        using var written = ClusterCertificates.ReadAuthority(_folder["ca"]);

        var again = Cli.Run("certs", "init", "--out", _folder["ca"]);
        Cli.AssertUserError(again, "already holds a CA", "--force");
        using (var kept = ClusterCertificates.ReadCaCertificate(_folder["ca"]))
        {
            Assert.Equal(written.Thumbprint, kept.Thumbprint);
        }

        var forced = Cli.Run("certs", "init", "--out", _folder["ca"], "--force");
        Assert.True(forced.ExitCode == 0, forced.Error);
        using var replaced = ClusterCertificates.ReadCaCertificate(_folder["ca"]);
        Assert.NotEqual(written.Thumbprint, replaced.Thumbprint);
        Assert.Equal(["ca"], Directory.GetFileSystemEntries(_folder.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Issue_writes_a_TLS_folder_that_ClusterTls_loads_with_the_roles_and_host_asked_for()
    {
        Assert.Equal(0, Cli.Run("certs", "init", "--out", _folder["ca"]).ExitCode);

        var result = Cli.Run(
            "certs", "issue", "--ca", _folder["ca"], "--name", "edge-1", "--roles", "worker, ingest", "--host", "10.0.0.7",
            "--out", _folder["edge-1"]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("edge-1", result.Output, StringComparison.Ordinal);
        using var tls = ClusterTls.Load(_folder["edge-1"]);
        Assert.Equal(["worker", "ingest"], tls.Roles);
        Assert.True(tls.Certificate.HasPrivateKey);
        var san = Assert.Single(tls.Certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Equal([IPAddress.Parse("10.0.0.7")], san.EnumerateIPAddresses());
        using var ca = ClusterCertificates.ReadCaCertificate(_folder["ca"]);
        Assert.Equal(ca.Thumbprint, tls.Authority.Thumbprint);
        Assert.True(tls.Validate(tls.Certificate, "peer", out var reason), reason);
        Assert.False(File.Exists(Path.Combine(_folder["edge-1"], "ca.key")), "the CA's key must not travel to a node");
    }

    [Fact]
    public void Issue_with_an_unknown_role_names_it_and_writes_nothing()
    {
        Assert.Equal(0, Cli.Run("certs", "init", "--out", _folder["ca"]).ExitCode);

        var result = Issue(_folder["ca"], "worker,admin", "127.0.0.1", _folder["n1"]);

        Cli.AssertUserError(result, "'admin'", "worker");
        _folder.AssertNoSplitLeftBehind("n1");
    }

    [Fact]
    public void Issue_without_a_CA_says_how_to_make_one()
    {
        var result = Issue(_folder["nothing"], "worker", "127.0.0.1", _folder["n1"]);

        Cli.AssertUserError(result, "pipeline certs init");
        _folder.AssertNoSplitLeftBehind("n1");
    }

    [Theory]
    [InlineData("worker", "not a host!", "neither an IP address nor a DNS name")]
    [InlineData(",", "127.0.0.1", "--roles needs at least one")]
    public void Issue_with_a_bad_host_or_no_roles_is_one_sentence_and_exit_2(string roles, string host, string naming)
    {
        Assert.Equal(0, Cli.Run("certs", "init", "--out", _folder["ca"]).ExitCode);

        var result = Issue(_folder["ca"], roles, host, _folder["n1"]);

        Cli.AssertUserError(result, naming);
        _folder.AssertNoSplitLeftBehind("n1");
    }

    [Fact]
    public void Issue_into_a_folder_whose_parent_is_missing_writes_nothing()
    {
        Assert.Equal(0, Cli.Run("certs", "init", "--out", _folder["ca"]).ExitCode);

        var result = Issue(_folder["ca"], "worker", "127.0.0.1", Path.Combine(_folder["missing"], "n1"));

        Cli.AssertUserError(result, "does not exist");
        Assert.False(Directory.Exists(_folder["missing"]));
    }

    public void Dispose() => _folder.Dispose();

    private static CliResult Issue(string ca, string roles, string host, string output) =>
        Cli.Run("certs", "issue", "--ca", ca, "--name", "n1", "--roles", roles, "--host", host, "--out", output);
}
