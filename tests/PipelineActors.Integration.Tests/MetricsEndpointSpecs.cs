using System.Net.Http;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.TestSupport;

namespace PipelineActors.Integration.Tests;

/// <summary>The Prometheus endpoint answers with the documented metrics after a real run.</summary>
[Collection(ClusterCollection.Name)]
public sealed class MetricsEndpointSpecs : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-metrics-").FullName;

    public static readonly string[] Documented =
    [
        "pipeline_frames_accepted", "pipeline_results_delivered", "pipeline_latency_ms", "pipeline_stage_frames",
        "pipeline_stage_compute_ms", "pipeline_stage_bytes_in", "pipeline_stage_bytes_out", "pipeline_plans_activated", "pipeline_frames_in_flight",
    ];

    [Fact]
    public async Task After_a_run_the_scrape_endpoint_serves_the_documented_metrics_with_counts()
    {
        var port = TestPorts.Free();
        using var endpoint = MetricsEndpoint.Start(port, "127.0.0.1");
        var modelPath = Path.Combine(_folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), modelPath);
        var prepared = JobBuilder.Prepare(modelPath, null, 2, Path.Combine(_folder, "store"), (a, parts) => Onnx.Cuts.Balancer.Balance(a, parts));
        await using var head = PipelineNode.Start(new NodeOptions { Roles = [Roles.Coordinator, Roles.Ingest, Roles.Worker], ModelCache = Path.Combine(_folder, "cache"), LogFile = Path.Combine(_folder, "head.log") });
        await head.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        var session = IngestSession.Start(head, prepared, new SyntheticSource(prepared.SourceInputs, 0, 25), new NullResultWriter(), new IngestSettings(2, TimeSpan.FromSeconds(3), 4, 65536), "metrics");
        Assert.Same(session.Completed, await Task.WhenAny(session.Completed, Task.Delay(TimeSpan.FromSeconds(60))));

        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        foreach (var name in Documented)
        {
            Assert.Contains(name, text, StringComparison.Ordinal);
        }

        var delivered = text.Split('\n').First(l => l.StartsWith("pipeline_results_delivered", StringComparison.Ordinal) && !l.StartsWith("pipeline_results_delivered_", StringComparison.Ordinal) || l.StartsWith("pipeline_results_delivered_total", StringComparison.Ordinal));
        Assert.True(double.Parse(delivered.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture) >= 25, delivered);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

}
