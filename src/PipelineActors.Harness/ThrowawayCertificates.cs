using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Harness;

/// <summary>
/// TLS for the local cluster of one <c>pipeline run</c>: a CA that exists only in this process's memory (its key is never
/// written), a certificate for the head, and TLS folders for the workers and for a monitor in a private temp folder
/// (0700, a random name), which goes with this object. A run's cluster so speaks the same TLS with mutual
/// authentication as a deployed one, and nothing outside this run can join it.
/// </summary>
public sealed class ThrowawayCertificates : IDisposable
{
    private readonly X509Certificate2 _authority;

    private ThrowawayCertificates(X509Certificate2 authority, string folder, TimeSpan cost)
    {
        _authority = authority;
        Folder = folder;
        Cost = cost;
    }

    /// <summary>The private folder that holds the workers' and the monitor's TLS folders.</summary>
    public string Folder { get; }

    /// <summary>The TLS folder every worker of the run starts with (<c>pipeline-node --tls</c>).</summary>
    public string WorkerFolder => Path.Combine(Folder, "worker");

    /// <summary>A TLS folder with the monitor role, for <c>pipeline monitor --tls</c> while the run lasts.</summary>
    public string MonitorFolder => Path.Combine(Folder, "monitor");

    /// <summary>How long making the CA and the certificates took.</summary>
    public TimeSpan Cost { get; }

    /// <summary>Makes the CA and the worker and monitor folders.</summary>
    public static ThrowawayCertificates Create()
    {
        var clock = Stopwatch.StartNew();
        var authority = ClusterCertificates.CreateAuthority($"pipeline run {Environment.ProcessId}", TimeSpan.FromDays(7));
        // CreateTempSubdirectory makes a new, randomly named folder with mode 0700 on Unix; set it again in case a
        // platform does not.
        var folder = Directory.CreateTempSubdirectory("pipelineactors-run-tls-").FullName;
        try
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var certificates = new ThrowawayCertificates(authority, folder, TimeSpan.Zero);
            Write(authority, "worker", [Roles.Worker], certificates.WorkerFolder);
            Write(authority, "monitor", [Roles.Monitor], certificates.MonitorFolder);
            return new ThrowawayCertificates(authority, folder, clock.Elapsed);
        }
        catch
        {
            Directory.Delete(folder, recursive: true);
            authority.Dispose();
            throw;
        }
    }

    /// <summary>The head's TLS (this process: coordinator and ingest), in memory only.</summary>
    public ClusterTls Head() =>
        ClusterTls.From(
            X509CertificateLoader.LoadCertificate(_authority.RawData),
            ClusterCertificates.IssueNode(_authority, "head", "127.0.0.1", [Roles.Coordinator, Roles.Ingest], TimeSpan.FromDays(7)));

    public void Dispose()
    {
        _authority.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A worker that has not exited yet may still hold a file; the temp folder is the system's to clean then.
        }
    }

    private static void Write(X509Certificate2 authority, string name, string[] roles, string folder)
    {
        // The host in the certificate is not checked (the cluster CA says who a node is), but it must be a valid one.
        using var node = ClusterCertificates.IssueNode(authority, name, "127.0.0.1", roles, TimeSpan.FromDays(7));
        ClusterCertificates.WriteNode(authority, node, folder, force: false);
    }
}
