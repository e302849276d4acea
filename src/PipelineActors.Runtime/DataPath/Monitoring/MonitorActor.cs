using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.DataPath.Monitoring;

/// <summary>A cluster member as the monitor shows it.</summary>
public sealed record MemberRow(string Address, IReadOnlyList<string> Roles, string Status, bool Reachable, int? Cores, long? MemoryBytes, IReadOnlyList<string> Stages);

/// <summary>One stage of the live plan with its rates, from the stage's own reports.</summary>
public sealed record StageRates(int Index, string Node, string Layers, double FlopsShare, long Frames, double FramesPerSecond, double BusyPercent, int Queue, double ComputeMsP50, double ComputeMsP95, long BytesInPerFrame, long BytesOutPerFrame, double LinkMBPerSecond);

/// <summary>End-to-end figures from the ingest node.</summary>
public sealed record EndToEnd(string JobId, long FramesIn, long ResultsOut, long InFlight, long Skipped, long Lost, long Duplicated, long Failed, long Resent, long Replayed, double FramesPerSecond, double LatencyP50Ms, double LatencyP95Ms, double LatencyP99Ms, long Epoch, IReadOnlyList<double> ThroughputHistory);

/// <summary>An event log line.</summary>
public sealed record EventRow(long UnixMs, string Source, string Text);

/// <summary>What the monitor knows now.</summary>
public sealed record MonitorSnapshot(long TakenUnixMs, IReadOnlyList<MemberRow> Members, IReadOnlyList<StageRates> Stages, EndToEnd? Pipeline, IReadOnlyList<EventRow> Events);

/// <summary>Ask the monitor actor for a snapshot.</summary>
public sealed class GetMonitorSnapshot
{
    public static readonly GetMonitorSnapshot Instance = new();

    private GetMonitorSnapshot()
    {
    }
}

/// <summary>
/// Subscribes to the monitor topic and keeps the latest report of every stage, worker and ingest,
/// rates from consecutive reports, a throughput history and an event log (all bounded). Runs on a
/// node with the monitor role, which takes no part in placement.
/// </summary>
public sealed class MonitorActor : ReceiveActor
{
    private const int HistoryLength = 60;
    private const int EventLength = 50;
    private readonly Dictionary<(string Node, int Parts, int Index), (StageReport Latest, StageReport? Previous)> _stages = [];
    private readonly Dictionary<string, WorkerStatus> _workers = [];
    private readonly LinkedList<EventRow> _events = new();
    private readonly List<double> _history = [];
    private PipelineReport? _pipeline;

    public MonitorActor()
    {
        Receive<SubscribeAck>(_ => { });
        Receive<StageReport>(r =>
        {
            var key = (r.Stats.Node, r.Stats.Parts, r.Stats.Index);
            _stages[key] = (r, _stages.TryGetValue(key, out var old) ? old.Latest : null);
        });
        Receive<WorkerStatus>(w => _workers[NodeAddress.Of(NodeAddress.NodeOf(Context.System, w.Agent))] = w);
        Receive<PipelineReport>(r =>
        {
            if (_pipeline is not null && r.UnixMs > _pipeline.UnixMs && r.JobId == _pipeline.JobId)
            {
                _history.Add((r.ResultsOut - _pipeline.ResultsOut) * 1000.0 / (r.UnixMs - _pipeline.UnixMs));
                if (_history.Count > HistoryLength)
                {
                    _history.RemoveAt(0);
                }
            }

            _pipeline = r;

            // Reports carry the ingest's recent events, so a monitor that joins late still sees them.
            foreach (var e in r.RecentEvents)
            {
                AddEvent(new EventRow(e.UnixMs, e.Source, e.Text));
            }
        });
        Receive<PipelineEvent>(e => AddEvent(new EventRow(e.UnixMs, e.Source, e.Text)));
        Receive<GetMonitorSnapshot>(_ => Sender.Tell(Snapshot()));
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new MonitorActor());

