using System.Globalization;
using Akka.Configuration;
using Microsoft.Extensions.Configuration;
using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Node;

/// <summary>
/// The node's settings from the command line (<c>--seeds</c>, <c>--roles</c>, ...) and the
/// environment (<c>PIPELINE_SEEDS</c>, <c>PIPELINE_ROLES</c>, ...), the command line winning.
/// Every value is checked here: a typo is one sentence and exit code 2, never a node that starts
/// on a random port or forms a cluster of its own. The host, port, public hostname and seeds may
/// also come from the <c>--config</c> file's Akka keys, under the command line and environment.
/// </summary>
public static class NodeArguments
{
    public const string Help = """
        pipeline-node: one PipelineActors cluster node, run as a service.

        Options (or environment variables PIPELINE_NAME, e.g. PIPELINE_SEEDS; the command line wins):
          --roles LIST            coordinator, worker, ingest, monitor (comma-separated; default worker)
          --tls DIR               this node's TLS folder from 'pipeline certs issue' (also PIPELINE_TLS or
                                  pipeline.tls.folder in --config): TLS with mutual authentication,
                                  seeds written akka.ssl.tcp://pipeline@HOST:PORT. Required unless
                                  --insecure is given.
          --insecure              plain TCP, no authentication: anyone who reaches the port can join;
                                  a warning on every start. Seeds written akka.tcp://pipeline@HOST:PORT.
          --seeds URIS            seed nodes, e.g. akka.ssl.tcp://pipeline@10.0.0.10:4053 (required;
                                  the first node of a cluster lists its own address)
          --host ADDRESS          address to bind (default 127.0.0.1; 0.0.0.0 for all)
          --public-hostname NAME  address other nodes reach this one at (default: --host)
          --port N                TCP port, 0 to 65535 (default 0: any free port)
          --threads N             ONNX Runtime intra-op threads per stage (default 1)
          --model-cache DIR       where stage models are cached by SHA-256
          --state DIR             what survives a restart: the job registry's jobs, jobs' stage files
          --config FILE           extra HOCON over hocon/reference.conf (its akka.remote.dot-netty.tcp
                                  hostname, port and public-hostname and akka.cluster.seed-nodes
                                  stand in for --host, --port, --public-hostname and --seeds)
          --metrics-port N        serve Prometheus metrics on this port
          --metrics-address IP    address the metrics bind (default 127.0.0.1; 0.0.0.0 for all)
          --link-delay MS         wait this long before each frame or chunk sent to another node
                                  (an emulated link's latency, added here: netem is missing;
                                  default 0, pipeline.link-delay in HOCON)
          --help                  print this and exit

        Errors in these values print one sentence and exit with code 2.
        """;

    /// <summary>
    /// Command-line switches the configuration binder cannot read bare (it would take the next argument as their value)
    /// become <c>--switch=true</c>.
    /// </summary>
    public static string[] NormaliseSwitches(string[] args) =>
        args.Select(a => a == "--insecure" ? "--insecure=true" : a).ToArray();

    /// <summary>True when plain TCP is asked for (<c>--insecure</c>, or <c>PIPELINE_INSECURE=true</c>).</summary>
    public static bool Insecure(IConfiguration config) => config["insecure"] switch
    {
        null => false,
        { } text when bool.TryParse(text, out var value) => value,
        "1" => true,
        "0" => false,
        { } text => throw new PipelineInputException($"--insecure '{text}' is neither true nor false."),
    };

    /// <summary>
    /// The node's TLS from <c>--tls</c> (or <c>PIPELINE_TLS</c>, or <c>pipeline.tls.folder</c> in its configuration), or
    /// null with <c>--insecure</c>; checks that the seeds speak the same scheme and that the certificate grants the roles.
    /// </summary>
    public static ClusterTls? Tls(IConfiguration config, NodeOptions options)
    {
        var folder = config["tls"] is { Length: > 0 } given ? given : PipelineSettings.From(PipelineConfig.Build(options)).TlsFolder;
        var insecure = Insecure(config);
        var tls = TransportSecurity.Choose(folder, insecure);
        try
        {
            TransportSecurity.CheckSeeds(options.Seeds, tls is not null);
            if (tls is not null)
            {
                TransportSecurity.CheckRoles(tls, options.Roles, folder);
            }
        }
        catch
        {
            tls?.Dispose();
            throw;
        }

        return tls;
    }

