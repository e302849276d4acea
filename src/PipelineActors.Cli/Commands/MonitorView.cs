using System.Globalization;
using PipelineActors.Runtime.DataPath.Monitoring;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// The monitoring dashboard: members, a row per job (state, throughput, latency, counters), then each job's plan and stages with its
/// figures and a throughput sparkline, and the event log of the cluster and its jobs.
/// </summary>
public static class MonitorView
{
    private const string Bars = "▁▂▃▄▅▆▇█";
    private const int EventLines = 12;

    /// <summary>The dashboard; with <paramref name="job"/>, the plan of that job only (the jobs table always lists every job).</summary>
    public static IRenderable Render(MonitorSnapshot snapshot, string? job = null)
    {
        var parts = new List<IRenderable> { Members(snapshot), Jobs(snapshot) };
        var shown = snapshot.Jobs.Where(j => job is null || j.JobId == job).ToList();
        if (shown.Count == 0)
        {
            var waiting = job is null
                ? "[grey]no job is running (waiting for an ingest node's report)[/]"
                : $"[grey]job {Markup.Escape(job)} has not reported (waiting for its ingest node)[/]";
            parts.Add(new Panel(waiting).Header("plan").Expand());
        }

        parts.AddRange(shown.Select(Plan));
        parts.Add(Events(snapshot, shown));
        return new Rows(parts);
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

    private static Table Members(MonitorSnapshot snapshot)
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
                Markup.Escape(string.Join(", ", m.Stages)));
        }

        return members;
    }

    private static Table Jobs(MonitorSnapshot snapshot)
    {
        var jobs = new Table().Title("jobs").Border(TableBorder.Rounded).Expand()
            .AddColumns("job", "state", "frames/s", "latency p50/p95 ms", "in / out / skipped / failed", "stages");
        foreach (var j in snapshot.Jobs)
        {
            var state = j.State == ReportedJobStates.Silent ? $"[red]{j.State}[/]" : Markup.Escape(j.State);
            if (j.Pipeline is not { } p)
            {
                jobs.AddRow(Markup.Escape(j.JobId), state, "-", "-", "-", "-");
                continue;
            }

            jobs.AddRow(
                Markup.Escape(j.JobId),
                state,
                p.FramesPerSecond.ToString("0.0", CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{p.LatencyP50Ms:0} / {p.LatencyP95Ms:0}"),
                $"{p.FramesIn} / {p.ResultsOut} / {p.Skipped} / {Colour(p.Failed)}",
                string.Create(CultureInfo.InvariantCulture, $"{j.Stages.Count} (epoch {p.Epoch})"));
        }

        return jobs;
    }

    private static Panel Plan(JobView job)
    {
        var stages = new Table().Border(TableBorder.Rounded).Expand()
            .AddColumns(
                "stage", "node", "layers", "FLOPs", "frames/s", "busy", "queue", "compute p50/p95 ms", "in/frame", "out/frame", "link MB/s");
        foreach (var s in job.Stages)
        {
            stages.AddRow(
                s.Index.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(s.Node),
                Markup.Escape(s.Layers.Split(' ')[0]),
                Format.Percent(s.FlopsShare),
                s.FramesPerSecond.ToString("0.0", CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{s.BusyPercent:0} %"),
                s.Queue.ToString(CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{s.ComputeMsP50:0.0} / {s.ComputeMsP95:0.0}"),
                Format.Bytes(s.BytesInPerFrame),
                Format.Bytes(s.BytesOutPerFrame),
                s.LinkMBPerSecond.ToString("0.0", CultureInfo.InvariantCulture));
        }

        var header = $"job {Markup.Escape(job.JobId)}: plan and stages";
        if (job.Pipeline is not { } p)
        {
            return new Panel(new Markup("[grey]no report from its ingest node yet[/]")).Header(header).Expand();
        }

        var grid = new Grid().AddColumns(2);
        grid.AddRow("[bold]frames in / out / in flight[/]", $"{p.FramesIn} / {p.ResultsOut} / {p.InFlight}");
        grid.AddRow("[bold]skipped / lost / failed[/]", $"{p.Skipped} / {Colour(p.Lost)} / {Colour(p.Failed)}");
        grid.AddRow("[bold]re-sent / replayed / duplicates dropped[/]", $"{p.Resent} / {p.Replayed} / {p.DuplicatesDropped}");
        grid.AddRow("[bold]throughput[/]", $"{p.FramesPerSecond:0.0} frames/s  [green]{Sparkline(p.ThroughputHistory)}[/]");
        grid.AddRow(
            "[bold]latency p50 / p95 / p99[/]",
            string.Create(CultureInfo.InvariantCulture, $"{p.LatencyP50Ms:0} / {p.LatencyP95Ms:0} / {p.LatencyP99Ms:0} ms"));
        grid.AddRow("[bold]plan epoch[/]", p.Epoch.ToString(CultureInfo.InvariantCulture));
        return new Panel(new Rows(stages, grid)).Header(header).Expand();
    }

    /// <summary>The cluster's events and those of the jobs shown, in time order, each job's lines marked with its id.</summary>
    private static Panel Events(MonitorSnapshot snapshot, IReadOnlyList<JobView> shown)
    {
        var lines = snapshot.Events.Select(e => (Row: e, Job: (string?)null))
            .Concat(shown.SelectMany(j => j.Events.Select(e => (Row: e, Job: (string?)j.JobId))))
            .OrderBy(e => e.Row.UnixMs)
            .TakeLast(EventLines)
            .Select(e =>
            {
                var at = DateTimeOffset.FromUnixTimeMilliseconds(e.Row.UnixMs).ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);
                var job = e.Job is null ? string.Empty : $"[blue]{Markup.Escape(e.Job)}[/] ";
                return new Markup($"[grey]{at}[/] {job}{Markup.Escape(e.Row.Source)}: {Markup.Escape(e.Row.Text)}");
            });
        return new Panel(new Rows(lines)).Header("events").Expand();
    }

    private static string Colour(long value) => value == 0 ? "0" : $"[red]{value}[/]";
}
