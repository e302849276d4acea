using PipelineActors.Onnx;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>
/// How a node or a CLI verb talks to its cluster: TLS with mutual authentication from a node's TLS folder, or plain TCP
/// asked for by name with <c>--insecure</c>. Nothing in between: a node that silently fell back to plain TCP would let
/// anyone who reaches its port into the pipeline.
/// </summary>
public static class TransportSecurity
{
    public const string TlsScheme = "akka.ssl.tcp";
    public const string PlainScheme = "akka.tcp";

    /// <summary>What a node or verb logs on every start without TLS.</summary>
    public const string InsecureWarning =
        "warning: --insecure: this node talks plain TCP with no authentication; anyone who reaches its port can join the cluster, "
        + "read its frames and models and send it commands. Use --tls DIR outside a trusted test network.";

    /// <summary>How to make a TLS folder, for the sentences that ask for one.</summary>
    public const string HowToMakeCertificates =
        "make one with 'pipeline certs init --out CA' and 'pipeline certs issue --ca CA --name NODE --roles ROLES --host HOST --out DIR'";

    /// <summary>
    /// The TLS of a node or verb from <paramref name="folder"/> (as <c>pipeline certs issue</c> writes it), or null with
    /// <paramref name="insecure"/>; one sentence when neither or both are given, or the folder is unusable.
    /// </summary>
    public static ClusterTls? Choose(string? folder, bool insecure)
    {
        var hasFolder = !string.IsNullOrWhiteSpace(folder);
        if (hasFolder && insecure)
        {
            throw new PipelineInputException("Give either --tls DIR or --insecure, not both.");
        }

        if (!hasFolder && !insecure)
        {
            throw new PipelineInputException(
                $"No TLS folder given: pass --tls DIR ({HowToMakeCertificates}), or --insecure for plain TCP that anyone who reaches "
                + "the port can join.");
        }

        if (!hasFolder)
        {
            return null;
        }

        if (!Directory.Exists(folder))
        {
            throw new PipelineInputException($"The TLS folder '{folder}' does not exist; {HowToMakeCertificates}.");
        }

        return ClusterTls.Load(folder!);
    }

    /// <summary>
    /// Every seed must speak this node's scheme: a TLS node cannot reach a plain seed, and a plain node given a TLS seed
    /// retries without end, logging hundreds of thousands of lines a second.
    /// </summary>
    public static void CheckSeeds(IEnumerable<string> seeds, bool tls, string option = "--seeds")
    {
        var scheme = tls ? TlsScheme : PlainScheme;
        foreach (var seed in seeds)
        {
            if (!seed.StartsWith($"{scheme}://", StringComparison.Ordinal))
            {
                throw new PipelineInputException(tls
                    ? $"{option} '{seed}' is not a TLS address; with --tls write {TlsScheme}://{PipelineConfig.SystemName}@HOST:PORT."
                    : $"{option} '{seed}' is not a plain TCP address; with --insecure write {PlainScheme}://{PipelineConfig.SystemName}@HOST:PORT, "
                      + "or give --tls DIR to join a TLS cluster.");
            }
        }
    }

    /// <summary>
    /// The node's claimed roles must be in its certificate, or every other member downs it a moment after it joins: say so
    /// before it starts.
    /// </summary>
    public static void CheckRoles(ClusterTls tls, IEnumerable<string> claimed, string folder)
    {
        var check = CertificateRoles.Check(claimed, tls.Roles);
        if (!check.Allowed)
        {
            throw new PipelineInputException(
                $"The certificate in {folder} grants {string.Join(", ", tls.Roles)} but this node {check}; issue it a certificate with "
                + "'pipeline certs issue --roles ...' that names every role it runs.");
        }
    }
}
