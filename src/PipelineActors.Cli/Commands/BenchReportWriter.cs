using System.Globalization;
using System.Text;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Cli.Commands;

/// <summary>Writes a benchmark as PNG plots (ScottPlot) and a Markdown summary, into a folder, all or nothing.</summary>
public static class BenchReportWriter
{
    public static void Write(BenchReport report, string folder)
    {
        var target = Path.GetFullPath(folder);
        var temp = target + $".partial-{Environment.ProcessId}";
        if (Directory.Exists(temp))
        {
            Directory.Delete(temp, recursive: true);
        }

        Directory.CreateDirectory(temp);
        Scaling(report, Path.Combine(temp, "throughput-vs-nodes.png"));
        Busy(report, Path.Combine(temp, "stage-busy.png"));
        LatencyCdf(report, Path.Combine(temp, "latency-cdf.png"));
        if (report.KillRun is { } kill)
        {
            Recovery(kill, Path.Combine(temp, "throughput-over-time-kill.png"));
        }

        File.WriteAllText(Path.Combine(temp, "README.md"), Summary(report));
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        Directory.Move(temp, target);
    }

    private static void Scaling(BenchReport r, string path)
    {
        var plot = new ScottPlot.Plot();
        var nodes = r.Rows.Select(x => (double)x.Nodes).ToArray();
        var ideal = plot.Add.Scatter(nodes, nodes.Select(n => n * r.BareLoopFps).ToArray());
        ideal.LegendText = "ideal: N x bare loop";
        ideal.LinePattern = ScottPlot.LinePattern.Dashed;
        var pipeline = plot.Add.Scatter(nodes, r.Rows.Select(x => x.FramesPerSecond).ToArray());
        pipeline.LegendText = "pipeline";
        if (r.Replicas.Count > 0)
        {
            var replicas = plot.Add.Scatter(r.Replicas.Select(x => (double)x.Nodes).ToArray(), r.Replicas.Select(x => x.Fps).ToArray());
            replicas.LegendText = "N concurrent replicas";
        }

        Save(plot, $"{r.Model}: throughput against worker count", "workers", "frames/s", path);
    }

