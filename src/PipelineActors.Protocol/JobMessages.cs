using Akka.Actor;

namespace PipelineActors.Protocol;

/// <summary>
/// A camera job as a user declares it: what runs, on what, and where results go. The model travels by SHA-256 from
/// <see cref="ModelStore"/> (the submitter's, then the job registry's copy), with its profile's text beside it.
/// </summary>
/// <param name="Name">The job's name, unique in the cluster: letters, digits, '-' and '_'.</param>
/// <param name="Source">A source spec (synthetic, a file, a folder of pictures, a camera URL, /dev/videoN).</param>
/// <param name="Results">Result destinations (a JSON-lines file, stdout, mqtt); empty: results are counted, not written.</param>
/// <param name="InputSizes">Input size overrides, NAME=1x3x224x224.</param>
/// <param name="Window">Frames in flight at most; 0: workers + 1.</param>
/// <param name="FramesPerSecond">Camera rate; 0: as fast as the pipeline takes frames.</param>
/// <param name="Frames">Frames to take from the source; 0: until the source ends.</param>
/// <param name="IngestNode">The node (host:port) that runs the job's ingest and sink; empty: any ingest node.</param>
/// <param name="Codec">The transfer layer's codec on every cut (as <c>pipeline run --codec</c> takes it); <c>exact</c>: none.</param>
/// <param name="FirstHop">What the source's pictures cross to the first stage as: <c>raw</c> uint8 pixels or <c>jpeg:Q</c>.</param>
public sealed record JobSpec(
    string Name,
    string ModelSha256,
    string ModelFileName,
    long ModelBytes,
    string ProfileJson,
    string Source,
    IReadOnlyList<string> Results,
    IReadOnlyList<string> InputSizes,
    int Window,
    double FramesPerSecond,
    long Frames,
    string IngestNode,
    IActorRef ModelStore,
    string Codec = "exact",
    string FirstHop = "raw") : IJobMessage
{
    /// <summary>A local camera (V4L2) cannot follow the job to another node: the job stays where the camera is.</summary>
    public bool BoundToNode => Source.StartsWith("/dev/", StringComparison.Ordinal) || Source.StartsWith("v4l2:", StringComparison.Ordinal);
}

/// <summary>A job's life: starting (model fetched, cut, deployed), running, then finished, failed or stopped.</summary>
public static class JobStates
{
    public const string Starting = "starting";
    public const string Running = "running";
    public const string Stopping = "stopping";
    public const string Finished = "finished";
    public const string Failed = "failed";
    public const string Stopped = "stopped";

    /// <summary>Whether the job is over (nothing runs for it any more).</summary>
    public static bool IsOver(string state) => state is Finished or Failed or Stopped;
}

/// <summary>Where one job stands, as <c>pipeline job status</c> shows it.</summary>
/// <param name="Node">The ingest node running it (host:port), empty while none does.</param>
/// <param name="LastId">The highest frame id issued so far (-1 before the first): a job that moves continues after it.</param>
/// <param name="Plan">The live plan: each stage's node and layers.</param>
/// <param name="Detail">Why it failed, waits or restarts; empty when there is nothing to say.</param>
public sealed record JobStatus(
    string Name,
    string State,
    string Node,
    long FramesIn,
    long ResultsOut,
    long Skipped,
    long Failed,
    double FramesPerSecond,
    double LatencyP50Ms,
    double LatencyP95Ms,
    long LastId,
    IReadOnlyList<string> Plan,
    string Detail,
    long UpdatedUnixMs);

/// <summary>Client to job registry: run this job (its model is fetched from the spec's store before the answer).</summary>
public sealed record SubmitJob(JobSpec Spec) : IJobMessage;

/// <summary>Job registry to client: the job is registered (<see cref="Error"/> empty) or refused, in one sentence.</summary>
public sealed record JobSubmitted(string Name, string Error) : IJobMessage;

/// <summary>Client to job registry: drain what is in flight, then stop.</summary>
public sealed record StopJob(string Name) : IJobMessage;

/// <summary>Job registry to client: the stop is under way (<see cref="Error"/> empty), or why not.</summary>
public sealed record JobStopping(string Name, string Error) : IJobMessage;

/// <summary>Client to job registry: every job it knows.</summary>
public sealed record ListJobs : IJobMessage
{
    public static readonly ListJobs Instance = new();
}

/// <summary>Job registry to client.</summary>
public sealed record JobList(IReadOnlyList<JobStatus> Jobs) : IJobMessage;

/// <summary>Job registry to an ingest node's job host: run the job, numbering frames from <see cref="FirstId"/>.</summary>
/// <param name="SkippedBefore">Frames counted as skipped before this run (a camera that sent while no node listened).</param>
public sealed record RunJob(JobSpec Spec, long FirstId, long SkippedBefore) : IJobMessage;

/// <summary>Job registry to job host: drain and stop the job.</summary>
public sealed record HaltJob(string Name) : IJobMessage;

/// <summary>
/// Job host to job registry, every second: the node's jobs and their specs, so a registry that moved to another
/// coordinator (or lost its state) rebuilds its view from the hosts, as the supervisor does from the workers.
/// </summary>
public sealed record JobHostReport(IActorRef Host, IReadOnlyList<JobStatus> Jobs, IReadOnlyList<JobSpec> Specs) : IJobMessage;
