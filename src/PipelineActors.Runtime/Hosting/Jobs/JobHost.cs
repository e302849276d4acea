using Akka.Actor;
using Akka.Event;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.DataPath.Monitoring;

namespace PipelineActors.Runtime.Hosting.Jobs;

/// <summary>
/// The ingest role's resident actor (<c>/user/job-host</c>): runs the jobs the registry gives this node, one
/// <see cref="JobRunner"/> per run, restarts a run that failed with a growing pause (a camera that drops, a node short of
/// memory), and reports its jobs to the registry every second. It also submits the jobs declared in this node's
/// configuration, so a camera board that reboots streams again on its own.
/// </summary>
public sealed class JobHost : ReceiveActor, IWithTimers
{
    public const string Name = "job-host";

    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IActorRef _registry;
    private readonly JobRunContext _context;
    private readonly IReadOnlyList<DeclaredJob> _declared;
    private readonly Dictionary<string, Run> _runs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _declaredAccepted = new(StringComparer.Ordinal);
    private IActorRef _localModels = ActorRefs.Nobody;
    private IActorRef _cachedModels = ActorRefs.Nobody;
    private int _runNumber;

    public JobHost(IActorRef registry, JobRunContext context, IReadOnlyList<DeclaredJob> declared)
    {
        _registry = registry;
        _context = context;
        _declared = declared;

        Receive<RunJob>(OnRunJob);
        Receive<HaltJob>(halt =>
        {
            if (_runs.TryGetValue(halt.Name, out var run))
            {
                run.Halted = true;
                if (run.Runner is { } runner)
                {
                    runner.Tell(halt);
                }
                else if (!JobStates.IsOver(run.Status.State))
                {
                    // Waiting to restart: it simply does not.
                    Timers.Cancel(RestartKey(halt.Name));
                    run.Status = run.Status with { State = JobStates.Stopped, Detail = "stopped while waiting to restart" };
                }
            }
        });
        Receive<RunStatus>(OnRunStatus);
        Receive<Restart>(restart => StartRunner(restart.Name));
        Receive<Terminated>(_ => { });
        Receive<JobSubmitted>(submitted =>
        {
            if (submitted.Error.Length == 0)
            {
                _declaredAccepted.Add(submitted.Name);
            }
            else
            {
                _log.Error("Declared job {0} was refused: {1}", submitted.Name, submitted.Error);
            }
        });
        Receive<HostTick>(_ => OnTick());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef registry, JobRunContext context, IReadOnlyList<DeclaredJob> declared) =>
        Akka.Actor.Props.Create(() => new JobHost(registry, context, declared));

    protected override void PreStart()
    {
        // The declared jobs' models are served from here until the registry has its own copy.
        var files = _declared.ToDictionary(d => d.Spec.ModelSha256, d => d.ModelPath, StringComparer.Ordinal);
        _localModels = Context.ActorOf(ModelStoreActor.Props(files), "declared-models");

        // The models of the jobs run here, for a registry that lost its copy with its node (it fetches from the report's store).
        _cachedModels = Context.ActorOf(ModelStoreActor.Props(_context.Cache), "cached-models");
        Timers.StartPeriodicTimer("tick", HostTick.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    /// <summary>A run that the host's own failure would end: runs stop with the host (their actors are its children).</summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    private void OnTick()
    {
        var statuses = _runs.Values.Select(r => r.Status).ToList();
        var specs = _runs.Values.Select(r => r.Job.Spec with { ModelStore = _cachedModels }).ToList();
        _registry.Tell(new JobHostReport(Self, statuses, specs));

        // Declared jobs are submitted until the registry has them: it places each on this node.
        foreach (var declared in _declared.Where(d => !_declaredAccepted.Contains(d.Spec.Name)))
        {
            _registry.Tell(new SubmitJob(declared.Spec with { ModelStore = _localModels }));
        }

        // Runs over for a minute have been reported often enough: the registry keeps their last word.
        foreach (var name in _runs.Where(kv => kv.Value.Runner is null && JobStates.IsOver(kv.Value.Status.State)
            && DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - kv.Value.Status.UpdatedUnixMs > 60_000).Select(kv => kv.Key).ToList())
        {
            _runs.Remove(name);
        }
    }

    private void OnRunJob(RunJob job)
    {
        if (_runs.TryGetValue(job.Spec.Name, out var existing) && !JobStates.IsOver(existing.Status.State))
        {
            return; // already running it (the registry's message was repeated)
        }

        _runs[job.Spec.Name] = new Run(job);
        Event($"job {job.Spec.Name}: starting from frame {job.FirstId}");
        StartRunner(job.Spec.Name);
    }

    private void StartRunner(string name)
    {
        if (!_runs.TryGetValue(name, out var run) || run.Halted)
        {
            return;
        }

        // A restart continues after the last id the failed run issued.
        var job = run.Job with { FirstId = Math.Max(run.Job.FirstId, run.Status.LastId + 1), SkippedBefore = run.Status.Skipped };
        run.Runner = Context.ActorOf(JobRunner.Props(job, _context, ++_runNumber), $"run-{name}-{_runNumber}");
        Context.Watch(run.Runner);
    }

    private void OnRunStatus(RunStatus update)
    {
        var name = update.Status.Name;
        if (!_runs.TryGetValue(name, out var run) || !Sender.Equals(run.Runner))
        {
            return; // a run that was replaced
        }

        run.Status = update.Status;
        if (!update.Over)
        {
            if (update.Status.State == JobStates.Running)
            {
                run.Backoff = FirstBackoff;
            }

            return;
        }

        run.Runner = null;
        Event($"job {name}: {update.Status.State}{(update.Status.Detail.Length > 0 ? $" ({update.Status.Detail})" : string.Empty)}");
        if (update.Status.State == JobStates.Failed && update.Restartable && !run.Halted)
        {
            var pause = run.Backoff;
            run.Backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, pause.Ticks * 2));
            run.Status = run.Status with
            {
                State = JobStates.Starting,
                Detail = $"restarting in {pause.TotalSeconds:0} s after: {update.Status.Detail}",
            };
            Timers.StartSingleTimer(RestartKey(name), new Restart(name), pause);
        }
    }

    private static string RestartKey(string name) => $"restart-{name}";

    private void Event(string text)
    {
        // Events leave this node (the monitor topic): no camera credentials in them, whatever a reason quoted.
        text = DataPath.Sources.SourceCredentials.Redact(text);
        _log.Info("job host: {0}", text);
        MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), "jobs", text));
    }

    private sealed class Run(RunJob job)
    {
        public RunJob Job { get; } = job;

        public JobStatus Status { get; set; } = new(
            job.Spec.Name, JobStates.Starting, string.Empty, 0, 0, job.SkippedBefore, 0, 0, 0, 0, job.FirstId - 1, [], string.Empty,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

        public IActorRef? Runner { get; set; }

        public bool Halted { get; set; }

        public TimeSpan Backoff { get; set; } = FirstBackoff;
    }

    private sealed record Restart(string Name);

    private sealed class HostTick
    {
        public static readonly HostTick Instance = new();
    }
}
