using Akka.Actor;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Monitoring;

/// <summary>A cluster member as the cluster's own state shows it, before the monitor adds what the member reported.</summary>
public sealed record ClusterMember(string Address, IReadOnlyList<string> Roles, string Status, bool Reachable);

/// <summary>
/// What the monitor has heard, kept per job: each job's latest end-to-end report, its throughput history and events, the latest two
/// reports of every stage actor, and every worker's capacity. It has no clock and no actor of its own (the caller passes the time a
/// message arrived), so a spec can feed it the reports of several jobs and read the rows back. Everything it keeps is bounded.
/// </summary>
public sealed class MonitorState
{
    /// <summary>Points of throughput history kept per job (one a report, so about a minute).</summary>
    public const int HistoryLength = 60;

    /// <summary>Events kept per job and for the cluster.</summary>
    public const int EventLength = 50;

    /// <summary>Reports come every second; a job that has not reported for this long has ended or lost its ingest node.</summary>
    public const long SilentAfterMs = 5_000;

    /// <summary>Jobs kept; past this, the one silent longest is forgotten.</summary>
    public const int MaxJobs = 64;

    // Every redeployment makes new stage actors; the reports of the old ones stop and are forgotten after this.
    private const long ForgetStageAfterMs = 30_000;

    private readonly Dictionary<string, JobTrack> _jobs = new(StringComparer.Ordinal);
    private readonly Dictionary<ActorPath, StageTrack> _stages = [];
    private readonly Dictionary<string, WorkerStatus> _workers = new(StringComparer.Ordinal);
    private readonly EventLog _clusterEvents = new();

    /// <summary>A job's end-to-end report, received at <paramref name="receivedUnixMs"/> by the monitor's clock.</summary>
    public void Add(PipelineReport report, long receivedUnixMs)
    {
        var job = Job(report.JobId, receivedUnixMs);
        if (job.Latest is { } previous)
        {
            if (report.UnixMs <= previous.UnixMs)
            {
                return; // an older report that arrived late
            }

            if (report.FramesIn < previous.FramesIn || report.ResultsOut < previous.ResultsOut)
            {
                job.History.Clear(); // the job id was started again: counters began from zero
            }
            else
            {
                job.History.Add((report.ResultsOut - previous.ResultsOut) * 1000.0 / (report.UnixMs - previous.UnixMs));
                if (job.History.Count > HistoryLength)
                {
                    job.History.RemoveAt(0);
                }
            }
        }

        job.Latest = report;
        job.HeardUnixMs = receivedUnixMs;

        // Reports carry the ingest's recent events, so a monitor that joins late still sees them.
        foreach (var e in report.RecentEvents)
        {
            job.Events.Add(new EventRow(e.UnixMs, e.Source, e.Text));
        }
    }

    /// <summary>A stage actor's report, received at <paramref name="receivedUnixMs"/> by the monitor's clock.</summary>
    public void Add(StageReport report, long receivedUnixMs)
    {
        var path = report.Stage.Path;
        _stages[path] = new StageTrack(report, _stages.TryGetValue(path, out var old) ? old.Latest : null, receivedUnixMs);
    }

    /// <summary>A worker's announcement of its capacity; <paramref name="node"/> is its <c>host:port</c>.</summary>
    public void Add(string node, WorkerStatus status) => _workers[node] = status;

    /// <summary>An event: in its job's log when it names a job, else in the cluster's.</summary>
    public void Add(PipelineEvent e, long receivedUnixMs)
    {
        var row = new EventRow(e.UnixMs, e.Source, e.Text);
        if (string.IsNullOrEmpty(e.JobId))
        {
            _clusterEvents.Add(row);
        }
        else
        {
            Job(e.JobId, receivedUnixMs).Events.Add(row);
        }
    }

