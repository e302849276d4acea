using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.ControlPath.Jobs;

/// <summary>
/// The cluster singleton (coordinator role, <c>/user/jobs</c>) that knows every job: it takes submissions (fetching the
/// model into this node's cache first, so the job no longer needs its submitter), gives each job to an ingest node's
/// <see cref="Hosting.Jobs.JobHost"/>, moves a job whose host is gone, and answers list, status and stop. Its jobs are
/// written to <c>jobs.json</c> in the node's state folder, and hosts' reports put back what a new registry does not know.
/// </summary>
public sealed class JobRegistry : ReceiveActor, IWithTimers
{
    public const string Name = "jobs";

    /// <summary>A host silent for this long is taken for gone even before its node leaves the cluster.</summary>
    public static readonly TimeSpan HostSilence = TimeSpan.FromSeconds(10);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly JobBook _book = new();
    private readonly Dictionary<IActorRef, JobHostView> _hosts = [];
    private readonly Dictionary<string, (JobSpec Spec, IActorRef ReplyTo)> _fetching = new(StringComparer.Ordinal);
    private readonly ModelCache _cache;
    private readonly HashSet<string> _modelsFetching = new(StringComparer.Ordinal);
    private readonly JobStore _store;
    private IActorRef _models = ActorRefs.Nobody;
    private string _written = string.Empty;

