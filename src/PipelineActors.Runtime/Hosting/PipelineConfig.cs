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

    /// <summary>Send Akka's log to this file instead of the console.</summary>
    public string? LogFile { get; init; }

    /// <summary>Extra HOCON (a file's text), applied over the roles and under the command line.</summary>
    public string? ExtraHocon { get; init; }
}

/// <summary>
/// Builds a node's configuration: the base file, then one overlay per role, then the user's
/// HOCON, then command-line values (highest precedence). The files live in <c>hocon/</c> and are
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

        var overrides = new List<string>
        {
            $"akka.remote.dot-netty.tcp.hostname = \"{options.Host}\"",
            $"akka.remote.dot-netty.tcp.port = {options.Port}",
            $"akka.cluster.roles = [{string.Join(", ", options.Roles.Select(r => $"\"{r}\""))}]",
            $"akka.cluster.seed-nodes = [{string.Join(", ", options.Seeds.Select(s => $"\"{s}\""))}]",
        };
        if (!string.IsNullOrEmpty(options.PublicHostname))
        {
            overrides.Add($"akka.remote.dot-netty.tcp.public-hostname = \"{options.PublicHostname}\"");
        }

        if (!string.IsNullOrEmpty(options.LogFile))
        {
            overrides.Add($"pipeline.log-file = \"{options.LogFile.Replace("\\", "\\\\", StringComparison.Ordinal)}\"");
            overrides.Add("akka.loggers = [\"PipelineActors.Runtime.Hosting.FileLogger, PipelineActors.Runtime\"]");
            overrides.Add("akka.loglevel = INFO");
            overrides.Add("akka.stdout-loglevel = WARNING");
            overrides.Add("akka.stdout-logger-class = \"PipelineActors.Runtime.Hosting.SilentStdoutLogger, PipelineActors.Runtime\"");
        }

        if (options.IntraOpThreads is { } threads)
        {
            overrides.Add($"pipeline.intra-op-threads = {threads}");
        }

        if (!string.IsNullOrEmpty(options.ModelCache))
        {
            overrides.Add($"pipeline.model-cache = \"{options.ModelCache.Replace("\\", "\\\\", StringComparison.Ordinal)}\"");
        }

        var config = ConfigurationFactory.ParseString(string.Join("\n", overrides));
        if (!string.IsNullOrWhiteSpace(options.ExtraHocon))
        {
            config = config.WithFallback(ConfigurationFactory.ParseString(options.ExtraHocon));
        }

        foreach (var role in options.Roles.Reverse())
        {
            config = config.WithFallback(ConfigurationFactory.ParseString(Embedded($"role-{role}.conf")));
        }

        return config.WithFallback(ConfigurationFactory.ParseString(Embedded("pipeline-base.conf")));
    }

    /// <summary>Where this node caches stage models: the configured folder or a per-user default.</summary>
    public static string ModelCacheFolder(Config config)
    {
        var configured = config.GetString("pipeline.model-cache", string.Empty);
        return string.IsNullOrEmpty(configured)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "pipelineactors", "models")
            : configured;
    }

    private static string Embedded(string file)
    {
        var assembly = typeof(PipelineConfig).Assembly;
        var name = assembly.GetManifestResourceNames().FirstOrDefault(n => n.EndsWith("." + file, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"Configuration file {file} is not embedded.");
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
