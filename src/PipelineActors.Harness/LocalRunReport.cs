using System.Diagnostics;
using Akka.Actor;
using PipelineActors.Onnx.Cost;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Sink;

namespace PipelineActors.Harness;

/// <summary>Results per second in one half-second bin, seconds from the first result.</summary>
public sealed record ThroughputPoint(double Seconds, double FramesPerSecond);

/// <summary>How one worker of a run was emulated: its CPU quota, link rate and added delay (null: not limited).</summary>
public sealed record EmulatedWorkerRow(string Worker, string? Node, string Address, double? Cpu, double? LinkMbit, double LatencyMs);

/// <summary>One kill of a soak run: which node, and how long until a result came through the new plan.</summary>
public sealed record SoakKill(int Number, string Node, long InFlight, double? RecoveryMs);

/// <summary>A worker process's resource use over a run.</summary>
public sealed record NodeRow(string Node, string? Cores, double CpuSeconds, double CpuSecondsPerFrame, long RssBytes);

/// <summary>One stage's row in a run's summary.</summary>
public sealed record StageRow(int Index, string Node, string Layers, long Frames, double ComputeMsP50, double ComputeMsP95,
    long BytesInPerFrame, long BytesOutPerFrame, double BusyPercent);

/// <summary>A run's summary: what came in, what came out, how fast, and how recovery went.</summary>
public sealed record RunReport(
    string Model,
    int Workers,
    int Parts,
    long FramesIn,
    long ResultsOut,
    long Lost,
    long Duplicated,
    long DuplicatesDropped,
    long OutOfOrder,
    long Skipped,
    long Failed,
    long Resent,
    long Replayed,
    double FramesPerSecond,
    double LatencyP50Ms,
    double LatencyP95Ms,
    double LatencyP99Ms,
    IReadOnlyList<StageRow> Stages,
    string? KilledNode,
    long? InFlightAtKill,
    double? RecoveryToFirstResultMs,
    double? RecoveryToSteadyMs,
    string? AddedNode,
    IReadOnlyList<SoakKill> SoakKills,
    IReadOnlyList<NodeRow> Nodes,
    double HeadCpuSecondsPerFrame,
    IReadOnlyList<string> Events)
{
    /// <summary>Latency at percentiles 0, 1, ..., 100 (ms), for a CDF.</summary>
    public IReadOnlyList<double> LatencyPercentiles { get; init; } = [];

    /// <summary>Results per second in half-second bins, from the first result on: (seconds, frames/s).</summary>
    public IReadOnlyList<ThroughputPoint> ThroughputSeries { get; init; } = [];

    /// <summary>When the worker was killed and when the recovery plan went live, in seconds from the first result.</summary>
    public double? KillAtSeconds { get; init; }

    public double? RecoveryLiveAtSeconds { get; init; }

    /// <summary>Every frame that went in reached the results exactly once, in order (the audit's verdict, not the ingest's).</summary>
    public bool Clean => Lost == 0 && Duplicated == 0 && OutOfOrder == 0;

    /// <summary>Each worker's emulation (<c>--emulate</c>), in worker order; empty when the run had none.</summary>
    public IReadOnlyList<EmulatedWorkerRow> Emulation { get; init; } = [];

    /// <summary>With <c>--plan planned</c>: one line per planned stage (worker, nodes, predicted compute); empty otherwise.</summary>
    public IReadOnlyList<string> PlannedStages { get; init; } = [];

    /// <summary>With <c>--plan planned</c>: the frames/s the planner's cost model predicted for the plan.</summary>
    public double? PredictedFramesPerSecond { get; init; }

    /// <summary>The chaos soak's figures (<c>--chaos</c>); null for an ordinary run.</summary>
    public PipelineActors.Harness.Chaos.ChaosReport? Chaos { get; init; }

    /// <summary>The codec every cut tensor crossed with (<c>exact</c>: zero suppression only); the stages' bytes out are its encoded sizes.</summary>
    public string Codec { get; init; } = Transfer.TransferSpec.Exact;

    /// <summary>With <c>--fidelity</c>: the budget each hop's codec was held to, and what it measures; null otherwise.</summary>
    public double? FidelityBudget { get; init; }

    public string? FidelityMeasure { get; init; }

    /// <summary>With <c>--fidelity</c>: every split's hops, the codec each got and why; empty otherwise.</summary>
    public IReadOnlyList<HopCodecRow> HopCodecs { get; init; } = [];

    /// <summary>What the first hop carried (<c>raw</c> pixels or <c>jpeg:Q</c>), as the ingest encoded it.</summary>
    public string FirstHop { get; init; } = Transfer.FirstHop.Raw;

    /// <summary>The ingest's tensor bytes per frame on the first hop (the JPEG's, with <c>--first-hop jpeg</c>).</summary>
    public long FirstHopBytesPerFrame { get; init; }

    /// <summary>The same frames' raw pixel bytes per frame, as the source gave them.</summary>
    public long FirstHopRawBytesPerFrame { get; init; }

    /// <summary>The ingest's mean time to encode a frame for the first hop (0 for raw).</summary>
    public double FirstHopEncodeMsPerFrame { get; init; }

    /// <summary>The model file of each stage of the final plan, in stage order, as its worker ran it (bench times each alone).</summary>
    public IReadOnlyList<string> StageFiles { get; init; } = [];
}

