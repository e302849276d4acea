using Akka.Actor;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.ControlPath.Jobs;

/// <summary>One job as the registry keeps it: the spec, the last status heard, and which host runs it.</summary>
public sealed class JobRecord(JobSpec spec, JobStatus status)
{
    public JobSpec Spec { get; set; } = spec;

    public JobStatus Status { get; set; } = status;

    /// <summary>The job host running it; null while no host does (waiting, moving, or over).</summary>
    public IActorRef? Host { get; set; }

    /// <summary>The node (host:port) the job last ran on: a job bound to a camera on that node waits for it.</summary>
    public string LastNode { get; set; } = string.Empty;

    public bool StopRequested { get; set; }

    /// <summary>When the host was told to run it, or when it lost its host: for the skipped-frames estimate and re-sends.</summary>
    public DateTime Since { get; set; }

    /// <summary>What the job's earlier runs (on other nodes, or before a restart) counted; the status adds the current run's.</summary>
    public JobCounters Earlier { get; set; } = JobCounters.None;

    /// <summary>What the current run's host last counted.</summary>
    public JobCounters Current { get; set; } = JobCounters.None;
}

/// <summary>A run's frame counters.</summary>
public sealed record JobCounters(long FramesIn, long ResultsOut, long Skipped, long Failed)
{
    public static readonly JobCounters None = new(0, 0, 0, 0);

    public static JobCounters Of(JobStatus status) => new(status.FramesIn, status.ResultsOut, status.Skipped, status.Failed);

    public JobCounters Plus(JobCounters other) =>
        new(FramesIn + other.FramesIn, ResultsOut + other.ResultsOut, Skipped + other.Skipped, Failed + other.Failed);

    public JobStatus Into(JobStatus status) =>
        status with { FramesIn = FramesIn, ResultsOut = ResultsOut, Skipped = Skipped, Failed = Failed };
}

/// <summary>A job host the registry has heard from.</summary>
/// <param name="Node">host:port of the host's node.</param>
public sealed record JobHostView(IActorRef Host, string Node, DateTime LastReport);

/// <summary>
/// The job registry's state, with no actor in it: which jobs exist, where each runs, and what each host must be told.
/// Hosts' reports are the truth about what runs; the book decides where what does not run yet should.
/// </summary>
public sealed class JobBook
{
    private readonly Dictionary<string, JobRecord> _jobs = new(StringComparer.Ordinal);

    public IReadOnlyCollection<JobRecord> Jobs => _jobs.Values;

    /// <summary>A job's name is used in actor names, file names and MQTT topics: letters, digits, '-' and '_', 1 to 64 of them.</summary>
    public static bool IsValidName(string name) =>
        name.Length is >= 1 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    public JobRecord? Find(string name) => _jobs.GetValueOrDefault(name);

    /// <summary>Registers a job; an error sentence when it cannot be (a bad name, or a job of that name still running).</summary>
    public string? Submit(JobSpec spec, DateTime now)
    {
        if (!IsValidName(spec.Name))
        {
            return $"The job name '{spec.Name}' is not valid; use 1 to 64 letters, digits, '-' or '_'.";
        }

        if (_jobs.TryGetValue(spec.Name, out var existing) && !JobStates.IsOver(existing.Status.State))
        {
            return existing.Spec.ModelSha256 == spec.ModelSha256 && existing.Spec.Source == spec.Source
                ? null // the same job again (a retried submit, a node's declared job): nothing changes
                : $"A job named {spec.Name} is {existing.Status.State}; stop it first (pipeline job stop --name {spec.Name}).";
        }

        // A new job, or one that ended being submitted again: frame ids continue after the last one it issued.
        var lastId = existing?.Status.LastId ?? -1;
        _jobs[spec.Name] = new JobRecord(spec, Waiting(spec.Name, lastId, "waiting for an ingest node", now)) { Since = now };
        return null;
    }

    /// <summary>Asks for a job to stop; an error sentence when there is no such job or it is over already.</summary>
    public string? Stop(string name, DateTime now)
    {
        if (!_jobs.TryGetValue(name, out var job))
        {
            return $"There is no job named {name}; pipeline job list shows the jobs there are.";
        }

        if (JobStates.IsOver(job.Status.State))
        {
            return $"Job {name} is {job.Status.State} already.";
        }

        job.StopRequested = true;
        if (job.Host is null)
        {
            // Nothing runs it: it stops here and now.
            job.Status = job.Status with { State = JobStates.Stopped, Detail = "stopped before it ran", UpdatedUnixMs = UnixMs(now) };
        }
        else
        {
            job.Status = job.Status with { State = JobStates.Stopping, UpdatedUnixMs = UnixMs(now) };
        }

        return null;
    }

