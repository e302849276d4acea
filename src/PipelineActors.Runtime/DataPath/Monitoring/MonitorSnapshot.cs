namespace PipelineActors.Runtime.DataPath.Monitoring;

/// <summary>A cluster member as the monitor shows it.</summary>
/// <param name="Stages">The stages the member hosts in the jobs' live plans, as <c>JOB INDEX/PARTS</c>.</param>
public sealed record MemberRow(
    string Address, IReadOnlyList<string> Roles, string Status, bool Reachable, int? Cores, long? MemoryBytes, IReadOnlyList<string> Stages);

/// <summary>One stage of a job's live plan with its rates, from the stage's own reports.</summary>
public sealed record StageRates(
    int Index,
    string Node,
    string Layers,
    double FlopsShare,
    long Frames,
    double FramesPerSecond,
    double BusyPercent,
    int Queue,
    double ComputeMsP50,
    double ComputeMsP95,
    long BytesInPerFrame,
    long BytesOutPerFrame,
    double LinkMBPerSecond);

/// <summary>End-to-end figures of one job, from its ingest node.</summary>
/// <param name="DuplicatesDropped">Results that reached the sink twice (a re-send or a replay) and were dropped there, not delivered.</param>
public sealed record EndToEnd(
    long FramesIn,
    long ResultsOut,
    long InFlight,
    long Skipped,
    long Lost,
    long DuplicatesDropped,
    long OutOfOrder,
    long Failed,
    long Resent,
    long Replayed,
    double FramesPerSecond,
    double LatencyP50Ms,
    double LatencyP95Ms,
    double LatencyP99Ms,
    long Epoch,
    IReadOnlyList<double> ThroughputHistory);

/// <summary>An event log line.</summary>
public sealed record EventRow(long UnixMs, string Source, string Text);

/// <summary>The states a job is shown in.</summary>
public static class ReportedJobStates
{
    /// <summary>Events name the job, but its ingest has not reported yet.</summary>
    public const string Starting = "starting";

    /// <summary>The ingest reports, and no plan is live yet.</summary>
    public const string WaitingForPlan = "waiting for a plan";

    public const string Running = "running";

    /// <summary>Reports stopped after every frame had an outcome.</summary>
    public const string Finished = "finished";

    /// <summary>Reports stopped with frames outstanding: the ingest node left or died.</summary>
    public const string Silent = "silent";
}

/// <summary>One job as the monitor shows it: its state, end-to-end figures, the stages of its live plan and its own events.</summary>
public sealed record JobView(string JobId, string State, EndToEnd? Pipeline, IReadOnlyList<StageRates> Stages, IReadOnlyList<EventRow> Events);

/// <summary>What the monitor knows now: the members, every job (ordered by id), and the cluster's own events.</summary>
public sealed record MonitorSnapshot(long TakenUnixMs, IReadOnlyList<MemberRow> Members, IReadOnlyList<JobView> Jobs, IReadOnlyList<EventRow> Events);

/// <summary>Ask the monitor actor for a snapshot.</summary>
public sealed class GetMonitorSnapshot
{
    public static readonly GetMonitorSnapshot Instance = new();

    private GetMonitorSnapshot()
    {
    }
}