/// <summary>
/// One hop's codec in the run report: which split (<see cref="Parts"/>) and hop, the codec, its bytes against exact, the
/// fidelity it measured with that hop alone coded, the split's with every hop coded, the link it was priced on, and why.
/// </summary>
public sealed record HopCodecRow(
    int Parts, int Hop, string Codec, IReadOnlyList<string> Tensors, long ExactBytesPerFrame, long BytesPerFrame, double Fidelity,
    double SplitFidelity, double? LinkMbps, string Reason)
{
    public static HopCodecRow Of(HopCodecChoice hop, CodecChoiceReport report) => new(
        hop.Parts, hop.Hop + 1, hop.Codec, hop.Tensors, (long)Math.Round(hop.ExactBytesPerFrame), (long)Math.Round(hop.BytesPerFrame),
        Math.Round(hop.Fidelity, 4), Math.Round(report.SplitFidelity[hop.Parts], 4), hop.LinkMbps, hop.Reason);
}

/// <summary>The run's report: its figures from the ingest's, the sink's and the stages' counters and from the audit of the results.</summary>
public static partial class LocalRun
{
    /// <summary>The plan epoch live at a moment.</summary>
    private static long EpochAt(IngestStats ingest, long ticks) =>
        ingest.Plans.Where(p => p.Ticks <= ticks).Select(p => p.Epoch).DefaultIfEmpty(0).Max();

    /// <summary>The first recovery plan that went live after a moment.</summary>
    private static (long Ticks, long Epoch, PlanReason Reason)? RecoveryAfter(IngestStats ingest, long ticks) =>
        ingest.Plans.Where(p => p.Ticks > ticks && p.Reason == PlanReason.Recovery).Select(p => ((long, long, PlanReason)?)p).FirstOrDefault();

    private static async Task<List<StageRow>> StageRows(PlanActivated? plan)
    {
        var rows = new List<StageRow>();
        foreach (var placement in plan?.Placements ?? [])
        {
            try
            {
                var s = await StatsOf(placement.Stage);
                rows.Add(new StageRow(
                    placement.Index,
                    placement.Node,
                    placement.Layers,
                    s.Frames,
                    Math.Round(s.ComputeMsP50, 3),
                    Math.Round(s.ComputeMsP95, 3),
                    s.Frames == 0 ? 0 : s.BytesIn / s.Frames,
                    s.Frames == 0 ? 0 : s.BytesOut / s.Frames,
                    Math.Round(100 * s.BusyFraction, 1)));
            }
            catch (AskTimeoutException)
            {
                rows.Add(new StageRow(placement.Index, placement.Node, placement.Layers, 0, 0, 0, 0, 0, 0));
            }
        }

        return rows;
    }

