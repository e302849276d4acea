using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Membership;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.ControlPath.Supervision;

/// <summary>
/// The cluster singleton (coordinator role) that places every job's stages. It holds one
/// <see cref="JobSupervisor"/> per job, made when the job's ingest registers, and is the only one to
/// hear the cluster: membership and the workers' reports go to every job's supervisor (each sees only
/// its own job's stages, so two jobs never share a stage: review R11), and a job's messages go to its
/// own. Stages of a job that no ingest has registered for a while are stopped.
/// </summary>
public sealed class PipelineSupervisor : ReceiveActor, IWithTimers
{
    private const string OrphanTimer = "orphans";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IPlacementPolicy _policy;
    private readonly SupervisorSettings _settings;
    private readonly Func<IActorRef, Address> _nodeOf;
    private readonly Dictionary<string, IActorRef> _jobs = new(StringComparer.Ordinal);
    private readonly Dictionary<Address, WorkerMembership> _membership = [];
    private readonly Dictionary<IActorRef, WorkerStatus> _reports = [];
    private readonly Dictionary<string, DateTime> _orphansSince = new(StringComparer.Ordinal);
    private readonly Dictionary<Address, DateTime> _unreachableSince = [];
    private readonly ProvenRoles _proven = ProvenRoles.Get(Context.System);

    // Workers that are up but have not proven the worker role by certificate yet: no job hears of them until they do.
    private readonly HashSet<Address> _awaitingProof = [];

    public PipelineSupervisor(IPlacementPolicy policy)
        : this(policy, SupervisorSettings.From(Context.System.Settings.Config), nodeOf: null)
    {
    }