    public static NodeOptions From(IConfiguration config)
    {
        static IReadOnlyList<string> List(string? value) =>
            (value ?? string.Empty).Split([',', ' ', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        // The command line says --model-cache; the environment says PIPELINE_MODEL_CACHE.
        string? Get(string key) => config[key] ?? config[key.Replace('-', '_')];

        var hoconFile = Get("config");
        string? hocon = null;
        var file = Config.Empty;
        if (!string.IsNullOrEmpty(hoconFile))
        {
            hocon = File.Exists(hoconFile)
                ? File.ReadAllText(hoconFile)
                : throw new PipelineInputException($"No such configuration file: '{hoconFile}'.");
            file = Parse(hocon, hoconFile);
        }

        // The file's Akka keys stand in for options not given; the command line and environment win, as everywhere.
        string? FromFile(string path) => file.HasPath(path) ? file.GetString(path) : null;
        const string Tcp = "akka.remote.dot-netty.tcp.";
        var seeds = List(Get("seeds"));
        if (seeds.Count == 0 && file.HasPath("akka.cluster.seed-nodes"))
        {
            seeds = file.GetStringList("akka.cluster.seed-nodes").ToList();
        }

        if (seeds.Count == 0)
        {
            throw new PipelineInputException(
                "No seed nodes given: pass --seeds akka.ssl.tcp://pipeline@HOST:PORT (the first node of a cluster lists its own address), "
                + "or a node would silently form a cluster of its own.");
        }

        foreach (var seed in seeds)
        {
            if (!seed.StartsWith($"akka.tcp://{PipelineConfig.SystemName}@", StringComparison.Ordinal)
                && !seed.StartsWith($"akka.ssl.tcp://{PipelineConfig.SystemName}@", StringComparison.Ordinal))
            {
                throw new PipelineInputException(
                    $"Seed '{seed}' is not a node address; write akka.ssl.tcp://{PipelineConfig.SystemName}@HOST:PORT "
                    + $"(akka.tcp:// with --insecure).");
            }
        }

        var roles = List(Get("roles"));
        var port = Get("port") is { } given
            ? Number(given, "port", 0, 65535)
            : Number(FromFile(Tcp + "port"), "port", 0, 65535, $"{Tcp}port in {hoconFile}");
        return new NodeOptions
        {
            Host = Get("host") ?? FromFile(Tcp + "hostname") ?? "127.0.0.1",
            Port = port ?? 0,
            PublicHostname = Get("public-hostname") ?? FromFile(Tcp + "public-hostname"),
            Seeds = seeds,
            Roles = roles.Count > 0 ? roles : [Roles.Worker],
            IntraOpThreads = Number(Get("threads"), "threads", 1, 256),
            ModelCache = Get("model-cache"),
            StateFolder = Get("state"),
            ExtraHocon = hocon,
            LinkDelay = Milliseconds(Get("link-delay"), "link-delay", PipelineSettings.MaxLinkDelay),
        };
    }

    /// <summary>The metrics port, if one is given and valid.</summary>
    public static int? MetricsPort(IConfiguration config) =>
        Number(config["metrics-port"] ?? config["metrics_port"], "metrics-port", 1, 65535);

    /// <summary>The address the metrics endpoint binds (null: 127.0.0.1), checked.</summary>
    public static string? MetricsAddress(IConfiguration config)
    {
        var address = config["metrics-address"] ?? config["metrics_address"];
        _ = PipelineActors.Runtime.DataPath.Monitoring.Metrics.MetricsEndpoint.ListenHost(address);
        return address;
    }

    private static TimeSpan? Milliseconds(string? text, string name, TimeSpan max)
    {
        if (text is null)
        {
            return null;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && double.IsFinite(ms) && ms >= 0
            && ms <= max.TotalMilliseconds
            ? TimeSpan.FromMilliseconds(ms)
            : throw new PipelineInputException($"--{name} '{text}' is not a number of milliseconds from 0 to {max.TotalMilliseconds:0}.");
    }

    private static int? Number(string? text, string name, int min, int max, string? where = null)
    {
        if (text is null)
        {
            return null;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new PipelineInputException($"{where ?? "--" + name} '{text}' is not a whole number from {min} to {max}.");
    }

    private static Config Parse(string hocon, string file)
    {
        try
        {
            return ConfigurationFactory.ParseString(hocon);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The parser's message spans lines and names its own internals; its first line says where.
            var first = e.Message.Split('\n', 2)[0].Trim().TrimEnd('.');
            throw new PipelineInputException($"The configuration file '{file}' is not valid HOCON: {first}.");
        }
    }
}