    /// <summary>A stage's counters, asked up to three times: on a machine at a load average of 30 one 5 s ask has timed out.</summary>
    private static async Task<StageStats> StatsOf(IActorRef stage)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await stage.Ask<StageStats>(GetStageStats.Instance, TimeSpan.FromSeconds(5));
            }
            catch (AskTimeoutException) when (attempt < 3)
            {
            }
        }
    }

    private static RunReport Report(LocalRunOptions options, IngestStats ingest, SinkStats sink, ResultCounts written,
        List<StageRow> stages, string? killed, long? inFlightAtKill, long? killTicks, string? added)
    {
        var latencies = Percentiles.Sorted(sink.LatenciesMs);
        double Percentile(double p) => Math.Round(Percentiles.At(latencies, p), 2);
        var seconds = (sink.LastDeliveryTicks - sink.FirstDeliveryTicks) / (double)Stopwatch.Frequency;
        var fps = sink.Delivered > 1 && seconds > 0 ? (sink.Delivered - 1) / seconds : 0;

        double? toFirst = null;
        double? toSteady = null;
        if (killTicks is { } kill)
        {
            var recoveryEpoch = RecoveryAfter(ingest, kill)?.Epoch ?? long.MaxValue;
            var after = sink.Deliveries.Where(d => d.Ticks > kill && d.Epoch >= recoveryEpoch).ToList();
            if (after.Count > 0)
            {
                toFirst = Math.Round((after[0].Ticks - kill) * 1000.0 / Stopwatch.Frequency, 0);
                toSteady = SteadyAfter(after, kill);
            }
        }

        var first = sink.FirstDeliveryTicks;
        double Seconds(long ticks) => (ticks - first) / (double)Stopwatch.Frequency;
        var bins = sink.Deliveries.GroupBy(d => (int)Math.Floor(Seconds(d.Ticks) * 2)).ToDictionary(g => g.Key, g => g.Count());
        var series = bins.Count == 0 ? []
            : Enumerable.Range(0, bins.Keys.Max() + 1).Select(b => new ThroughputPoint(b / 2.0, bins.GetValueOrDefault(b) * 2.0)).ToList();
        var percentiles = latencies.Length == 0 ? [] : Enumerable.Range(0, 101).Select(p => Percentiles.At(latencies, p / 100.0)).ToList();
        double? killAt = killTicks is { } k2 ? Math.Round(Seconds(k2), 2) : null;
        double? liveAt = killTicks is { } k3 && RecoveryAfter(ingest, k3) is { } recovery ? Math.Round(Seconds(recovery.Ticks), 2) : null;

        return new RunReport(
            Path.GetFileName(options.ModelPath),
            options.Workers,
            ingest.Plan?.Parts ?? 0,
            ingest.Accepted,
            sink.Delivered,
            written.Lost,
            written.Duplicated,
            sink.DuplicatesDropped,
            written.OutOfOrder,
            ingest.Skipped,
            sink.Failed,
            ingest.Resent,
            ingest.Replayed,
            Math.Round(fps, 2),
            Percentile(0.50),
            Percentile(0.95),
            Percentile(0.99),
            stages,
            killed,
            inFlightAtKill,
            toFirst,
            toSteady,
            added,
            [],
            [],
            0,
            ingest.Events.Select(e => e.Text).ToList())
        {
            LatencyPercentiles = percentiles,
            ThroughputSeries = series,
            KillAtSeconds = killAt,
            RecoveryLiveAtSeconds = liveAt,
            Codec = CutCodecPlan.Parse(options.Codec ?? Transfer.TransferSpec.Exact).Text,
            FirstHop = ingest.FirstHop,
            FirstHopBytesPerFrame = ingest.FirstHopFrames == 0 ? 0 : ingest.FirstHopBytes / ingest.FirstHopFrames,
            FirstHopRawBytesPerFrame = ingest.FirstHopFrames == 0 ? 0 : ingest.FirstHopRawBytes / ingest.FirstHopFrames,
            FirstHopEncodeMsPerFrame = ingest.FirstHopFrames == 0 ? 0 : Math.Round(ingest.FirstHopEncodeMs / ingest.FirstHopFrames, 3),
        };
    }

    /// <summary>Milliseconds from the kill until a one-second window of deliveries reaches 90 % of the rate the run settled at.</summary>
    private static double? SteadyAfter(List<(long FrameId, long Ticks, long Epoch)> after, long kill)
    {
        var span = (after[^1].Ticks - after[0].Ticks) / (double)Stopwatch.Frequency;
        if (after.Count < 10 || span < 2)
        {
            return null;
        }

        var tail = after.Where(d => d.Ticks >= after[0].Ticks + (long)(span / 2 * Stopwatch.Frequency)).ToList();
        var steady = (tail.Count - 1) / ((tail[^1].Ticks - tail[0].Ticks) / (double)Stopwatch.Frequency);
        for (var i = 0; i < after.Count; i++)
        {
            var end = after[i].Ticks + Stopwatch.Frequency;
            if (end > after[^1].Ticks)
            {
                break;
            }

            var inWindow = after.Skip(i).TakeWhile(d => d.Ticks <= end).Count();
            if (inWindow >= 0.9 * steady)
            {
                return Math.Round((end - kill) * 1000.0 / Stopwatch.Frequency, 0);
            }
        }

        return null;
    }
}
