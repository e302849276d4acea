using System.Reflection;
using Akka.Configuration;

namespace PipelineActors.Runtime.Hosting;

/// <summary>Node roles; one node may carry several.</summary>
public static class Roles
{
    public const string Coordinator = "coordinator";
    public const string Worker = "worker";
    public const string Ingest = "ingest";
    public const string Monitor = "monitor";

    public static readonly IReadOnlyList<string> All = [Coordinator, Worker, Ingest, Monitor];
}

/// <summary>What the command line and environment may override in a node's HOCON.</summary>
public sealed record NodeOptions
{
    public string Host { get; init; } = "127.0.0.1";

    public int Port { get; init; }

    public string? PublicHostname { get; init; }

    public IReadOnlyList<string> Seeds { get; init; } = [];

    public IReadOnlyList<string> Roles { get; init; } = [];

    public int? IntraOpThreads { get; init; }

    public string? ModelCache { get; init; }

    /// <summary>Where the node keeps what survives a restart (<c>pipeline.state-folder</c>); null: configuration's.</summary>
    public string? StateFolder { get; init; }

    /// <summary><c>pipeline.link-delay</c>: added before each frame or chunk this node sends to a remote actor.</summary>
    public TimeSpan? LinkDelay { get; init; }

    /// <summary>Send Akka's log to this file instead of the console.</summary>
    public string? LogFile { get; init; }

    /// <summary>Extra HOCON (a file's text), applied over the roles and under the command line.</summary>
    public string? ExtraHocon { get; init; }
}

/// <summary>
/// Builds a node's configuration: <c>reference.conf</c> (every default), then an overlay per role
/// where one exists, then the user's HOCON, then command-line values (highest precedence). The files live in <c>hocon/</c> and are
/// embedded, so a node needs nothing beside its binary.
/// </summary>
public static class PipelineConfig
{
    public const string SystemName = "pipeline";

    public static Config Build(NodeOptions options)
    {
        foreach (var role in options.Roles)
        {
            if (!Roles.All.Contains(role))
            {
                throw new Onnx.PipelineInputException($"Unknown role '{role}'; roles are {string.Join(", ", Roles.All)}.");
            }
        }

        if (options.Port is < 0 or > 65535)
        {
            throw new Onnx.PipelineInputException($"Port {options.Port} is out of range; give 0 to 65535 (0 picks a free port).");
        }

        if (string.IsNullOrWhiteSpace(options.Host))
        {
            throw new Onnx.PipelineInputException("The host to bind is empty; give an address such as 0.0.0.0 or 127.0.0.1.");
        }

        var overrides = new List<string>
        {
            $"akka.remote.dot-netty.tcp.hostname = {Hocon.Quote(options.Host)}",
            $"akka.remote.dot-netty.tcp.port = {options.Port}",
            $"akka.cluster.roles = {Hocon.List(options.Roles)}",
            $"akka.cluster.seed-nodes = {Hocon.List(options.Seeds)}",
        };
        if (!string.IsNullOrEmpty(options.PublicHostname))
        {
            overrides.Add($"akka.remote.dot-netty.tcp.public-hostname = {Hocon.Quote(options.PublicHostname)}");
        }

        if (!string.IsNullOrEmpty(options.LogFile))
        {
            overrides.Add($"pipeline.log-file = {Hocon.Quote(options.LogFile)}");
            overrides.Add("akka.loggers = [\"PipelineActors.Runtime.Hosting.FileLogger, PipelineActors.Runtime\"]");
            overrides.Add("akka.loglevel = INFO");
            overrides.Add("akka.stdout-loglevel = WARNING");
            overrides.Add("akka.stdout-logger-class = \"PipelineActors.Runtime.Hosting.SilentStdoutLogger, PipelineActors.Runtime\"");
        }

        if (options.IntraOpThreads is { } threads)
        {
            overrides.Add($"pipeline.intra-op-threads = {threads}");
        }

        if (!string.IsNullOrEmpty(options.StateFolder))
        {
            overrides.Add($"pipeline.state-folder = {Hocon.Quote(options.StateFolder)}");
        }

        if (!string.IsNullOrEmpty(options.ModelCache))
        {
            overrides.Add($"pipeline.model-cache = {Hocon.Quote(options.ModelCache)}");
        }

        if (options.LinkDelay is { } delay)
        {
            // Milliseconds to the microsecond, in invariant digits (Akka's HOCON has no "us" unit).
            overrides.Add($"pipeline.link-delay = {delay.TotalMilliseconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}ms");
        }

        var config = ConfigurationFactory.ParseString(string.Join("\n", overrides));
        if (!string.IsNullOrWhiteSpace(options.ExtraHocon))
        {
            config = config.WithFallback(ConfigurationFactory.ParseString(options.ExtraHocon));
        }

        foreach (var role in options.Roles.Reverse())
        {
            if (Embedded($"role-{role}.conf") is { } overlay)
            {
                config = config.WithFallback(ConfigurationFactory.ParseString(overlay));
            }
        }

        return config.WithFallback(Reference);
    }

    /// <summary>The defaults of every node (<c>hocon/reference.conf</c>), and nothing else.</summary>
    public static Config Reference { get; } = ConfigurationFactory.ParseString(
        Embedded("reference.conf") ?? throw new InvalidOperationException("hocon/reference.conf is not embedded."));

    private static string? Embedded(string file)
    {
        var assembly = typeof(PipelineConfig).Assembly;
        var name = assembly.GetManifestResourceNames().FirstOrDefault(n => n.EndsWith("." + file, StringComparison.Ordinal));
        if (name is null)
        {
            return null;
        }

        using var stream = assembly.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
