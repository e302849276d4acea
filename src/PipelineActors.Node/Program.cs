using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PipelineActors.Node;

if (args.Contains("--bench-loop"))
{
    // Benchmark mode: the bare inference loop a user would otherwise run, in a process of its own.
    try
    {
        return PipelineActors.Harness.BareLoop.Main(args);
    }
    catch (Exception e) when (e is PipelineActors.Onnx.PipelineInputException or FormatException)
    {
        Console.Error.WriteLine($"error: {e.Message}");
        return 2;
    }
}

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, DisableDefaults = false });
builder.Configuration.AddEnvironmentVariables("PIPELINE_");
builder.Configuration.AddCommandLine(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSystemd();
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
builder.Services.AddHostedService<NodeService>();
try
{
    await builder.Build().RunAsync();
    return 0;
}
catch (PipelineActors.Onnx.PipelineInputException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