    /// <summary>
    /// What a host says it runs. A job the book does not know is adopted from the host's spec (the registry moved or lost
    /// its state); a job the book has given to another live host is to be halted on this one (returned).
    /// </summary>
    public IReadOnlyList<string> Report(JobHostView host, IReadOnlyList<JobStatus> statuses, IReadOnlyList<JobSpec> specs, Func<IActorRef,
        bool> isLive)
    {
        var halt = new List<string>();
        foreach (var status in statuses)
        {
            if (!_jobs.TryGetValue(status.Name, out var job))
            {
                if (specs.FirstOrDefault(s => s.Name == status.Name) is not { } spec)
                {
                    continue;
                }

                _jobs[status.Name] = job = new JobRecord(spec, status) { Since = host.LastReport };
            }

            if (job.Host is { } other && !other.Equals(host.Host) && isLive(other))
            {
                if (!JobStates.IsOver(status.State))
                {
                    halt.Add(status.Name); // two hosts run it: the one the book chose keeps it
                }

                continue;
            }

            if (job.Host is null && JobStates.IsOver(status.State) && JobStates.IsOver(job.Status.State))
            {
                continue; // an old run's last words after the job ended or moved on
            }

            job.Host = JobStates.IsOver(status.State) ? null : host.Host;
            job.LastNode = host.Node;
            var state = job.StopRequested && !JobStates.IsOver(status.State) ? JobStates.Stopping : status.State;
            job.Current = JobCounters.Of(status);
            job.Status = job.Earlier.Plus(job.Current)
                .Into(status with { State = state, Node = host.Node, LastId = Math.Max(status.LastId, job.Status.LastId) });
        }

        return halt;
    }

    /// <summary>
    /// The host is gone (its node left the cluster or it fell silent): its jobs have no host until placed again. The time away
    /// counts from <paramref name="lastSeen"/>, the host's last report: its camera's frames since then reached nobody.
    /// </summary>
    public IReadOnlyList<JobRecord> HostLost(IActorRef host, DateTime lastSeen)
    {
        var orphaned = _jobs.Values.Where(j => host.Equals(j.Host)).ToList();
        foreach (var job in orphaned)
        {
            job.Host = null;
            job.Since = lastSeen;
            if (job.StopRequested)
            {
                job.Status = job.Status with { State = JobStates.Stopped, Detail = "its ingest node left while it stopped",
                    UpdatedUnixMs = UnixMs(lastSeen) };
                continue;
            }

            var detail = job.Spec.BoundToNode
                ? $"its ingest node {job.LastNode} is gone; the job waits for it (its camera is there)"
                : $"its ingest node {job.LastNode} is gone; moving it";
            job.Status = job.Status with { State = JobStates.Starting, Node = string.Empty, Detail = detail, UpdatedUnixMs = UnixMs(lastSeen) };
        }

        return orphaned;
    }

    /// <summary>
    /// Places every job that should run and has no host: on its named node, on the node its camera is on, or else on the
    /// live host with the fewest jobs. A camera job that moves numbers its frames on after the camera's time away, so the
    /// frames nobody listened to are counted as skipped, not silently absent.
    /// </summary>
    public IReadOnlyList<(IActorRef Host, RunJob Run)> Place(IReadOnlyList<JobHostView> hosts, DateTime now)
    {
        var runs = new List<(IActorRef, RunJob)>();
        foreach (var job in _jobs.Values.Where(j => j.Host is null && !j.StopRequested && !JobStates.IsOver(j.Status.State)))
        {
            var wanted = !string.IsNullOrEmpty(job.Spec.IngestNode) ? job.Spec.IngestNode
                : job.Spec.BoundToNode && job.LastNode.Length > 0 ? job.LastNode
                : null;
            var candidates = wanted is null ? hosts : hosts.Where(h => h.Node == wanted).ToList();
            if (candidates.Count == 0)
            {
                var why = wanted is null ? "waiting for an ingest node" : $"waiting for ingest node {wanted}";
                job.Status = job.Status with { Detail = why, UpdatedUnixMs = UnixMs(now) };
                continue;
            }

            var host = candidates.MinBy(h => _jobs.Values.Count(j => h.Host.Equals(j.Host)))!;
            var firstId = job.Status.LastId + 1;
            long skipped = 0;
            if (job.Status.LastId >= 0 && IsLiveCamera(job.Spec) && job.Spec.FramesPerSecond > 0)
            {
                skipped = (long)Math.Floor((now - job.Since).TotalSeconds * job.Spec.FramesPerSecond);
                firstId += skipped;
            }

            // The frames the camera sent while no node listened are the new run's first skipped ones.
            job.Earlier = job.Earlier.Plus(job.Current);
            job.Current = JobCounters.None;
            job.Host = host.Host;
            job.LastNode = host.Node;
            job.Since = now;
            job.Status = job.Status with { State = JobStates.Starting, Node = host.Node, Detail = string.Empty, UpdatedUnixMs = UnixMs(now) };
            runs.Add((host.Host, new RunJob(job.Spec, firstId, skipped)));
        }

        return runs;
    }

    /// <summary>A camera keeps sending while no node listens; a clip or a folder waits where it was.</summary>
    public static bool IsLiveCamera(JobSpec spec) =>
        spec.Source.Contains("://", StringComparison.Ordinal) || spec.BoundToNode;

    /// <summary>Puts back a job read from the registry's file (its host, if it still runs it, reports it again).</summary>
    public void Restore(JobSpec spec, JobStatus status, DateTime now) =>
        _jobs[spec.Name] = new JobRecord(spec, status) { Since = now, LastNode = status.Node };

    private static JobStatus Waiting(string name, long lastId, string detail, DateTime now) =>
        new(name, JobStates.Starting, string.Empty, 0, 0, 0, 0, 0, 0, 0, lastId, [], detail, UnixMs(now));

    private static long UnixMs(DateTime now) => new DateTimeOffset(now, TimeSpan.Zero).ToUnixTimeMilliseconds();
}
