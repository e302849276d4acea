using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Membership;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.ControlPath.Supervision;

/// <summary>
/// The cluster singleton (coordinator role) that decides where stages run. It watches membership
/// and the workers' reports, deploys stages, wires each to its successor, and tells the ingest
/// which plan is live. Frames never pass through it: if it moves to another coordinator node,
/// frames keep flowing on the existing wiring while it rebuilds its view from the workers' reports.
/// </summary>
/// <remarks>
/// Four states: <see cref="Phase.Settling"/> (listening to reports, deciding nothing),
/// <see cref="Phase.Idle"/> (no plan live), <see cref="Phase.Deploying"/> (a
/// <see cref="DeploymentTransaction"/> in flight, the old plan still live if there is one) and
/// <see cref="Phase.Active"/>. What the workers are is a <see cref="WorkerRegistry"/>.
/// </remarks>
public sealed class PipelineSupervisor : ReceiveActor, IWithTimers
{
    private const string SettleTimer = "settle";
    private const string RebalanceTimer = "rebalance";
    private const string DeployTimer = "deploy-timeout";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IPlacementPolicy _policy;
    private readonly SupervisorSettings _settings;
    private readonly Func<IActorRef, Address> _nodeOf;
    private readonly WorkerRegistry _workers;
    private Phase _phase;
    private PipelineJob? _job;
    private LivePlan? _live;
    private DeploymentTransaction? _deployment;
    private long _epoch;
    private int _settleChecks;
    private long? _lostAt;

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
        _workers = new WorkerRegistry(settings.MaxFailedDeploys, settings.Exclusion);
        Enter(Phase.Settling);
    }

    /// <summary>The supervisor's states.</summary>
    internal enum Phase
    {
        /// <summary>A new supervisor listens to the workers' reports before it decides anything.</summary>
        Settling,

        /// <summary>No plan is live and none is being deployed.</summary>
        Idle,

        /// <summary>A plan change is being deployed and wired; the previous plan, if any, still carries frames.</summary>
        Deploying,

        /// <summary>A plan is live and nothing is being deployed.</summary>
        Active,
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IPlacementPolicy? policy = null) =>
        Akka.Actor.Props.Create(() => new PipelineSupervisor(policy ?? new BalancedSplitPolicy()));

    internal static Props Props(IPlacementPolicy policy, SupervisorSettings settings, Func<IActorRef, Address> nodeOf) =>
        Akka.Actor.Props.Create(() => new PipelineSupervisor(policy, settings, nodeOf));

    protected override void PreStart()
    {
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(
            Self,
            ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.IMemberEvent),
            typeof(ClusterEvent.IReachabilityEvent));

        // A new supervisor (first start, or moved after its node died) listens to the workers'
        // reports before it decides anything, so it adopts the running plan instead of redeploying.
        Timers.StartPeriodicTimer(SettleTimer, SettleCheck.Instance, _settings.SettleFirstCheck, _settings.SettleInterval);
    }

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private void Enter(Phase phase)
    {
        _phase = phase;
        Become(phase switch
        {
            Phase.Settling => Settling,
            Phase.Idle => Idle,
            Phase.Deploying => Deploying,
            _ => Active,
        });
    }

    private void Settling()
    {
        Receive<SettleCheck>(_ => OnSettleCheck());
        Receive<PlanTick>(_ => { }); // nothing is planned before the view has settled
        Common();
    }

    private void Idle()
    {
        Receive<PlanTick>(_ => Plan(immediate: false));
        Common();
    }

    private void Deploying()
    {
        Receive<StageDeployed>(deployed =>
        {
            var node = RecordDeployed(deployed);
            if (_deployment!.Deployed(deployed.Parts, deployed.Index, node, deployed.Stage))
            {
                Wire(_deployment);
            }
        });
        Receive<StageDeployFailed>(failed =>
        {
            ReportDeployFailure(failed);
            if (_deployment!.DeployFailed(failed.Epoch, _nodeOf(Sender)))
            {
                Abandon(_deployment);
                Plan(immediate: true);
            }
        });
        Receive<StageWired>(wired =>
        {
            if (_deployment!.Wired(wired.Epoch, wired.Index))
            {
                GoLive(_deployment);
            }
        });
        Receive<DeployTimeout>(timeout =>
        {
            if (_deployment!.TimedOut(timeout.Epoch))
            {
                Event($"deployment for epoch {timeout.Epoch} timed out; planning again");
                Abandon(_deployment);
                Plan(immediate: true);
            }
        });
        Receive<PlanTick>(_ => Plan(immediate: false));
        Common();
    }

    private void Active()
    {
        Receive<PlanTick>(_ => Plan(immediate: false));
        Common();
    }

    /// <summary>What every state handles the same way: membership, reports, the job, and answers for deployments no longer current.</summary>
    private void Common()
    {
        Receive<ClusterEvent.CurrentClusterState>(OnSnapshot);
        Receive<ClusterEvent.IMemberEvent>(e => OnClusterEvent(e));
        Receive<ClusterEvent.IReachabilityEvent>(e => OnClusterEvent(e));
        Receive<WorkerMembership>(OnMembership);
        Receive<WorkerStatus>(OnWorkerStatus);
        Receive<PipelineJob>(OnJob);

        // The stage runs there whatever became of its deployment: kept so a later plan reuses or stops it.
        Receive<StageDeployed>(deployed => RecordDeployed(deployed));
        Receive<StageDeployFailed>(ReportDeployFailure);
        Receive<StageWired>(_ => { });
        Receive<DeployTimeout>(_ => { });
        Receive<SettleCheck>(_ => { });
    }

    private void OnSnapshot(ClusterEvent.CurrentClusterState state)
    {
        foreach (var member in state.Members.Where(m => m.HasRole(Roles.Worker) && m.Status == MemberStatus.Up))
        {
            _workers.Up(member.Address);
        }

        foreach (var member in state.Unreachable)
        {
            _workers.Unreachable(member.Address);
        }
    }

    private void OnClusterEvent(object clusterEvent)
    {
        if (WorkerMembership.From(clusterEvent) is { } change)
        {
            OnMembership(change);
        }
    }

    private void OnMembership(WorkerMembership change)
    {
        switch (change)
        {
            case WorkerUp up:
                _workers.Up(up.Node);
                ScheduleRebalance();
                break;
            case WorkerReachable back when _workers.Reachable(back.Node):
                ScheduleRebalance();
                break;
            case WorkerLost lost:
                OnLost(lost.Node, lost.Kind);
                if (lost.Kind == LossKind.Removed)
                {
                    _workers.Remove(lost.Node);
                }

                break;
        }
    }

    private void OnSettleCheck()
    {
        // Settled once every worker that is up has reported (or after a few seconds anyway).
        _settleChecks++;
        if (_workers.Silent > 0 && _settleChecks < _settings.SettleChecks)
        {
            return;
        }

        Timers.Cancel(SettleTimer);
        Enter(Phase.Idle);
        Plan(immediate: true);
    }

    private void OnWorkerStatus(WorkerStatus status)
    {
        // A worker on this very node reports with a local reference, whose address has no host.
        var node = _nodeOf(status.Agent);
        var seen = _workers.Report(node, status);
        if (seen == ReportSeen.Ignored)
        {
            return;
        }

        // Epochs only grow: a new supervisor continues after the highest epoch any stage was wired for.
        _epoch = Math.Max(_epoch, status.Hosted.Select(h => h.WiredEpoch).DefaultIfEmpty(_epoch).Max());
        if (seen == ReportSeen.First)
        {
            var mib = status.MemoryBytes / (1 << 20);
            Event($"worker {NodeAddress.Of(node)} ready: {status.Cores} cores, {status.IntraOpThreads} intra-op thread(s), {mib} MiB");
            if (_job is not null)
            {
                Prefetch(status);
            }

            ScheduleRebalance();
        }
    }

    private void OnJob(PipelineJob job)
    {
        Sender.Tell(new JobAccepted(job.JobId));
        if (_job?.JobId == job.JobId)
        {
            _job = job; // refs may be newer
            return;
        }

        _job = job;
        Event($"job {job.JobId}: {job.Splits.Count} splits prepared");
        foreach (var status in _workers.Reports.ToList())
        {
            Prefetch(status);
        }

        Plan(immediate: true);
    }

    private void Prefetch(WorkerStatus status)
    {
        var files = _job!.Splits.SelectMany(s => s.Stages).Select(s => s.File)
            .DistinctBy(f => f.Sha256)
            .Where(f => !status.CachedFiles.Contains(f.Sha256))
            .ToList();
        if (files.Count > 0)
        {
            status.Agent.Tell(new PrefetchFiles(_job.JobId, files, _job.ModelStore));
        }
    }

    private void OnLost(Address node, LossKind kind)
    {
        if (!_workers.Lose(node, kind))
        {
            return;
        }

        var hosting = _live?.Target.Workers.Contains(node) == true || _deployment?.Involves(node) == true;
        Event($"worker {NodeAddress.Of(node)} {kind.Text()}{(hosting ? "; moving its stages" : string.Empty)}");
        if (!hosting)
        {
            return;
        }

        _lostAt ??= Stopwatch.GetTimestamp();
        if (_deployment is { } deployment && deployment.Lost(node))
        {
            Abandon(deployment);
        }

        Plan(immediate: true);
    }

    private void ScheduleRebalance() => Timers.StartSingleTimer(RebalanceTimer, PlanTick.Instance, _settings.RebalanceDelay);

    /// <summary>
    /// Decides whether the plan changes: a first plan (or adoption) when none is live, recovery at
    /// once when a worker of the live plan is lost, and a rebalance only on the delayed tick, once
    /// membership has been quiet for the rebalance delay.
    /// </summary>
    private void Plan(bool immediate)
    {
        if (_job is null || _phase == Phase.Settling)
        {
            return;
        }

        var workers = _workers.Eligible();
        if (workers.Count == 0)
        {
            return;
        }

        var live = workers.Select(w => w.Address).ToHashSet();
        Assignment target;
        PlanReason reason;
        if (_live is null)
        {
            if (TryAdopt(workers))
            {
                return;
            }

            target = _policy.Balanced(_job.Splits, workers);
            reason = PlanReason.InitialPlacement;
        }
        else if (_live.Target.Workers.Any(a => !live.Contains(a)))
        {
            target = _policy.Recover(_live.Target, workers);
            reason = PlanReason.Recovery;
        }
        else if (!immediate)
        {
            target = _policy.Balanced(_job.Splits, workers);
            if (target.SameAs(_live.Target))
            {
                return;
            }

            reason = PlanReason.Rebalance;
        }
        else
        {
            ScheduleRebalance();
            return;
        }

        if (_deployment is not null && _deployment.Target.SameAs(target))
        {
            return; // already on its way
        }

        StartDeployment(target, reason);
        if (reason == PlanReason.Recovery)
        {
            ScheduleRebalance(); // then move on to a better split for the workers that are left
        }
    }

    /// <summary>A supervisor that just started takes over a complete, consistently wired plan the workers report.</summary>
    private bool TryAdopt(IReadOnlyList<WorkerView> workers)
    {
        if (LivePlan.Adopt(workers) is not { } adopted)
        {
            return false;
        }

        _epoch = Math.Max(_epoch, adopted.Epoch);
        _live = adopted;
        Event($"adopted the running plan (epoch {adopted.Epoch}, {adopted.Target.Parts} stages) without redeploying");
        _job!.Ingest.Tell(adopted.Activation(_job.Splits, PlanReason.Adopted));
        ScheduleRebalance();
        if (_phase != Phase.Deploying)
        {
            Enter(Phase.Active);
        }

        return true;
    }

    private void StartDeployment(Assignment target, PlanReason reason)
    {
        var epoch = ++_epoch;
        var split = _job!.Splits.First(s => s.Parts == target.Parts);
        var deployment = new DeploymentTransaction(epoch, target, reason, Stopwatch.GetTimestamp());
        for (var index = 0; index < target.Parts; index++)
        {
            var node = target.Workers[index];
            if (_workers.StageOn(target.Parts, index, node) is { } existing)
            {
                deployment.Reuse(index, existing);
            }
            else
            {
                _workers.StatusOf(node)!.Agent.Tell(new DeployStage(_job.JobId, epoch, target.Parts, split.Stages[index], _job.ModelStore));
            }
        }

        _deployment = deployment;
        Enter(Phase.Deploying);
        Timers.StartSingleTimer(DeployTimer, new DeployTimeout(epoch), _settings.DeployTimeout);
        var nodes = string.Join(", ", target.Workers.Select(NodeAddress.Of));
        Event($"epoch {epoch} ({reason.Text()}): {target.Parts} stage(s) on {nodes}; deploying {deployment.Missing.Count}");
        Wire(deployment);
    }

    private Address RecordDeployed(StageDeployed deployed)
    {
        var node = _nodeOf(deployed.Stage);
        _workers.Hosts(deployed.Parts, deployed.Index, node, deployed.Stage);
        return node;
    }

    private void ReportDeployFailure(StageDeployFailed failed)
    {
        _log.Warning("Stage {0}/{1} failed to deploy: {2}", failed.Index, failed.Parts, failed.Reason);
        Event($"stage {failed.Index}/{failed.Parts} failed to deploy on {NodeAddress.Of(Sender.Path.Address)}: {failed.Reason}");
    }

    private void Wire(DeploymentTransaction deployment)
    {
        foreach (var (stage, wiring) in deployment.TakeWiring(_job!.Sink, _job.Ingest))
        {
            stage.Tell(wiring);
        }
    }

    private void GoLive(DeploymentTransaction deployment)
    {
        Timers.Cancel(DeployTimer);
        var live = _live = deployment.Activation();
        _deployment = null;
        Enter(Phase.Active);
        var took = Stopwatch.GetElapsedTime(deployment.Started).TotalMilliseconds;
        var sinceLoss = _lostAt is { } lost ? $", {Stopwatch.GetElapsedTime(lost).TotalMilliseconds:0} ms after the loss" : string.Empty;
        if (deployment.Reason == PlanReason.Recovery)
        {
            _lostAt = null;
        }

        Event($"epoch {deployment.Epoch} live ({deployment.Reason.Text()}) in {took:0} ms{sinceLoss}");
        PipelineMetrics.PlansActivated.Add(1, new KeyValuePair<string, object?>("reason", deployment.Reason.Text()));
        _job!.Ingest.Tell(live.Activation(_job.Splits, deployment.Reason));

        // The new plan is live: stop stage actors no plan uses any more.
        foreach (var (parts, index, node, stage) in _workers.Stages)
        {
            if (live.Uses(parts, index, stage))
            {
                continue;
            }

            _workers.AgentOf(node)?.Tell(new StopStage(parts, index));
            _workers.Forget(parts, index, node);
        }
    }

    /// <summary>The deployment ended without going live: its failures count against the workers, and the plan before it (if any) stays.</summary>
    private void Abandon(DeploymentTransaction deployment)
    {
        foreach (var node in deployment.Excluded)
        {
            if (_workers.FailedDeploy(node) is not null)
            {
                // Look again once the exclusion has run out: the worker may take stages by then.
                Timers.StartSingleTimer($"exclusion-{node}", PlanTick.Instance, _settings.Exclusion);
            }
        }

        _deployment = null;
        Enter(_live is null ? Phase.Idle : Phase.Active);
    }

    private void Event(string text)
    {
        _log.Info("supervisor: {0}", text);
        MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), "supervisor", text));
    }

    private sealed class PlanTick
    {
        public static readonly PlanTick Instance = new();
    }

    private sealed class SettleCheck
    {
        public static readonly SettleCheck Instance = new();
    }

    private sealed record DeployTimeout(long Epoch);
}