    public JobRegistry(PipelineSettings settings)
    {
        _cache = new ModelCache(settings.ModelCacheFolder, settings.CacheMaxBytes);
        _store = new JobStore(Path.Combine(settings.StateFolder, "jobs.json"));

        Receive<SubmitJob>(OnSubmit);
        Receive<FileFetched>(OnFetched);
        Receive<StopJob>(stop =>
        {
            var error = _book.Stop(stop.Name, DateTime.UtcNow);
            Sender.Tell(new JobStopping(stop.Name, error ?? string.Empty));
            if (error is null)
            {
                Event($"job {stop.Name}: stop asked");
                Tick();
            }
        });
        Receive<ListJobs>(_ => Sender.Tell(new JobList(_book.Jobs.Select(j => Shown(j.Status)).OrderBy(s => s.Name,
            StringComparer.Ordinal).ToList())));
        Receive<JobHostReport>(OnHostReport);
        // A watched host that stops (its node downed or shut down) is lost now; unhandled, its Terminated restarted the
        // registry (a DeathPactException), dropping the submissions it was fetching models for.
        Receive<Terminated>(stopped =>
        {
            if (_hosts.TryGetValue(stopped.ActorRef, out var host))
            {
                LoseHost(host, "stopped");
                Tick();
            }
        });
        Receive<ClusterEvent.MemberRemoved>(removed => LoseHostsOn(NodeAddress.Of(removed.Member.Address), "left the cluster"));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<RegistryTick>(_ => Tick());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(PipelineSettings settings) => Akka.Actor.Props.Create(() => new JobRegistry(settings));

    protected override void PreStart()
    {
        _models = Context.ActorOf(ModelStoreActor.Props(_cache), "models");
        var now = DateTime.UtcNow;
        foreach (var (spec, status) in _store.Load())
        {
            // What ran keeps its place until its host reports (or fails to within the host silence).
            _book.Restore(spec with { ModelStore = _models }, status, now);
        }

        if (_book.Jobs.Count > 0)
        {
            Event($"read {_book.Jobs.Count} job(s) from {_store.Path}");
        }

        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.MemberRemoved));
        Timers.StartPeriodicTimer("tick", RegistryTick.Instance, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private void OnSubmit(SubmitJob submit)
    {
        var spec = submit.Spec;
        if (!JobBook.IsValidName(spec.Name) || spec.ModelSha256.Length != 64 || !spec.ModelSha256.All(char.IsAsciiHexDigit))
        {
            Sender.Tell(new JobSubmitted(spec.Name,
                $"The job name '{spec.Name}' or its model's SHA-256 is not valid; use 1 to 64 letters, digits, '-' or '_'."));
            return;
        }

        if (_cache.Has(spec.ModelSha256))
        {
            Register(spec, Sender);
            return;
        }

        if (_fetching.ContainsKey(spec.Name))
        {
            Sender.Tell(new JobSubmitted(spec.Name, $"Job {spec.Name} is being submitted already; wait for that submission's answer."));
            return;
        }

        // The model comes to this node first: the job must not depend on its submitter once it is accepted.
        _fetching[spec.Name] = (spec, Sender);
        Context.ActorOf(FileFetcher.Props(_cache, new StageFile(spec.ModelSha256, spec.ModelBytes), spec.ModelStore));
    }

    private void OnFetched(FileFetched fetched)
    {
        _modelsFetching.Remove(fetched.Sha256);
        foreach (var (name, (spec, replyTo)) in _fetching.Where(f => f.Value.Spec.ModelSha256 == fetched.Sha256).ToList())
        {
            _fetching.Remove(name);
            if (fetched.Error is null)
            {
                Register(spec, replyTo);
            }
            else
            {
                replyTo.Tell(new JobSubmitted(name, $"The model of job {name} could not be fetched from the submitter: {fetched.Error}."));
            }
        }
    }

    private void Register(JobSpec spec, IActorRef replyTo)
    {
        var error = _book.Submit(spec with { ModelStore = _models }, DateTime.UtcNow);
        replyTo.Tell(new JobSubmitted(spec.Name, DataPath.Sources.SourceCredentials.Redact(error ?? string.Empty)));
        if (error is null)
        {
            Event($"job {spec.Name}: submitted ({spec.ModelFileName}, source {SourceText(spec.Source)})");
            Tick();
        }
    }

    private void OnHostReport(JobHostReport report)
    {
        var now = DateTime.UtcNow;
        var view = new JobHostView(report.Host, NodeAddress.Of(NodeAddress.NodeOf(Context.System, report.Host)), now);
        var known = _hosts.ContainsKey(report.Host);
        _hosts[report.Host] = view;
        if (!known)
        {
            Context.Watch(report.Host);
            Event($"ingest node {view.Node} hosts jobs");
        }

        // A job known only from a host (this registry is new, on another coordinator) has its model fetched from that host.
        foreach (var spec in report.Specs.Where(s => !_cache.Has(s.ModelSha256) && !_modelsFetching.Contains(s.ModelSha256)))
        {
            _modelsFetching.Add(spec.ModelSha256);
            Context.ActorOf(FileFetcher.Props(_cache, new StageFile(spec.ModelSha256, spec.ModelBytes), spec.ModelStore));
        }

        var specs = report.Specs.Select(s => s with { ModelStore = _models }).ToList();
        foreach (var name in _book.Report(view, report.Jobs, specs, _hosts.ContainsKey))
        {
            report.Host.Tell(new HaltJob(name));
        }

        Persist();
        if (!known)
        {
            Tick();
        }
    }

    private void Tick()
    {
        var now = DateTime.UtcNow;
        foreach (var silent in _hosts.Values.Where(h => now - h.LastReport > HostSilence).ToList())
        {
            LoseHost(silent, $"has not reported for {HostSilence.TotalSeconds:0} s");
        }

        foreach (var (host, run) in _book.Place(_hosts.Values.ToList(), now))
        {
            var skipped = run.SkippedBefore > 0 ? $", {run.SkippedBefore} frame(s) the camera sent meanwhile counted as skipped" : string.Empty;
            Event($"job {run.Spec.Name}: runs on {_hosts[host].Node} from frame {run.FirstId}{skipped}");
            host.Tell(run);
        }

        // A stop goes again every second until the host says the job is over.
        foreach (var job in _book.Jobs.Where(j => j.StopRequested && j.Host is not null && !JobStates.IsOver(j.Status.State)))
        {
            job.Host!.Tell(new HaltJob(job.Spec.Name));
        }

        Persist();
    }

    private void LoseHostsOn(string node, string why)
    {
        foreach (var host in _hosts.Values.Where(h => h.Node == node).ToList())
        {
            LoseHost(host, why);
        }

        Tick();
    }

    private void LoseHost(JobHostView host, string why)
    {
        _hosts.Remove(host.Host);
        Context.Unwatch(host.Host);
        foreach (var job in _book.HostLost(host.Host, host.LastReport))
        {
            Event($"job {job.Spec.Name}: ingest node {host.Node} {why}; {job.Status.Detail}");
        }
    }

    /// <summary>Writes the jobs when something other than the counters changed (and with them, the counters).</summary>
    private void Persist()
    {
        var key = string.Join(';', _book.Jobs.Select(j => $"{j.Spec.Name}:{j.Status.State}:{j.Status.Node}:{j.Status.LastId / 100}"));
        if (key == _written)
        {
            return;
        }

        try
        {
            _store.Save(_book.Jobs.Select(j => (j.Spec, j.Status)).ToList());
            _written = key;
        }
        catch (IOException e)
        {
            _log.Warning("Could not write {0}: {1}", _store.Path, e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            _log.Warning("Could not write {0}: {1}", _store.Path, e.Message);
        }
    }

    /// <summary>A status as list and status show it: its detail (a reason that may quote a camera URL) without credentials.</summary>
    private static JobStatus Shown(JobStatus status) => status with
    {
        Detail = DataPath.Sources.SourceCredentials.Redact(status.Detail),
        Plan = status.Plan.Select(DataPath.Sources.SourceCredentials.Redact).ToList(),
    };

    /// <summary>A source as shown in events: a camera URL without its credentials.</summary>
    private static string SourceText(string source) => DataPath.Sources.SourceCredentials.Redact(source);

    private void Event(string text)
    {
        // Events leave this node (the monitor topic): no camera credentials in them, whatever a reason quoted.
        text = DataPath.Sources.SourceCredentials.Redact(text);
        _log.Info("jobs: {0}", text);
        MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), "jobs", text));
    }

    private sealed class RegistryTick
    {
        public static readonly RegistryTick Instance = new();
    }
}