    /// <summary>Every job (ordered by id) and every member, as they stand at <paramref name="nowUnixMs"/>.</summary>
    public MonitorSnapshot Snapshot(long nowUnixMs, IReadOnlyList<ClusterMember> members)
    {
        foreach (var stale in _stages.Where(s => nowUnixMs - s.Value.HeardUnixMs > ForgetStageAfterMs).Select(s => s.Key).ToList())
        {
            _stages.Remove(stale);
        }

        var jobs = _jobs.Values.OrderBy(j => j.JobId, StringComparer.Ordinal).Select(j => View(j, nowUnixMs)).ToList();

        // Where a stage runs comes from the plans, so a member shows its stages before their first report.
        var hosted = _jobs.Values
            .SelectMany(j => (j.Latest?.Plan ?? []).Select(p => (p.Node, Stage: $"{j.JobId} {p.Index}/{j.Latest!.Plan.Count}")))
            .GroupBy(h => h.Node, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(h => h.Stage).Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        var rows = members.Select(m =>
        {
            _workers.TryGetValue(m.Address, out var worker);
            var stages = hosted.GetValueOrDefault(m.Address) ?? [];
            return new MemberRow(m.Address, m.Roles, m.Status, m.Reachable, worker?.Cores, worker?.MemoryBytes, stages);
        }).ToList();
        return new MonitorSnapshot(nowUnixMs, rows, jobs, _clusterEvents.Rows);
    }

    private JobView View(JobTrack job, long nowUnixMs)
    {
        if (job.Latest is not { } r)
        {
            return new JobView(job.JobId, ReportedJobStates.Starting, null, [], job.Events.Rows);
        }

        var parts = r.Plan.Count;
        var totalFlops = Math.Max(1, r.Plan.Sum(p => p.Flops));
        var stages = r.Plan.Select(p => Rates(p, parts, (double)p.Flops / totalFlops)).ToList();
        var pipeline = new EndToEnd(
            r.FramesIn,
            r.ResultsOut,
            r.InFlight,
            r.Skipped,
            Math.Max(0, r.FramesIn - r.ResultsOut - r.Failed - r.InFlight),
            r.DuplicatesDropped,
            r.OutOfOrder,
            r.Failed,
            r.Resent,
            r.Replayed,
            Math.Round(job.History.Count > 0 ? job.History[^1] : 0, 2),
            r.LatencyP50Ms,
            r.LatencyP95Ms,
            r.LatencyP99Ms,
            r.Epoch,
            job.History.Select(h => Math.Round(h, 2)).ToList());
        string state;
        if (nowUnixMs - job.HeardUnixMs > SilentAfterMs)
        {
            state = r.InFlight <= 0 && r.ResultsOut + r.Failed >= r.FramesIn ? ReportedJobStates.Finished : ReportedJobStates.Silent;
        }
        else
        {
            state = parts == 0 ? ReportedJobStates.WaitingForPlan : ReportedJobStates.Running;
        }

        return new JobView(job.JobId, state, pipeline, stages, job.Events.Rows);
    }

    private StageRates Rates(StagePlacement placement, int parts, double flopsShare)
    {
        // A report from an actor of another plan (same index, other parts) is not this stage's.
        if (!_stages.TryGetValue(placement.Stage.Path, out var track) || track.Latest.Stats.Parts != parts)
        {
            return new StageRates(placement.Index, placement.Node, placement.Layers, Math.Round(flopsShare, 4), 0, 0, 0, 0, 0, 0, 0, 0, 0);
        }

        var s = track.Latest.Stats;
        var previous = track.Previous;
        var seconds = previous is null ? 0 : (track.Latest.UnixMs - previous.UnixMs) / 1000.0;
        var fps = seconds > 0 ? (s.Frames - previous!.Stats.Frames) / seconds : 0;
        var link = seconds > 0 ? (s.BytesOut - previous!.Stats.BytesOut) / seconds / 1e6 : 0;
        return new StageRates(
            placement.Index,
            placement.Node,
            placement.Layers,
            Math.Round(flopsShare, 4),
            s.Frames,
            Math.Round(fps, 2),
            Math.Round(100 * s.BusyFraction, 1),
            track.Latest.PartialFrames,
            Math.Round(s.ComputeMsP50, 2),
            Math.Round(s.ComputeMsP95, 2),
            s.Frames == 0 ? 0 : s.BytesIn / s.Frames,
            s.Frames == 0 ? 0 : s.BytesOut / s.Frames,
            Math.Round(link, 2));
    }

    private JobTrack Job(string jobId, long nowUnixMs)
    {
        if (_jobs.TryGetValue(jobId, out var job))
        {
            return job;
        }

        if (_jobs.Count >= MaxJobs)
        {
            _jobs.Remove(_jobs.Values.MinBy(j => j.HeardUnixMs)!.JobId);
        }

        job = new JobTrack(jobId) { HeardUnixMs = nowUnixMs };
        _jobs[jobId] = job;
        return job;
    }

    private sealed class JobTrack(string jobId)
    {
        public string JobId { get; } = jobId;

        public PipelineReport? Latest { get; set; }

        /// <summary>When the monitor last heard of the job, by its own clock (nodes' clocks may disagree with it).</summary>
        public long HeardUnixMs { get; set; }

        public List<double> History { get; } = [];

        public EventLog Events { get; } = new();
    }

    private sealed record StageTrack(StageReport Latest, StageReport? Previous, long HeardUnixMs);

    /// <summary>Events in time order, the newest <see cref="EventLength"/>, each once.</summary>
    private sealed class EventLog
    {
        private readonly LinkedList<EventRow> _rows = new();

        public IReadOnlyList<EventRow> Rows => _rows.ToList();

        public void Add(EventRow row)
        {
            // The same ingest event arrives with every report: keep one (timestamps agree to a few ms).
            if (_rows.Any(e => e.Source == row.Source && e.Text == row.Text && Math.Abs(e.UnixMs - row.UnixMs) < 2000))
            {
                return;
            }

            var at = _rows.Last;
            while (at is not null && at.Value.UnixMs > row.UnixMs)
            {
                at = at.Previous;
            }

            if (at is null)
            {
                _rows.AddFirst(row);
            }
            else
            {
                _rows.AddAfter(at, row);
            }

            while (_rows.Count > EventLength)
            {
                _rows.RemoveFirst();
            }
        }
    }
}