    /// <param name="nodeOf">The node an actor lives on (null: its address); specs map their probes to worker addresses.</param>
    /// <remarks>Public because Akka creates actors through public constructors only.</remarks>
    public PipelineSupervisor(IPlacementPolicy policy, SupervisorSettings settings, Func<IActorRef, Address>? nodeOf)
    {
        _policy = policy;
        _settings = settings;
        var system = Context.System;
        _nodeOf = nodeOf ?? (actor => NodeAddress.NodeOf(system, actor));

        Receive<ClusterEvent.CurrentClusterState>(OnSnapshot);
        Receive<ClusterEvent.IMemberEvent>(e => OnClusterEvent(e));
        Receive<ClusterEvent.IReachabilityEvent>(e => OnClusterEvent(e));
        Receive<WorkerMembership>(OnMembership);
        Receive<WorkerStatus>(OnWorkerStatus);
        Receive<GetReportedWorkers>(_ => Sender.Tell(new ReportedWorkers(
            _reports.Values.Select(r => _nodeOf(r.Agent)).Where(n => _proven.Proven(n, Roles.Worker)).Distinct().ToList())));
        Receive<RolesProven>(OnRolesProven);
        Receive<PipelineJob>(job => JobSupervisorFor(job.JobId, create: true)!.Forward(job));
        Receive<JobEnded>(ended => JobSupervisorFor(ended.JobId, create: false)?.Forward(ended));
        Receive<StageDeployed>(m => JobSupervisorFor(m.JobId, create: false)?.Forward(m));
        Receive<StageDeployFailed>(m => JobSupervisorFor(m.JobId, create: false)?.Forward(m));
        Receive<StageWired>(m => JobSupervisorFor(m.JobId, create: false)?.Forward(m));
        Receive<PlanAcknowledged>(m => JobSupervisorFor(m.JobId, create: false)?.Forward(m));
        Receive<Terminated>(t =>
        {
            var ended = _jobs.FirstOrDefault(kv => kv.Value.Equals(t.ActorRef)).Key;
            if (ended is not null)
            {
                _jobs.Remove(ended);
            }
        });
        Receive<CheckOrphans>(_ => StopOrphans());
        Receive<StillUnreachable>(still =>
        {
            if (_unreachableSince.Remove(still.Lost.Node))
            {
                Apply(still.Lost); // out of the set: a later "reachable" is passed on as such
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IPlacementPolicy? policy = null) =>
        Akka.Actor.Props.Create(() => new PipelineSupervisor(policy ?? new BalancedSplitPolicy()));

    internal static Props Props(IPlacementPolicy policy, SupervisorSettings settings, Func<IActorRef, Address> nodeOf) =>
        Akka.Actor.Props.Create(() => new PipelineSupervisor(policy, settings, nodeOf));

    /// <summary>The jobs this supervisor places.</summary>
    public IReadOnlyCollection<string> Jobs => _jobs.Keys;

    protected override void PreStart()
    {
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(
            Self,
            ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.IMemberEvent),
            typeof(ClusterEvent.IReachabilityEvent));
        if (_proven.Required)
        {
            // Subscribed before the members proven so far are read: one proven in between is heard twice, never missed.
            Context.System.EventStream.Subscribe(Self, typeof(RolesProven));
            foreach (var proven in _proven.All)
            {
                Self.Tell(proven);
            }
        }

        Timers.StartPeriodicTimer(OrphanTimer, CheckOrphans.Instance, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        Context.System.EventStream.Unsubscribe(Self);
    }

    /// <summary>
    /// A job supervisor that fails stops: the ingest watching it registers the job again, and a new one rebuilds its view
    /// from the reports (a restart in place would keep the ref the ingest watches, yet forget the job).
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    private IActorRef? JobSupervisorFor(string jobId, bool create)
    {
        if (_jobs.TryGetValue(jobId, out var existing))
        {
            return existing;
        }

        if (!create)
        {
            return null;
        }

        var child = Context.ActorOf(JobSupervisor.Props(_policy, _settings, _nodeOf), ChildName(jobId));
        Context.Watch(child);
        _jobs[jobId] = child;
        _orphansSince.Remove(jobId);

        // A new job's supervisor starts from what is known now: who is a worker and what each reported last.
        foreach (var change in _membership.Values)
        {
            child.Tell(change);
        }

        foreach (var status in _reports.Values.Where(s => _proven.Proven(_nodeOf(s.Agent), Roles.Worker)))
        {
            child.Tell(ForJob(status, jobId));
        }

        return child;
    }

    /// <summary>An actor name for the job: its id where that is a valid name, else a hex spelling of it.</summary>
    private static string ChildName(string jobId) =>
        jobId.Length is > 0 and <= 64 && jobId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? $"job-{jobId}"
            : $"job-x{Convert.ToHexString(System.Text.Encoding.UTF8.GetBytes(jobId))}";

    private void OnSnapshot(ClusterEvent.CurrentClusterState state)
    {
        foreach (var member in state.Members.Where(m => m.HasRole(Roles.Worker) && m.Status == MemberStatus.Up))
        {
            OnMembership(new WorkerUp(member.Address));
        }

        foreach (var member in state.Unreachable.Where(m => m.HasRole(Roles.Worker)))
        {
            OnMembership(new WorkerLost(member.Address, LossKind.Unreachable));
        }
    }

    private void OnClusterEvent(object clusterEvent)
    {
        if (WorkerMembership.From(clusterEvent) is { } change)
        {
            OnMembership(change);
        }
    }

    /// <summary>
    /// An unreachable worker is told to the jobs only once it has stayed so for the threshold (R14): a reachability flap is
    /// swallowed whole. Removal cancels the wait and goes at once.
    /// </summary>
    private void OnMembership(WorkerMembership change)
    {
        if (_settings.UnreachableAfter > TimeSpan.Zero)
        {
            switch (change)
            {
                case WorkerLost { Kind: LossKind.Unreachable } lost when !_unreachableSince.ContainsKey(lost.Node):
                    _unreachableSince[lost.Node] = DateTime.UtcNow;
                    Timers.StartSingleTimer($"unreachable-{lost.Node}", new StillUnreachable(lost), _settings.UnreachableAfter);
                    return;
                case WorkerLost { Kind: LossKind.Unreachable }:
                    return;
                case WorkerReachable back when _unreachableSince.Remove(back.Node):
                    Timers.Cancel($"unreachable-{back.Node}");
                    Event($"worker {NodeAddress.Of(back.Node)} was unreachable for under "
                        + $"{_settings.UnreachableAfter.TotalMilliseconds:0} ms; its stages stay");
                    return;
                case WorkerLost lost:
                    _unreachableSince.Remove(lost.Node);
                    Timers.Cancel($"unreachable-{lost.Node}");
                    break;
            }
        }

        Apply(change);
    }

    private void Apply(WorkerMembership change)
    {
        var node = change switch
        {
            WorkerUp up => up.Node,
            WorkerReachable back => back.Node,
            WorkerLost lost => lost.Node,
            _ => null,
        };
        if (node is not null && change is WorkerUp or WorkerReachable && !_proven.Proven(node, Roles.Worker))
        {
            // Roles from certificates, not from the joiner's word: a worker the guard has not confirmed gets no stage.
            _awaitingProof.Add(node);
            return;
        }

        if (node is not null)
        {
            if (change is WorkerLost lost && lost.Kind.IsFinal())
            {
                _awaitingProof.Remove(node);
            }

            if (change is WorkerLost { Kind: LossKind.Removed })
            {
                _membership.Remove(node);
                foreach (var agent in _reports.Keys.Where(a => _nodeOf(a) == node).ToList())
                {
                    _reports.Remove(agent);
                }
            }
            else
            {
                _membership[node] = change is WorkerReachable ? new WorkerUp(node) : change;
            }
        }

        foreach (var job in _jobs.Values)
        {
            job.Tell(change);
        }
    }

    private void OnRolesProven(RolesProven proven)
    {
        if (proven.Roles.Contains(Roles.Worker) && _awaitingProof.Remove(proven.Member))
        {
            Event($"worker {NodeAddress.Of(proven.Member)} proved its role by certificate; it may host stages");
            Apply(new WorkerUp(proven.Member));
            // What it reported while unproven was held back: the jobs hear it now, as its first report.
            // (Not through the sender check: the sender here is whoever published the proof, never the worker.)
            foreach (var status in _reports.Values.Where(s => _nodeOf(s.Agent) == proven.Member).ToList())
            {
                Accept(status);
            }
        }
    }

    private void OnWorkerStatus(WorkerStatus status)
    {
        // A node reports for itself only: a status naming another node's agent would rewrite that node's entry (review S1.5).
        if (!status.Agent.Path.Address.Equals(Sender.Path.Address))
        {
            MessageGuard.Refuse(_log, "status-for-another-node", $"supervisor: a status for {status.Agent.Path} sent by {Sender.Path}");
            return;
        }

        Accept(status);
    }

    /// <summary>A report that passed the sender check: kept, and told to the jobs once its worker has proven its role.</summary>
    private void Accept(WorkerStatus status)
    {
        _reports[status.Agent] = status;
        if (!_proven.Proven(_nodeOf(status.Agent), Roles.Worker))
        {
            // Nothing of an unproven worker reaches a job: not its offer, nor a prefetch of stage files for it.
            _awaitingProof.Add(_nodeOf(status.Agent));
            return;
        }

        foreach (var (jobId, job) in _jobs)
        {
            job.Tell(ForJob(status, jobId));
        }
    }

    /// <summary>The report as one job's supervisor sees it: the node's capacity and cache, and only that job's stages.</summary>
    private static WorkerStatus ForJob(WorkerStatus status, string jobId) =>
        status with { Hosted = status.Hosted.Where(h => h.JobId == jobId).ToList() };

    /// <summary>
    /// Stops stages of jobs no supervisor here knows, once they have been reported for the grace time: a job that ended while
    /// its supervisor was moving, or whose ingest node is gone for good. Within the grace an ingest registers again and keeps them.
    /// </summary>
    private void StopOrphans()
    {
        var now = DateTime.UtcNow;
        var orphans = _reports.Values.SelectMany(s => s.Hosted.Select(h => (s.Agent, Stage: h)))
            .Where(x => !_jobs.ContainsKey(x.Stage.JobId))
            .ToList();
        foreach (var jobId in _orphansSince.Keys.Where(j => orphans.All(o => o.Stage.JobId != j)).ToList())
        {
            _orphansSince.Remove(jobId);
        }

        foreach (var (agent, stage) in orphans)
        {
            if (!_orphansSince.TryGetValue(stage.JobId, out var since))
            {
                _orphansSince[stage.JobId] = now;
                continue;
            }

            if (now - since >= _settings.OrphanGrace)
            {
                agent.Tell(new StopStage(stage.JobId, stage.Parts, stage.Index));
                Event($"stopped stage {stage.Index}/{stage.Parts} of job {stage.JobId} on {NodeAddress.Of(_nodeOf(agent))}: no ingest registered it");
            }
        }
    }

    private void Event(string text)
    {
        _log.Info("supervisor: {0}", text);
        MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), "supervisor", text));
    }

    private sealed record StillUnreachable(WorkerLost Lost);

    private sealed class CheckOrphans
    {
        public static readonly CheckOrphans Instance = new();
    }
}

/// <summary>Asks the supervisor which workers have proven their role and reported (local only: a harness waits on it).</summary>
public sealed class GetReportedWorkers : INoSerializationVerificationNeeded
{
    public static readonly GetReportedWorkers Instance = new();
}

/// <summary>The workers a new job's supervisor would start from.</summary>
public sealed record ReportedWorkers(IReadOnlyList<Address> Nodes) : INoSerializationVerificationNeeded;
