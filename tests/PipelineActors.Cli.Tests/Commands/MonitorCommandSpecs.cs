using System.Text.Json;
using PipelineActors.Cli.Commands;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using Spectre.Console.Testing;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>The monitoring console: its rendering, and its one-shot JSON snapshot of a running cluster.</summary>
public sealed class MonitorCommandSpecs : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-monitor-").FullName;

    [Fact]
    public void The_dashboard_shows_members_a_row_per_job_each_jobs_plan_a_sparkline_and_events()
    {
        var snapshot = new MonitorSnapshot(
            1_700_000_000_000,
            [
                new MemberRow("127.0.0.1:4001", ["coordinator", "ingest"], "Up", true, null, null, []),
                new MemberRow("127.0.0.1:4002", ["worker"], "Up", true, 4, 8L << 30, ["cam1 0/2", "cam2 0/1"]),
                new MemberRow("127.0.0.1:4003", ["worker"], "Up", false, 4, 8L << 30, ["cam1 1/2"]),
            ],
            [
                new JobView(
                    "cam1",
                    ReportedJobStates.Running,
                    new EndToEnd(1_000, 995, 4, 12, 0, 0, 0, 1, 3, 2, 24.4, 61, 90, 120, 3, [10, 20, 24, 24.4]),
                    [
                        new StageRates(0, "127.0.0.1:4002", "0..81 (conv1 .. layer3.0)", 0.55, 900, 24.5, 91, 1, 19.8, 22.1, 150_528, 802_816, 19.7),
                        new StageRates(1, "127.0.0.1:4003", "82..178", 0.45, 899, 24.4, 88, 0, 18.2, 20.0, 802_816, 4_000, 0.1),
                    ],
                    [new EventRow(1_700_000_000_100, "ingest", "plan epoch 3 live (recovery)")]),
                new JobView(
                    "cam2",
                    ReportedJobStates.Silent,
                    new EndToEnd(77, 70, 7, 0, 0, 0, 0, 0, 0, 0, 0, 240, 310, 400, 1, [5, 0]),
                    [new StageRates(0, "127.0.0.1:4002", "0..178", 1, 70, 0, 0, 0, 33.3, 44.4, 150_528, 4_000, 0)],
                    [new EventRow(1_700_000_000_200, "ingest", "camera rtsp://cam2 dropped; restarting")]),
            ],
            [new EventRow(1_700_000_000_000, "supervisor", "worker 127.0.0.1:4009 unreachable; moving its stages")]);
        var console = new TestConsole().Width(180);
        console.Write(MonitorView.Render(snapshot));
        var text = console.Output;

        Assert.Contains("127.0.0.1:4002", text, StringComparison.Ordinal);
        Assert.Contains("unreachable", text, StringComparison.Ordinal);
        Assert.Contains("coordinator,ingest", text, StringComparison.Ordinal);
        Assert.Contains("cam1 0/2, cam2 0/1", text, StringComparison.Ordinal);
        var rows = text.Split('\n');
        var cam1Row = Assert.Single(rows, r => r.Contains("│ cam1 ", StringComparison.Ordinal) && r.Contains("running", StringComparison.Ordinal));
        Assert.Contains("61 / 90", cam1Row, StringComparison.Ordinal); // p50 / p95
        Assert.Contains("1000 / 995 / 12 / 1", cam1Row, StringComparison.Ordinal); // in / out / skipped / failed
        Assert.Contains("2 (epoch 3)", cam1Row, StringComparison.Ordinal);
        var cam2Row = Assert.Single(rows, r => r.Contains("│ cam2 ", StringComparison.Ordinal) && r.Contains("silent", StringComparison.Ordinal));
        Assert.Contains("240 / 310", cam2Row, StringComparison.Ordinal);
        Assert.Contains("77 / 70 / 0 / 0", cam2Row, StringComparison.Ordinal);
        Assert.Contains("job cam1: plan and stages", text, StringComparison.Ordinal);
        Assert.Contains("job cam2: plan and stages", text, StringComparison.Ordinal);
        Assert.Contains("24.5", text, StringComparison.Ordinal); // a stage's frames/s
        Assert.Contains("19.8 / 22.1", text, StringComparison.Ordinal); // compute p50 / p95
        Assert.Contains("33.3 / 44.4", text, StringComparison.Ordinal);
        Assert.Contains("1000 / 995 / 4", text, StringComparison.Ordinal); // in / out / in flight
        Assert.Contains("61 / 90 / 120 ms", text, StringComparison.Ordinal);
        Assert.Contains(MonitorView.Sparkline([10, 20, 24, 24.4]), text, StringComparison.Ordinal);
        Assert.Contains("moving its stages", text, StringComparison.Ordinal);
        Assert.Contains("cam1 ingest: plan epoch 3 live", text, StringComparison.Ordinal);
        Assert.Contains("cam2 ingest: camera rtsp://cam2 dropped", text, StringComparison.Ordinal);
        Assert.Equal("▄▇██", MonitorView.Sparkline([10, 20, 24, 24.4]));

        // One job selected: every job keeps its row, only the selected one shows its plan and events.
        var selected = new TestConsole().Width(180);
        selected.Write(MonitorView.Render(snapshot, "cam2"));
        Assert.Contains("│ cam1 ", selected.Output, StringComparison.Ordinal);
        Assert.Contains("job cam2: plan and stages", selected.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("job cam1: plan and stages", selected.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("plan epoch 3 live", selected.Output, StringComparison.Ordinal);
        Assert.Contains("moving its stages", selected.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Once_json_prints_a_snapshot_of_a_running_three_node_cluster()
    {
        var prepared = ZooJobs.Prepare(_folder, "tinynet", parts: 2, byFlops: true);
        await using var cluster = await TestCluster.StartAsync(new TestClusterOptions { Workers = 2, LogToFiles = true });
        var head = cluster.Head;
        var source = new SyntheticSource(prepared.SourceInputs, 20, 2_000, live: false);
        var session = IngestSession.Start(head, prepared, source, new NullResultWriter(), TestStreams.Settings(window: 3), "monitored");

        var result = await Task.Run(() => Cli.Run("monitor", "--seed", head.SeedUri, "--insecure", "--once", "--json", "--wait", "30"));

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        var members = root.GetProperty("members").EnumerateArray().ToList();
        Assert.Equal(4, members.Count); // head, two workers, and the monitor itself
        Assert.Contains(members, m => m.GetProperty("roles").EnumerateArray().Any(r => r.GetString() == "monitor"));
        var workers = members.Where(m => m.GetProperty("roles").EnumerateArray().Any(r => r.GetString() == "worker")).ToList();
        Assert.Equal(2, workers.Count(m => m.GetProperty("cores").GetInt32() > 0));
        var job = Assert.Single(root.GetProperty("jobs").EnumerateArray());
        Assert.Equal("monitored", job.GetProperty("jobId").GetString());
        Assert.Equal(ReportedJobStates.Running, job.GetProperty("state").GetString());
        var stages = job.GetProperty("stages").EnumerateArray().ToList();
        Assert.Equal(2, stages.Count);
        Assert.All(stages, s => Assert.True(s.GetProperty("frames").GetInt64() > 0));
        var pipeline = job.GetProperty("pipeline");
        Assert.True(pipeline.GetProperty("resultsOut").GetInt64() > 0);
        Assert.Equal(0, pipeline.GetProperty("lost").GetInt64());
        var events = job.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("text").GetString()!);
        Assert.Contains(events, e => e.Contains("plan epoch", StringComparison.Ordinal));
        var hosting = members.SelectMany(m => m.GetProperty("stages").EnumerateArray()).Select(s => s.GetString()).Order(StringComparer.Ordinal);
        Assert.Equal(["monitored 0/2", "monitored 1/2"], hosting);
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
