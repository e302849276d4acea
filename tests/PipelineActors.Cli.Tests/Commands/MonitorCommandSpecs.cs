using System.Text.Json;
using PipelineActors.Cli.Commands;
using PipelineActors.Onnx.Zoo;
using Spectre.Console.Testing;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Sink;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>The monitoring console: its rendering, and its one-shot JSON snapshot of a running cluster.</summary>
public sealed class MonitorCommandSpecs : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-monitor-").FullName;

    [Fact]
    public void The_dashboard_shows_members_stages_end_to_end_figures_a_sparkline_and_events()
    {
        var snapshot = new MonitorSnapshot(
            1_700_000_000_000,
            [
                new MemberRow("127.0.0.1:4001", ["coordinator", "ingest"], "Up", true, null, null, []),
                new MemberRow("127.0.0.1:4002", ["worker"], "Up", true, 4, 8L << 30, ["0/2"]),
                new MemberRow("127.0.0.1:4003", ["worker"], "Up", false, 4, 8L << 30, ["1/2"]),
            ],
            [
                new StageRates(0, "127.0.0.1:4002", "0..81 (conv1 .. layer3.0)", 0.55, 900, 24.5, 91, 1, 19.8, 22.1, 150_528, 802_816, 19.7),
                new StageRates(1, "127.0.0.1:4003", "82..178", 0.45, 899, 24.4, 88, 0, 18.2, 20.0, 802_816, 4_000, 0.1),
            ],
            new EndToEnd("run", 1_000, 995, 4, 12, 0, 0, 1, 3, 2, 24.4, 61, 90, 120, 3, [10, 20, 24, 24.4]),
            [new EventRow(1_700_000_000_000, "supervisor", "worker 127.0.0.1:4009 unreachable; moving its stages")]);
        var console = new TestConsole().Width(180);
        console.Write(MonitorView.Render(snapshot));
        var text = console.Output;

        Assert.Contains("127.0.0.1:4002", text, StringComparison.Ordinal);
        Assert.Contains("unreachable", text, StringComparison.Ordinal);
        Assert.Contains("coordinator,ingest", text, StringComparison.Ordinal);
        Assert.Contains("24.5", text, StringComparison.Ordinal); // a stage's frames/s
        Assert.Contains("19.8 / 22.1", text, StringComparison.Ordinal); // compute p50 / p95
        Assert.Contains("1000 / 995 / 4", text, StringComparison.Ordinal); // in / out / in flight
        Assert.Contains("61 / 90 / 120 ms", text, StringComparison.Ordinal);
        Assert.Contains(MonitorView.Sparkline([10, 20, 24, 24.4]), text, StringComparison.Ordinal);
        Assert.Contains("moving its stages", text, StringComparison.Ordinal);
        Assert.Equal("▄▇██", MonitorView.Sparkline([10, 20, 24, 24.4]));
    }

    [Fact]
    public async Task Once_json_prints_a_snapshot_of_a_running_three_node_cluster()
    {
        var modelPath = Path.Combine(_folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), modelPath);
        var prepared = JobBuilder.Prepare(modelPath, null, 2, Path.Combine(_folder, "store"), (a, parts) => Onnx.Cuts.Balancer.Balance(a, parts));
        await using var head = PipelineNode.Start(new NodeOptions { Roles = [Roles.Coordinator, Roles.Ingest], LogFile = Path.Combine(_folder, "head.log") });
        await head.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        await using var workerA = PipelineNode.Start(new NodeOptions { Roles = [Roles.Worker], Seeds = [head.SeedUri], ModelCache = Path.Combine(_folder, "a"), LogFile = Path.Combine(_folder, "a.log") });
        await using var workerB = PipelineNode.Start(new NodeOptions { Roles = [Roles.Worker], Seeds = [head.SeedUri], ModelCache = Path.Combine(_folder, "b"), LogFile = Path.Combine(_folder, "b.log") });
        await workerA.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        await workerB.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        var session = IngestSession.Start(head, prepared, new SyntheticSource(prepared.SourceInputs, 20, 2_000, live: false), new NullResultWriter(), new IngestSettings(3, TimeSpan.FromSeconds(3), 4, 65536), "monitored");

        var result = await Task.Run(() => Cli.Run("monitor", "--seed", head.SeedUri, "--once", "--json", "--wait", "30"));

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        var members = root.GetProperty("members").EnumerateArray().ToList();
        Assert.Equal(4, members.Count); // head, two workers, and the monitor itself
        Assert.Contains(members, m => m.GetProperty("roles").EnumerateArray().Any(r => r.GetString() == "monitor"));
        Assert.Equal(2, members.Count(m => m.GetProperty("roles").EnumerateArray().Any(r => r.GetString() == "worker") && m.GetProperty("cores").GetInt32() > 0));
        var stages = root.GetProperty("stages").EnumerateArray().ToList();
        Assert.Equal(2, stages.Count);
        Assert.All(stages, s => Assert.True(s.GetProperty("frames").GetInt64() > 0));
        var pipeline = root.GetProperty("pipeline");
        Assert.Equal("monitored", pipeline.GetProperty("jobId").GetString());
        Assert.True(pipeline.GetProperty("resultsOut").GetInt64() > 0);
        Assert.Equal(0, pipeline.GetProperty("lost").GetInt64());
        Assert.Contains(root.GetProperty("events").EnumerateArray(), e => e.GetProperty("text").GetString()!.Contains("plan epoch", StringComparison.Ordinal));
        _ = session;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // log files may still be open while the actor systems stop
        }
    }
}
