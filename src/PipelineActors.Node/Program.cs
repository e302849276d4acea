using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PipelineActors.Node;
using PipelineActors.Runtime.Hosting;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.Out.Write(NodeArguments.Help);
    return 0;
}

if (args.Contains("--bench-loop") || args.Contains("--bench-segments"))
{
    // Benchmark mode: the bare inference loop a user would otherwise run, in a process of its own.
    try
    {
        return args.Contains("--bench-segments")
            ? PipelineActors.Harness.SegmentLoop.Main(args)
            : PipelineActors.Harness.BareLoop.Main(args);
    }
    catch (Exception e) when (e is PipelineActors.Onnx.PipelineInputException or FormatException)
    {
        Console.Error.WriteLine($"error: {e.Message}");
        return 2;
    }
}

args = NodeArguments.NormaliseSwitches(args);
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, DisableDefaults = false });
builder.Configuration.AddEnvironmentVariables("PIPELINE_");
builder.Configuration.AddCommandLine(args);
NodeOptions options;
PipelineActors.Runtime.Hosting.Security.ClusterTls? tls;
try
{
    // Every setting is checked before the host starts, so a bad one is one sentence, not the host's
    // "failed to start" log with a stack trace.
    options = NodeArguments.From(builder.Configuration);
    NodeArguments.MetricsPort(builder.Configuration);
    NodeArguments.MetricsAddress(builder.Configuration);
    var settings = PipelineSettings.From(PipelineConfig.Build(options));
    if (options.Roles.Any(r => r is Roles.Worker or Roles.Ingest or Roles.Coordinator))
    {
        // A cache folder that is a link or another user's is one sentence here, not a failed start.
        PrivateFiles.EnsureFolder(settings.ModelCacheFolder);
    }
    // Last, so that a typo in another value is named first; a node never falls back to plain TCP on its own.
    tls = NodeArguments.Tls(builder.Configuration, options);
}
catch (Exception e) when (e is PipelineActors.Onnx.PipelineInputException or Akka.Configuration.ConfigurationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSystemd();
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(new NodeTransport(tls));
builder.Services.AddHostedService<NodeService>();
await builder.Build().RunAsync();
return 0;
