using System.Collections.Concurrent;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;

namespace PipelineActors.Runtime.Hosting.Jobs;

/// <summary>
/// What a harness in the ingest node's own process changes in one job's runs (<c>pipeline run</c>). Every hook is optional and
/// in-process only (nothing here travels); with none set a job runs exactly as a submitted one.
/// </summary>
public sealed record JobRunHooks
{
    /// <summary>
    /// The cut model to stream with, in place of the runner's cut for the workers Up now: splits prepared for workers the
    /// harness adds later, or a planner's cut among the balanced ones.
    /// </summary>
    public PreparedModel? Model { get; init; }

    /// <summary>Opens the source in place of the spec's, given the cut model (a live synthetic camera, an endless source a soak ends).</summary>
    public Func<PreparedModel, IFrameSource>? Source { get; init; }

    /// <summary>Wraps the job's result destinations: an audit that counts what lands, a fault injected before it, annotation.</summary>
    public Func<IResultWriter, IResultWriter>? Results { get; init; }

    /// <summary>Changes the ingest's settings (pixels carried to the sink for an annotator).</summary>
    public Func<IngestSettings, IngestSettings>? Ingest { get; init; }

    /// <summary>Called once the run streams: the harness reads the ingest's and the sink's counters while the job runs.</summary>
    public Action<IngestSession>? Started { get; init; }

    /// <summary>
    /// Awaited after the last frame has its outcome, before the run ends and its actors stop: the harness reads the stages'
    /// counters. The supervisor's job stays open until then (its stages keep their counters); the runner ends it after.
    /// </summary>
    public Func<IngestSession, Task>? BeforeEnd { get; init; }

    /// <summary>Called when the run could not start (the model could not be cut, the source or results not opened), with why.</summary>
    public Action<Exception>? StartFailed { get; init; }

    /// <summary>Whether a failed run is started again with backoff; a harness that reports the failure itself says no.</summary>
    public bool Restartable { get; init; } = true;
}

/// <summary>The <see cref="JobRunHooks"/> of this node's jobs, by job name; empty on a service node.</summary>
public sealed class JobRunHookTable
{
    private readonly ConcurrentDictionary<string, JobRunHooks> _hooks = new(StringComparer.Ordinal);

    /// <summary>Sets the hooks of the job's runs that start from now on.</summary>
    public void Set(string job, JobRunHooks hooks) => _hooks[job] = hooks;

    public void Remove(string job) => _hooks.TryRemove(job, out _);

    /// <summary>The job's hooks, or null for a job that runs as submitted.</summary>
    public JobRunHooks? For(string job) => _hooks.GetValueOrDefault(job);
}
