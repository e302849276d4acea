using System.Globalization;
using Microsoft.Extensions.Configuration;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Node;

/// <summary>
/// The node's settings from the command line (<c>--seeds</c>, <c>--roles</c>, ...) and the
/// environment (<c>PIPELINE_SEEDS</c>, <c>PIPELINE_ROLES</c>, ...), the command line winning.
/// </summary>
public static class NodeSettings
{
    public static NodeOptions From(IConfiguration config)
    {
        static IReadOnlyList<string> List(string? value) =>
            (value ?? string.Empty).Split([',', ' ', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        // The command line says --model-cache; the environment says PIPELINE_MODEL_CACHE.
        string? Get(string key) => config[key] ?? config[key.Replace('-', '_')];

        var hoconFile = Get("config");
        string? hocon = null;
        if (!string.IsNullOrEmpty(hoconFile))
        {
            hocon = File.Exists(hoconFile)
                ? File.ReadAllText(hoconFile)
                : throw new Onnx.PipelineInputException($"No such configuration file: '{hoconFile}'.");
        }

        var roles = List(Get("roles"));
        return new NodeOptions
        {
            Host = Get("host") ?? "127.0.0.1",
            Port = int.TryParse(Get("port"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var port) ? port : 0,
            PublicHostname = Get("public-hostname"),
            Seeds = List(Get("seeds")),
            Roles = roles.Count > 0 ? roles : [Roles.Worker],
            IntraOpThreads = int.TryParse(Get("threads"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var threads) ? threads : null,
            ModelCache = Get("model-cache"),
            ExtraHocon = hocon,
        };
    }
}