    protected override void PreStart() =>
        DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(Topics.Pipeline, Self));

    private void AddEvent(EventRow row)
    {
        // The same ingest event arrives with every report: keep one (timestamps agree to a few ms).
        if (_events.Any(e => e.Source == row.Source && e.Text == row.Text && Math.Abs(e.UnixMs - row.UnixMs) < 2000))
        {
            return;
        }

        var at = _events.Last;
        while (at is not null && at.Value.UnixMs > row.UnixMs)
        {
            at = at.Previous;
        }

        if (at is null)
        {
            _events.AddFirst(row);
        }
        else
        {
            _events.AddAfter(at, row);
        }

        while (_events.Count > EventLength)
        {
            _events.RemoveFirst();
        }
    }

    private MonitorSnapshot Snapshot()
    {
        var plan = _pipeline?.Plan ?? [];
        var parts = plan.Count;
        var totalFlops = Math.Max(1, plan.Sum(p => p.Flops));
        var stages = plan.Select(p =>
        {
            if (!_stages.TryGetValue((p.Node, parts, p.Index), out var reports))
            {
                return new StageRates(p.Index, p.Node, p.Layers, (double)p.Flops / totalFlops, 0, 0, 0, 0, 0, 0, 0, 0, 0);
            }

            var s = reports.Latest.Stats;
            var prev = reports.Previous;
            var seconds = prev is null ? 0 : (reports.Latest.UnixMs - prev.UnixMs) / 1000.0;
            var fps = seconds > 0 ? (s.Frames - prev!.Stats.Frames) / seconds : 0;
            var link = seconds > 0 ? (s.BytesOut - prev!.Stats.BytesOut) / seconds / 1e6 : 0;
            return new StageRates(
                p.Index, p.Node, p.Layers, Math.Round((double)p.Flops / totalFlops, 4), s.Frames, Math.Round(fps, 2), Math.Round(100 * s.BusyFraction, 1),
                reports.Latest.PartialFrames, Math.Round(s.ComputeMsP50, 2), Math.Round(s.ComputeMsP95, 2),
                s.Frames == 0 ? 0 : s.BytesIn / s.Frames, s.Frames == 0 ? 0 : s.BytesOut / s.Frames, Math.Round(link, 2));
        }).ToList();

        var hosted = _stages.Keys.Where(k => k.Parts == parts && plan.Any(p => p.Node == k.Node && p.Index == k.Index))
            .GroupBy(k => k.Node).ToDictionary(g => g.Key, g => g.Select(k => $"{k.Index}/{k.Parts}").ToList());
        var state = Akka.Cluster.Cluster.Get(Context.System).State;
        var members = state.Members.Select(m =>
        {
            var node = NodeAddress.Of(m.Address);
            _workers.TryGetValue(node, out var worker);
            return new MemberRow(
                node,
                m.Roles.Where(r => !r.StartsWith("dc-", StringComparison.Ordinal)).Order().ToList(),
                m.Status.ToString(),
                !state.Unreachable.Contains(m),
                worker?.Cores,
                worker?.MemoryBytes,
                hosted.GetValueOrDefault(node) ?? []);
        }).ToList();

        EndToEnd? pipeline = null;
        if (_pipeline is { } r)
        {
            pipeline = new EndToEnd(
                r.JobId, r.FramesIn, r.ResultsOut, r.InFlight, r.Skipped,
                Math.Max(0, r.FramesIn - r.ResultsOut - r.Failed - r.InFlight), 0, r.Failed, r.Resent, r.Replayed,
                Math.Round(_history.Count > 0 ? _history[^1] : 0, 2), r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms, r.Epoch, _history.Select(h => Math.Round(h, 2)).ToList());
        }

        return new MonitorSnapshot(MonitorTopic.Now(), members, stages, pipeline, _events.ToList());
    }
}
