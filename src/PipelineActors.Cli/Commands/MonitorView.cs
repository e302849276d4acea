using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using PipelineActors.Runtime.DataPath.Monitoring;

namespace PipelineActors.Cli.Commands;

/// <summary>The monitoring dashboard: members, plan and stages, end-to-end figures, a throughput sparkline and the event log.</summary>
public static class MonitorView
{
    private const string Bars = "▁▂▃▄▅▆▇█";

    public static IRenderable Render(MonitorSnapshot snapshot)
    {
        var members = new Table().Title("members").Border(TableBorder.Rounded).Expand()
            .AddColumns("address", "roles", "status", "cores", "memory", "stages");
        foreach (var m in snapshot.Members)
        {
            members.AddRow(
                Markup.Escape(m.Address),
                Markup.Escape(string.Join(",", m.Roles)),
                m.Reachable ? m.Status : $"[red]{m.Status}, unreachable[/]",
                m.Cores?.ToString(CultureInfo.InvariantCulture) ?? "-",
                m.MemoryBytes is { } b ? Format.Bytes(b) : "-",
                Markup.Escape(string.Join(" ", m.Stages)));
        }

        var stages = new Table().Title("plan and stages").Border(TableBorder.Rounded).Expand()
            .AddColumns("stage", "node", "layers", "FLOPs", "frames/s", "busy", "queue", "compute p50/p95 ms", "in/frame", "out/frame", "link MB/s");
        foreach (var s in snapshot.Stages)
        {
            stages.AddRow(
                s.Index.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(s.Node),
                Markup.Escape(s.Layers.Split(' ')[0]),
                Format.Percent(s.FlopsShare),
                s.FramesPerSecond.ToString("0.0", CultureInfo.InvariantCulture),
                $"{s.BusyPercent:0} %",
                s.Queue.ToString(CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{s.ComputeMsP50:0.0} / {s.ComputeMsP95:0.0}"),
                Format.Bytes(s.BytesInPerFrame),
                Format.Bytes(s.BytesOutPerFrame),
                s.LinkMBPerSecond.ToString("0.0", CultureInfo.InvariantCulture));
        }

        IRenderable pipeline;
        if (snapshot.Pipeline is { } p)
        {
            var grid = new Grid().AddColumns(2);
            grid.AddRow("[bold]frames in / out / in flight[/]", $"{p.FramesIn} / {p.ResultsOut} / {p.InFlight}");
            grid.AddRow("[bold]skipped / lost / duplicated / failed[/]", $"{p.Skipped} / {Colour(p.Lost)} / {Colour(p.Duplicated)} / {Colour(p.Failed)}");
            grid.AddRow("[bold]re-sent / replayed[/]", $"{p.Resent} / {p.Replayed}");
            grid.AddRow("[bold]throughput[/]", $"{p.FramesPerSecond:0.0} frames/s  [green]{Sparkline(p.ThroughputHistory)}[/]");
            grid.AddRow("[bold]latency p50 / p95 / p99[/]", string.Create(CultureInfo.InvariantCulture, $"{p.LatencyP50Ms:0} / {p.LatencyP95Ms:0} / {p.LatencyP99Ms:0} ms"));
            grid.AddRow("[bold]plan epoch[/]", p.Epoch.ToString(CultureInfo.InvariantCulture));
            pipeline = new Panel(grid).Header($"pipeline {Markup.Escape(p.JobId)}").Expand();
        }
        else
        {
            pipeline = new Panel("[grey]no pipeline is running (waiting for an ingest node's report)[/]").Header("pipeline").Expand();
        }

        var log = new Rows(snapshot.Events.TakeLast(12).Select(e =>
            new Markup($"[grey]{DateTimeOffset.FromUnixTimeMilliseconds(e.UnixMs).ToLocalTime():HH:mm:ss}[/] {Markup.Escape(e.Source)}: {Markup.Escape(e.Text)}")));
        return new Rows(members, stages, pipeline, new Panel(log).Header("events").Expand());
    }

    /// <summary>A text sparkline of a series, scaled to its maximum.</summary>
    public static string Sparkline(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return string.Empty;
        }

        var max = Math.Max(values.Max(), 1e-9);
        return new string(values.Select(v => Bars[(int)Math.Round((Bars.Length - 1) * Math.Clamp(v / max, 0, 1))]).ToArray());
    }

    private static string Colour(long value) => value == 0 ? "0" : $"[red]{value}[/]";
}
