using System.Text.Json;
using PipelineActors.Cli.Commands;
using PipelineActors.Harness;
using Spectre.Console.Testing;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline bench</c>'s per-node overhead: each node's CPU per frame against its stage file run alone, with real worker
/// processes and real ONNX Runtime loops, and how the console table and the Markdown report show it.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BenchOverheadSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact(Timeout = 300_000)]
    public async Task Every_pipeline_row_sets_each_node_against_its_stage_alone_with_a_finite_overhead_and_CPU_per_MB()
    {
        var model = _folder["squeezenet.onnx"];
        var written = Cli.Run("zoo", "squeezenet", "--out", model);
        Assert.True(written.ExitCode == 0, written.Error);

        var bench = await Task.Run(() => Cli.Run("bench", "--model", model, "--nodes", "1,2", "--frames", "30", "--loop-seconds", "2", "--json"));

        Assert.True(bench.ExitCode == 0, bench.Error + bench.Output);
        using var report = JsonDocument.Parse(bench.Output);
        var rows = report.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["pipeline x1", "pipeline x2"], rows.Select(r => r.GetProperty("configuration").GetString()));
        foreach (var row in rows)
        {
            output.WriteLine($"{row.GetProperty("configuration")}: {row.GetProperty("nodeOverheads")}");
            var cpu = row.GetProperty("cpuSecondsPerFrameOnNodes").EnumerateArray().Select(c => c.GetDouble()).ToList();
            var nodes = row.GetProperty("nodeOverheads").EnumerateArray().ToList();
            Assert.Equal(cpu.Count, nodes.Count);
            Assert.Equal(cpu.Select(c => c * 1000), nodes.Select(n => n.GetProperty("nodeCpuMsPerFrame").GetDouble()), new Near(0.001));
            // A worker flap can leave a recovery plan with fewer stages than workers; a node with a stage has every figure.
            var hosting = nodes.Where(n => n.GetProperty("stage").ValueKind == JsonValueKind.Number).ToList();
            Assert.NotEmpty(hosting);
            Assert.All(hosting, n =>
            {
                Assert.True(n.GetProperty("stageBareCpuMsPerFrame").GetDouble() > 0, n.ToString());
                Assert.True(double.IsFinite(n.GetProperty("overheadPercent").GetDouble()), n.ToString());
                Assert.True(n.GetProperty("bytesInPerFrame").GetInt64() + n.GetProperty("bytesOutPerFrame").GetInt64() > 0, n.ToString());
                Assert.True(double.IsFinite(n.GetProperty("overheadCpuMsPerMB").GetDouble()), n.ToString());
            });
        }

        var method = report.RootElement.GetProperty("method").GetString()!;
        output.WriteLine(method);
        Assert.Contains("CPU per MB on each end of a link = (node CPU per frame - bare stage CPU per frame)", method, StringComparison.Ordinal);
        Assert.Contains("measured here: pipeline x1: stage 0 ", method, StringComparison.Ordinal);
        Assert.Contains("; pipeline x2: stage 0 ", method, StringComparison.Ordinal);
        Assert.Contains("+ingest", method, StringComparison.Ordinal);
    }

    [Fact]
    public void The_console_table_and_the_Markdown_report_show_each_nodes_bare_stage_CPU_and_overhead()
    {
        var report = MadeUpReport();
        var console = new TestConsole().Width(400);

        BenchCommand.Render(console, report);
        BenchReportWriter.Write(report, _folder["report"]);

        var table = console.Output;
        Assert.Contains("bare stage CPU ms/frame per node", table, StringComparison.Ordinal);
        Assert.Contains("overhead per node", table, StringComparison.Ordinal);
        Assert.Contains("50.00, 28.00", table, StringComparison.Ordinal);
        Assert.Contains("+5.0 %, -3.6 %", table, StringComparison.Ordinal);
        Assert.Contains("(+ingest 0.0040)", table, StringComparison.Ordinal);
        var markdown = File.ReadAllText(Path.Combine(_folder["report"], "README.md"));
        Assert.Contains(
            "Per-node overhead of pipeline x2 against each stage alone (aim <= 5 %): stage 0 on node-a: 52.50 ms CPU a frame against 50.00 ms "
            + "alone, +5.0 %, 4.5 ms per MB in and out; stage 1 on node-b: 27.00 ms CPU a frame against 28.00 ms alone, -3.6 %, -2.5 ms "
            + "per MB in and out.",
            markdown,
            StringComparison.Ordinal);
    }

    /// <summary>A two-worker bench with figures made up for the rendering: stage 0 5 % over its loop, stage 1 3.6 % under.</summary>
    private static BenchReport MadeUpReport()
    {
        var row = new BenchRow("pipeline x2", 2, 20, 1.8, 0.9, 0.9, 0.95, 100, [401_408], [0.0525, 0.027], 0.004, [1 << 28, 1 << 28], 0)
        {
            StageBusyPercent = [90, 80],
            NodeOverheads =
            [
                new NodeOverhead("node-a", 0, 52.5, 50, 5.0, 150_528, 401_408, 4.53),
                new NodeOverhead("node-b", 1, 27, 28, -3.6, 401_408, 4_000, -2.47),
            ],
        };
        return new BenchReport("made-up.onnx", "2 cores", "made up", 11, 11, 90, 1 << 28, [row], [new ReplicaRow(2, 21, 1 << 28)]);
    }

    private sealed class Near(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }
}
