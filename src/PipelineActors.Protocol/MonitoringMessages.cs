using Akka.Actor;

namespace PipelineActors.Protocol;

/// <summary>The DistributedPubSub topic every node publishes its statistics and events to.</summary>
public static class Topics
{
    public const string Pipeline = "pipeline.monitor";
}

/// <summary>Ask a stage for its counters.</summary>
public sealed record GetStageStats : IControlMessage
{
    public static readonly GetStageStats Instance = new();

    private GetStageStats()
    {
    }
}

/// <summary>A stage's counters since it started.</summary>
/// <param name="BytesIn">Encoded bytes that reached the stage over a link (zero-suppressed tensors count as they travelled).</param>
/// <param name="BytesOut">Encoded bytes the stage put on its outgoing link, in the same unit.</param>
public sealed record StageStats(
    int Parts,
    int Index,
    string Node,
    long Frames,
    double ComputeMsP50,
    double ComputeMsP95,
    double BusyFraction,
    long BytesIn,
    long BytesOut,
    long Dropped) : IControlMessage;

/// <summary>A stage's counters, published every second by the stage itself.</summary>
/// <param name="Stage">
/// The stage actor that reports: a job's plan names its stages by actor, so the monitor files the report under the job whose plan
/// holds this actor, even where two jobs run stages of the same index on one node.
/// </param>
public sealed record StageReport(long UnixMs, StageStats Stats, int PartialFrames, IActorRef Stage) : IControlMessage;

/// <summary>End-to-end counters of one ingest/sink pair, published every second from the ingest node.</summary>
public sealed record PipelineReport(
    long UnixMs,
    string JobId,
    long FramesIn,
    long ResultsOut,
    long Skipped,
    long Failed,
    long Resent,
    long Replayed,
    long DuplicatesDropped,
    long OutOfOrder,
    long InFlight,
    double LatencyP50Ms,
    double LatencyP95Ms,
    double LatencyP99Ms,
    long Epoch,
    IReadOnlyList<StagePlacement> Plan,
    IReadOnlyList<PipelineEvent> RecentEvents) : IControlMessage;

/// <summary>Something worth a line in the monitor's event log: a join, a failure, a redeploy and how long it took.</summary>
/// <param name="JobId">The job the event is about; empty for the cluster's own events (a worker joined, a node left).</param>
public sealed record PipelineEvent(long UnixMs, string Source, string Text, string JobId = "") : IControlMessage;