    private static void Busy(BenchReport r, string path)
    {
        var row = r.Rows.OrderByDescending(x => x.Nodes).First();
        var plot = new ScottPlot.Plot();
        plot.Add.Bars(row.StageBusyPercent.ToArray());
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, row.StageBusyPercent.Count).Select(i => (double)i).ToArray(),
            Enumerable.Range(0, row.StageBusyPercent.Count).Select(i => $"stage {i}").ToArray());
        plot.Axes.SetLimitsY(0, 100);
        Save(plot, $"{r.Model}: busy % per stage, pipeline on {row.Nodes} worker(s)", null, "busy %", path, legend: false);
    }

    /// <summary>A row's configuration, with its codec where that is not exact (bench --codecs runs the planned one per codec).</summary>
    private static string Named(BenchRow row) => row.Codec == Transfer.TransferSpec.Exact ? row.Configuration : $"{row.Configuration} ({row.Codec})";

    private static void LatencyCdf(BenchReport r, string path)
    {
        var plot = new ScottPlot.Plot();
        foreach (var row in r.Rows.Where(x => x.LatencyPercentiles.Count > 0))
        {
            var line = plot.Add.Scatter(row.LatencyPercentiles.ToArray(),
                Enumerable.Range(0, row.LatencyPercentiles.Count).Select(p => p / 100.0).ToArray());
            line.LegendText = Named(row);
            line.MarkerSize = 0;
        }

        Save(plot, $"{r.Model}: end-to-end latency CDF", "latency (ms), capture to result", "fraction of frames", path);
    }

    private static void Recovery(RunReport kill, string path)
    {
        var plot = new ScottPlot.Plot();
        var line = plot.Add.Scatter(kill.ThroughputSeries.Select(p => p.Seconds).ToArray(),
            kill.ThroughputSeries.Select(p => p.FramesPerSecond).ToArray());
        line.LegendText = "results/s (0.5 s bins)";
        if (kill.KillAtSeconds is { } k)
        {
            var at = plot.Add.VerticalLine(k);
            at.LegendText = $"SIGKILL {kill.KilledNode}";
            at.LinePattern = ScottPlot.LinePattern.Dashed;
        }

        if (kill.RecoveryLiveAtSeconds is { } l)
        {
            var live = plot.Add.VerticalLine(l);
            live.LegendText = "recovery plan live";
        }

        var title = kill.RecoveryToFirstResultMs is { } ms
            ? $"{kill.Model}: throughput across a worker kill ({kill.Lost} lost; first result via the replacement {ms:0} ms after the kill)"
            : $"{kill.Model}: throughput over time ({kill.Lost} lost)";
        Save(plot, title, "seconds since the first result", "results/s", path, width: 1000);
    }

    private static void Save(ScottPlot.Plot plot, string title, string? x, string y, string path, bool legend = true, int width = 800)
    {
        plot.Title(title);
        if (x is not null)
        {
            plot.XLabel(x);
        }

        plot.YLabel(y);
        if (legend)
        {
            plot.ShowLegend();
        }

        plot.SavePng(path, width, 500);
    }

    /// <summary>A row's nodes, each: its stage, node and bare stage CPU per frame, the overhead and the CPU per MB it moved.</summary>
    private static string Overheads(BenchRow row) => string.Join("; ", row.NodeOverheads.Select(o => o.Stage is null
        ? $"{o.Node} hosted no stage"
        : string.Create(CultureInfo.InvariantCulture,
            $"stage {o.Stage} on {o.Node}: {o.NodeCpuMsPerFrame:0.00} ms CPU a frame against {o.StageBareCpuMsPerFrame:0.00} ms alone, "
            + $"{BenchCommand.Percent(o.OverheadPercent)}, {o.OverheadCpuMsPerMB:0.0} ms per MB in and out")));

    private static string Summary(BenchReport r)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# Benchmark: {r.Model}");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Machine: {r.Machine}. Made by `pipeline bench --report`.");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Method: {r.Method}");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Bare loop: {r.BareLoopFps:0.00} frames/s at the start, {r.BareLoopFpsAfter:0.00} at the end (p50 {r.BareLoopP50Ms:0.0} ms, "
                + $"{r.BareLoopRssBytes / (1 << 20)} MiB resident).");
        text.AppendLine();
        text.AppendLine("| configuration | frames/s | x bare loop | efficiency | vs N replicas | latency p50 (ms) | bytes/frame per link "
            + "| CPU s/frame per node (+ingest) | memory per node (MiB) | lost |");
        text.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var row in r.Rows)
        {
            var versus = row.VersusConcurrentReplicas is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v * 100:0.0} %") : "-";
            var cpu = string.Join(", ", row.CpuSecondsPerFrameOnNodes.Select(c => c.ToString("0.0000", CultureInfo.InvariantCulture)));
            var memory = string.Join(", ", row.RssBytesPerNode.Select(b => b / (1 << 20)));
            text.AppendLine(
                CultureInfo.InvariantCulture,
                $"| {Named(row)} | {row.FramesPerSecond:0.00} | {row.SpeedupOverBareLoop:0.00}x | {row.ScalingEfficiency * 100:0.0} % | {versus} "
                + $"| {row.LatencyP50Ms:0.0} | {string.Join(", ", row.BytesPerFrameOnLinks)} | {cpu} (+{row.HeadCpuSecondsPerFrame:0.0000}) "
                + $"| {memory} | {row.Lost} |");
        }

        foreach (var (n, fps, rss) in r.Replicas)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {n} replicas | {fps:0.00} | {fps / r.BareLoopFps:0.00}x | {fps / r.BareLoopFps / n * 100:0.0} % | 100 % | - | - | - "
                    + $"| {rss / (1 << 20)} each | - |");
        }

        text.AppendLine();
        foreach (var row in r.Rows.Where(x => x.NodeOverheads.Count > 0))
        {
            text.AppendLine(
                CultureInfo.InvariantCulture, $"Per-node overhead of {Named(row)} against each stage alone (aim <= 5 %): {Overheads(row)}.");
            text.AppendLine();
        }

        text.AppendLine("![throughput against worker count](throughput-vs-nodes.png)");
        text.AppendLine();
        text.AppendLine("![busy % per stage](stage-busy.png)");
        text.AppendLine();
        text.AppendLine("![latency CDF](latency-cdf.png)");
        if (r.KillRun is { } kill)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture,
                $"Worker kill: SIGKILL of {kill.KilledNode} with {kill.InFlightAtKill} frame(s) in flight; first in-order result through "
                    + $"the replacement {kill.RecoveryToFirstResultMs:0} ms after the kill; throughput back at the new steady rate after "
                    + $"{kill.RecoveryToSteadyMs:0} ms; {kill.FramesIn} frames in, {kill.ResultsOut} out, {kill.Lost} lost, "
                    + $"{kill.OutOfOrder} out of order.");
            text.AppendLine();
            text.AppendLine("![throughput across a worker kill](throughput-over-time-kill.png)");
        }

        return text.ToString();
    }
}
