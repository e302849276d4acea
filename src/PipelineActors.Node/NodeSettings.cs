using System.Globalization;
using Microsoft.Extensions.Configuration;
using PipelineActors.Runtime.Cluster;

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

        var hoconFile = config["config"];
        string? hocon = null;
        if (!string.IsNullOrEmpty(hoconFile))
        {
            hocon = File.Exists(hoconFile)
                ? File.ReadAllText(hoconFile)
                : throw new Onnx.PipelineInputException($"No such configuration file: '{hoconFile}'.");
        }

        var roles = List(config["roles"]);
        return new NodeOptions
        {
            Host = config["host"] ?? "127.0.0.1",
            Port = int.TryParse(config["port"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var port) ? port : 0,
            PublicHostname = config["public-hostname"],
            Seeds = List(config["seeds"]),
            Roles = roles.Count > 0 ? roles : [Roles.Worker],
            IntraOpThreads = int.TryParse(config["threads"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var threads) ? threads : null,
            ModelCache = config["model-cache"],
            ExtraHocon = hocon,
        };
    }
}
