using System.Security.Cryptography.X509Certificates;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.TestSupport;

/// <summary>
/// A real cluster CA for a test and the TLS folders of its nodes, written as <c>pipeline certs issue</c> writes them, so
/// that node processes start with <c>--tls DIR</c> and CLI processes join with it. Removed with the object.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private readonly X509Certificate2 _authority = ClusterCertificates.CreateAuthority("test cluster");
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-test-tls-").FullName;
    private int _issued;

    /// <summary>A new node folder with a certificate for <paramref name="roles"/>, named after them and a counter.</summary>
    public string Issue(params string[] roles)
    {
        var name = $"{string.Join("-", roles)}-{Interlocked.Increment(ref _issued)}";
        var folder = Path.Combine(_folder, name);
        using var node = ClusterCertificates.IssueNode(_authority, name, "127.0.0.1", roles);
        ClusterCertificates.WriteNode(_authority, node, folder, force: false);
        return folder;
    }

    /// <summary>A node's TLS in memory, for a node this test process runs itself.</summary>
    public ClusterTls Tls(params string[] roles) =>
        ClusterTls.From(
            X509CertificateLoader.LoadCertificate(_authority.RawData),
            ClusterCertificates.IssueNode(_authority, $"{string.Join("-", roles)}-{Interlocked.Increment(ref _issued)}", "127.0.0.1", roles));

    public void Dispose()
    {
        _authority.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A node process may still hold a file for a moment; the temp folder is the system's to clean then.
        }
    }
}
