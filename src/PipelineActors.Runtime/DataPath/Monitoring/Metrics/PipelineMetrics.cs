using System.Diagnostics.Metrics;

namespace PipelineActors.Runtime.DataPath.Monitoring.Metrics;

/// <summary>
/// The System.Diagnostics.Metrics instruments every node records (names documented in the README).
/// Exported on an opt-in Prometheus endpoint by <see cref="MetricsEndpoint"/>.
/// </summary>
public static class PipelineMetrics
{
    public const string MeterName = "PipelineActors";

    private static readonly Meter Meter = new(MeterName, "1.0");

    public static readonly Counter<long> FramesAccepted = Meter.CreateCounter<long>("pipeline_frames_accepted", "frames",
        "Frames the ingest accepted from its source.");
    public static readonly Counter<long> FramesSkipped = Meter.CreateCounter<long>("pipeline_frames_skipped", "frames",
        "Frames a live source dropped because the pipeline was full.");
    public static readonly Counter<long> FramesResent = Meter.CreateCounter<long>("pipeline_frames_resent", "frames",
        "Frames re-sent after their deadline or a stage's rejection.");
    public static readonly Counter<long> FramesReplayed = Meter.CreateCounter<long>("pipeline_frames_replayed", "frames",
        "Frames replayed on a new plan.");
    public static readonly Counter<long> FramesFailed = Meter.CreateCounter<long>("pipeline_frames_failed", "frames",
        "Frames reported failed after too many attempts.");
    public static readonly Counter<long> ResultsDelivered = Meter.CreateCounter<long>("pipeline_results_delivered", "frames",
        "Results the sink delivered in order.");
    public static readonly Counter<long> DuplicatesDropped = Meter.CreateCounter<long>("pipeline_duplicates_dropped", "frames",
        "Duplicate results the sink dropped.");
    public static readonly Histogram<double> Latency = Meter.CreateHistogram<double>("pipeline_latency_ms", "ms",
        "Capture-to-delivery latency of each result.");
    public static readonly Counter<long> StageFrames = Meter.CreateCounter<long>("pipeline_stage_frames", "frames", "Frames a stage computed.");
    public static readonly Histogram<double> StageCompute = Meter.CreateHistogram<double>("pipeline_stage_compute_ms", "ms",
        "Inference time of a stage per frame.");
    public static readonly Counter<long> StageBytesIn = Meter.CreateCounter<long>("pipeline_stage_bytes_in", "bytes",
        "Encoded bytes that reached a stage over a link.");
    public static readonly Counter<long> StageBytesOut = Meter.CreateCounter<long>("pipeline_stage_bytes_out", "bytes",
        "Bytes a stage put on its outgoing link.");
    public static readonly Counter<long> PlansActivated = Meter.CreateCounter<long>("pipeline_plans_activated", "plans",
        "Plan epochs that went live (initial, recovery, rebalance), by reason.");
    public static readonly Counter<long> PlansSlow =
        Meter.CreateCounter<long>("pipeline_plans_slow", "plans", "Plan epochs whose results kept coming later than the ingest's minimum deadline.");
    public static readonly Counter<long> RejectedMessages = Meter.CreateCounter<long>(
        "pipeline_rejected_messages",
        "messages",
        "Messages dropped on arrival: from a sender that may not send them, or with values past this node's limits, by reason.");
    private static readonly Lazy<UpDownCounter<long>> InFlightCounter = new(() => Meter.CreateUpDownCounter<long>(
        "pipeline_frames_in_flight", "frames", "Frames the ingest has sent and not yet seen confirmed."));

    /// <summary>Frames in flight at the ingest (the end-to-end queue depth).</summary>
    public static UpDownCounter<long> InFlight => InFlightCounter.Value;
}
