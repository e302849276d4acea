using System.Net.Http;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting;
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
        var prepared = ZooJobs.Prepare(_folder, "tinynet", parts: 2, byFlops: true);
        await using var cluster = await TestCluster.StartAsync(
            new TestClusterOptions { HeadRoles = [Roles.Coordinator, Roles.Ingest, Roles.Worker], LogToFiles = true });
        var source = new SyntheticSource(prepared.SourceInputs, 0, 25);
        var session = IngestSession.Start(cluster.Head, prepared, source, new NullResultWriter(), TestStreams.Settings(window: 2), "metrics");
        Assert.Same(session.Completed, await Task.WhenAny(session.Completed, Task.Delay(TimeSpan.FromSeconds(60))));

        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        foreach (var name in Documented)
        {
            Assert.Contains(name, text, StringComparison.Ordinal);
        }

        var delivered = text.Split('\n').First(l => l.StartsWith("pipeline_results_delivered", StringComparison.Ordinal)
            && !l.StartsWith("pipeline_results_delivered_", StringComparison.Ordinal)
                || l.StartsWith("pipeline_results_delivered_total", StringComparison.Ordinal));
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
