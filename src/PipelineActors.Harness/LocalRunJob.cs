using System.Globalization;
using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Jobs;

namespace PipelineActors.Harness;

/// <summary>
/// The job a local run submits to its cluster's job registry, as <c>pipeline job submit</c> would: the registry takes the model
/// by SHA-256 from this process, places the job on the head's job host, and a <see cref="JobRunner"/> streams it. The run's
/// needs (its cut, its source, the audit of its results, a read of the counters before the job ends) ride on
/// <see cref="JobRunHooks"/>, not on a second copy of that path.
/// </summary>
internal sealed class LocalRunJob
{
    /// <summary>The run's job name: the supervisor, the registry and <c>pipeline job status --name run</c> all know it by this.</summary>
    public const string Name = "run";

    private readonly TaskCompletionSource<IngestSession> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private LocalRunJob()
    {
    }

    /// <summary>Registers the hooks on the head, submits the job and returns once the registry has accepted it.</summary>
    /// <param name="results">The result destinations of the spec (a file path or <c>-</c>), empty for none.</param>
    public static async Task<LocalRunJob> SubmitAsync(
        PipelineNode head,
        LocalRunOptions options,
        IReadOnlyDictionary<string, long[]>? sizes,
        IReadOnlyList<string> results,
        int window,
        JobRunHooks hooks)
    {
        var job = new LocalRunJob();
        head.JobHooks.Set(Name, hooks with
        {
            Started = job._started.SetResult,
            StartFailed = e => job._started.TrySetException(e),
            BeforeEnd = _ => job._released.Task,
            Restartable = false, // the run reports its failure itself; a restart would stream a second time
        });

        var spec = JobSpecs.ForModel(
            Name,
            options.ModelPath,
            options.Source,
            results,
            (sizes ?? new Dictionary<string, long[]>()).Select(s => $"{s.Key}={Dimensions(s.Value)}").ToList(),
            window,
            Math.Clamp(options.FramesPerSecond, 0, 10_000), // what the spec shows: the run's own source paces itself
            options.ChaosMinutes is null ? Math.Max(0, options.Frames) : 0,
            NodeAddress.Of(head.Address));
        var model = head.System.ActorOf(
            ModelStoreActor.Props(new Dictionary<string, string> { [spec.ModelSha256] = Path.GetFullPath(options.ModelPath) }), "run-model");
        var submit = new SubmitJob(spec with { ModelStore = model, Codec = options.Codec ?? Transfer.TransferSpec.Exact,
            FirstHop = options.FirstHop });
        var answer = await head.Jobs.Ask<JobSubmitted>(submit, TimeSpan.FromMinutes(2));
        if (answer.Error.Length > 0)
        {
            throw new InvalidOperationException($"The run's cluster refused its job: {answer.Error}");
        }

        return job;
    }

    private static string Dimensions(long[] shape) => string.Join('x', shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The job's ingest session, once its runner on the head streams; faults with why it could not start.</summary>
    public async Task<IngestSession> StartedAsync(PipelineNode head, TimeSpan timeout)
    {
        var done = await Task.WhenAny(_started.Task, Task.Delay(timeout), head.System.WhenTerminated);
        if (done != _started.Task)
        {
            var status = await StatusAsync(head);
            throw new TimeoutException(
                $"The run's job did not start within {timeout.TotalSeconds:0} s (job {Name}: {status?.State ?? "unknown"}"
                + $"{(status is { Detail.Length: > 0 } ? $", {status.Detail}" : string.Empty)}).");
        }

        return await _started.Task;
    }

    /// <summary>Lets the job's runner end (after the run has read the stages' counters): the registry then has it finished.</summary>
    public void Release() => _released.TrySetResult();

    private static async Task<JobStatus?> StatusAsync(PipelineNode head)
    {
        try
        {
            var list = await head.Jobs.Ask<JobList>(ListJobs.Instance, TimeSpan.FromSeconds(5));
            return list.Jobs.FirstOrDefault(j => j.Name == Name);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            return null;
        }
    }
}

/// <summary>A run's own state folder (its registry's <c>jobs.json</c>, its stage files), private, removed when the run ends.</summary>
internal sealed class RunStateFolder : IDisposable
{
    private RunStateFolder(string path) => Path = path;

    public string Path { get; }

    public static RunStateFolder Create() =>
        new(PrivateFiles.EnsureFolder(System.IO.Path.Combine(PrivateFiles.RunFolder(), $"state-{Environment.ProcessId}-{Guid.NewGuid():N}")));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a stopping actor: the folder is private and under the run folder, so it harms no one.
        }
    }
}
