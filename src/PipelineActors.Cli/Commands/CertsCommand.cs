using PipelineActors.Runtime.Hosting;
using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting.Security;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline certs init|issue</c>: make a cluster CA and node certificates for TLS with mutual authentication.</summary>
internal static class CertsCommand
{
    public static Command Create(CliContext context)
    {
        var command = new Command("certs", "Make the certificates that let nodes into a cluster: one CA per cluster, one certificate per node.");
        command.Add(Init(context));
        command.Add(Issue(context));
        return command;
    }

    private static Command Init(CliContext context)
    {
        var output = new Option<string>("--out")
        {
            Description = "Folder to write the CA into (ca.crt, ca.key); keep ca.key off the nodes.",
            Required = true,
        };
        var name = new Option<string>("--name")
        {
            Description = "The CA's name, shown in every certificate it signs.",
            DefaultValueFactory = _ => "pipeline cluster",
        };
        var force = new Option<bool>("--force") { Description = "Replace an existing CA; every certificate it issued stops working." };
        var command = new Command("init", "Make a new cluster CA.") { output, name, force };
        command.SetAction(parse => context.Guard(() =>
        {
            var folder = parse.GetValue(output)!;
            using var authority = ClusterCertificates.CreateAuthority(parse.GetValue(name)!);
            ClusterCertificates.WriteAuthority(authority, folder, parse.GetValue(force));
            context.Console.MarkupLine(
                $"wrote {Markup.Escape(folder)}: CA {Markup.Escape(authority.Subject)}, valid until {Date(authority.NotAfter)}, "
                + $"SHA-256 {Fingerprint(authority)}");
            return 0;
        }));
        return command;
    }

    private static Command Issue(CliContext context)
    {
        var ca = new Option<string>("--ca") { Description = "The CA folder that 'pipeline certs init' wrote.", Required = true };
        var name = new Option<string>("--name") { Description = "The node's name (letters, digits, '.', '_', '-').", Required = true };
        var roles = new Option<string>("--roles")
        {
            Description = $"Roles the node may take, comma-separated: {string.Join(", ", Roles.All)}.",
            Required = true,
        };
        var host = new Option<string>("--host") { Description = "The IP address or DNS name the node listens on.", Required = true };
        var output = new Option<string>("--out")
        {
            Description = "The node's TLS folder to write (ca.crt, node.crt, node.key, node.pfx).",
            Required = true,
        };
        var force = new Option<bool>("--force") { Description = "Replace the folder if it is not empty." };
        var command = new Command("issue", "Make a node certificate signed by the cluster CA, naming the node's host and roles.")
        {
            ca, name, roles, host, output, force,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var granted = ParseRoles(parse.GetValue(roles)!);
            using var authority = ClusterCertificates.ReadAuthority(parse.GetValue(ca)!);
            using var node = ClusterCertificates.IssueNode(authority, parse.GetValue(name)!, parse.GetValue(host)!, granted);
            var folder = parse.GetValue(output)!;
            ClusterCertificates.WriteNode(authority, node, folder, parse.GetValue(force));
            context.Console.MarkupLine(
                $"wrote {Markup.Escape(folder)}: node {Markup.Escape(parse.GetValue(name)!)} ({string.Join(", ", granted)}) at "
                + $"{Markup.Escape(parse.GetValue(host)!)}, valid until {Date(node.NotAfter)}, SHA-256 {Fingerprint(node)}");
            return 0;
        }));
        return command;
    }

    private static List<string> ParseRoles(string text)
    {
        var roles = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (roles.Count == 0)
        {
            throw new PipelineInputException($"--roles needs at least one of {string.Join(", ", Roles.All)}.");
        }

        foreach (var role in roles)
        {
            ClusterCertificates.CheckRole(role);
        }

        return roles;
    }

    private static string Date(DateTime when) => when.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static string Fingerprint(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate) =>
        Convert.ToHexString(certificate.GetCertHash(HashAlgorithmName.SHA256)).ToLowerInvariant();
}
