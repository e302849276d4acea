using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Membership;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.ControlPath.Supervision;

/// <summary>
/// Decides where one job's stages run: a child of the <see cref="PipelineSupervisor"/> singleton,
/// made when the job's ingest registers and stopped when the job ends. It hears membership and the
/// workers' reports (only this job's stages) from its parent, deploys stages, wires each to its
/// successor, and tells the ingest which plan is live. Frames never pass through it: if the
/// singleton moves to another coordinator node, frames keep flowing on the existing wiring while
/// the new one rebuilds its view from the workers' reports.
/// </summary>
/// <remarks>
/// Four states: <see cref="Phase.Settling"/> (listening to reports, deciding nothing),
/// <see cref="Phase.Idle"/> (no plan live), <see cref="Phase.Deploying"/> (a
/// <see cref="DeploymentTransaction"/> in flight, the old plan still live if there is one) and
/// <see cref="Phase.Active"/>. What the workers are is a <see cref="WorkerRegistry"/>.
/// </remarks>
public sealed class JobSupervisor : ReceiveActor, IWithTimers
{
    private const string SettleTimer = "settle";
    private const string RebalanceTimer = "rebalance";
    private const string DeployTimer = "deploy-timeout";
    private const string ActivationTimer = "activation";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IPlacementPolicy _policy;
    private readonly SupervisorSettings _settings;
    private readonly Func<IActorRef, Address> _nodeOf;
    private readonly WorkerRegistry _workers;
    private Phase _phase;
    private PipelineJob? _job;
    private LivePlan? _live;
    private PlanActivated? _unacknowledged;
    private DeploymentTransaction? _deployment;
    private long _epoch;
    private int _settleChecks;
    private long? _lostAt;
    private readonly Dictionary<Address, int> _missedReports = [];
    private bool _freshRun;

    /// <param name="nodeOf">The node an actor lives on; specs map their probes to worker addresses.</param>
    /// <remarks>Public because Akka creates actors through public constructors only.</remarks>
    public JobSupervisor(IPlacementPolicy policy, SupervisorSettings settings, Func<IActorRef, Address> nodeOf)
    {
        _policy = policy;
        _settings = settings;
        _nodeOf = nodeOf;
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

    internal static Props Props(IPlacementPolicy policy, SupervisorSettings settings, Func<IActorRef, Address> nodeOf) =>
        Akka.Actor.Props.Create(() => new JobSupervisor(policy, settings, nodeOf));

    protected override void PreStart() =>
        // A new supervisor (first start, or moved after its node died) listens to the workers'
        // reports before it decides anything, so it adopts the running plan instead of redeploying.
        Timers.StartPeriodicTimer(SettleTimer, SettleCheck.Instance, _settings.SettleFirstCheck, _settings.SettleInterval);

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
        Receive<WorkerMembership>(OnMembership);
        Receive<WorkerStatus>(OnWorkerStatus);
        Receive<PipelineJob>(OnJob);
        Receive<PlanAcknowledged>(acknowledged =>
        {
            if (FromIngestNode(acknowledged))
            {
                OnPlanAcknowledged(acknowledged);
            }
        });
        Receive<ResendActivation>(_ => ResendActivationNow());
        Receive<JobEnded>(ended =>
        {
            if (FromIngestNode(ended))
            {
                OnJobEnded();
            }
        });

        // The stage runs there whatever became of its deployment: kept so a later plan reuses or stops it.
        Receive<StageDeployed>(deployed => RecordDeployed(deployed));
        Receive<StageDeployFailed>(ReportDeployFailure);
        Receive<StageWired>(_ => { });
        Receive<DeployTimeout>(_ => { });
        Receive<SettleCheck>(_ => { });
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
        status = WithCurrentCutsOnly(status);
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

        CheckLiveStagesOf(node, status);
    }

    /// <summary>
    /// The report without stages of files the job's cuts no longer have (a run before it cut the model otherwise): those are
    /// stopped, and never adopted, reused or counted as the live plan's.
    /// </summary>
    private WorkerStatus WithCurrentCutsOnly(WorkerStatus status)
    {
        if (_job is null)
        {
            return status;
        }

        var files = _job.Splits.SelectMany(s => s.Stages).Select(s => s.File.Sha256).ToHashSet(StringComparer.Ordinal);
        var foreign = status.Hosted.Where(h => h.Sha256.Length > 0 && !files.Contains(h.Sha256)).ToList();
        foreach (var stage in foreign)
        {
            status.Agent.Tell(new StopStage(stage.JobId, stage.Parts, stage.Index, stage.Sha256));
        }

        return foreign.Count == 0 ? status : status with { Hosted = status.Hosted.Except(foreign).ToList() };
    }

    /// <summary>
    /// A stage of the live plan that its worker no longer reports has stopped on an Up node (it broke, review R2): it is
    /// redeployed there or elsewhere. Two reports in a row must miss it, since a report may overtake the stage's deployment.
    /// </summary>
    private void CheckLiveStagesOf(Address node, WorkerStatus status)
    {
        if (_live is not { } live || _phase != Phase.Active)
        {
            return;
        }

        var missing = Enumerable.Range(0, live.Target.Parts)
            .Where(i => live.Target.Workers[i] == node
                && !status.Hosted.Any(h => h.Parts == live.Target.Parts && h.Index == i && h.Stage.Equals(live.Stages[i])))
            .ToList();
        if (missing.Count == 0)
        {
            _missedReports.Remove(node);
            return;
        }

        var misses = _missedReports[node] = _missedReports.GetValueOrDefault(node) + 1;
        if (misses < 2)
        {
            return;
        }

        _missedReports.Remove(node);
        foreach (var index in missing)
        {
            _workers.Forget(live.Target.Parts, index, node);
        }

        var stages = string.Join(", ", missing.Select(i => $"{i}/{live.Target.Parts}"));
        Event($"stage(s) {stages} stopped on {NodeAddress.Of(node)}, which is up; redeploying");
        _lostAt ??= Stopwatch.GetTimestamp();
        StartDeployment(live.Target, PlanReason.Recovery);
    }

    private void OnJob(PipelineJob job)
    {
        Sender.Tell(new JobAccepted(job.JobId));

        // Epochs only grow, across supervisors too: the ingest says the newest it has seen (R7).
        _epoch = Math.Max(_epoch, job.LastEpoch);
        if (_job is not null)
        {
            var previous = _job;
            _job = job;
            if (job.Ingest.Equals(previous.Ingest) && job.Sink.Equals(previous.Sink))
            {
                if (_live is not null)
                {
                    // An ingest that registers again may have missed the activation: it hears it again.
                    SendActivation(_live.Activation(_job.JobId, _job.Splits, PlanReason.Adopted));
                }

                return;
            }

            NewRun(previous);
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

    /// <summary>
    /// The job runs again from another ingest (its node died and the job moved, or it restarted): stages of the same cuts
    /// are wired to the new ingest and sink; stages of other cuts (the new run cut the model anew) are replaced.
    /// </summary>
    private void NewRun(PipelineJob previous)
    {
        var sameCuts = previous.Splits.SelectMany(s => s.Stages).Select(s => s.File.Sha256)
            .SequenceEqual(_job!.Splits.SelectMany(s => s.Stages).Select(s => s.File.Sha256));
        Event($"job {_job.JobId}: a new run registered ({(sameCuts ? "same cuts: rewiring its stages" : "new cuts: replacing its stages")})");
        _lostAt ??= Stopwatch.GetTimestamp();
        if (_deployment is { } deployment)
        {
            Abandon(deployment);
        }

        if (sameCuts && _live is { } live)
        {
            StartDeployment(live.Target, PlanReason.Recovery);
            return;
        }

        foreach (var (parts, index, node, _) in _workers.Stages.ToList())
        {
            _workers.AgentOf(node)?.Tell(new StopStage(_job.JobId, parts, index));
            _workers.Forget(parts, index, node);
        }

        _live = null;
        _unacknowledged = null;
        Timers.Cancel(ActivationTimer);
        _freshRun = true; // the old stages may linger in reports for a second: never adopted
        Enter(Phase.Idle);
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
            if (!_freshRun && TryAdopt(workers))
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
        SendActivation(adopted.Activation(_job!.JobId, _job.Splits, PlanReason.Adopted));
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
        foreach (var (stage, wiring) in deployment.TakeWiring(_job!.JobId, _job.Sink, _job.Ingest))
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
        SendActivation(live.Activation(_job!.JobId, _job.Splits, deployment.Reason));

        // The new plan is live: stop stage actors no plan uses any more.
        foreach (var (parts, index, node, stage) in _workers.Stages)
        {
            if (live.Uses(parts, index, stage))
            {
                continue;
            }

            _workers.AgentOf(node)?.Tell(new StopStage(_job.JobId, parts, index));
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

    /// <summary>
    /// Tells the ingest the live plan, and again every second until it acknowledges that epoch (R8): an activation lost
    /// across a remote association would otherwise leave the ingest sending to stages the supervisor has just stopped.
    /// </summary>
    private void SendActivation(PlanActivated activation)
    {
        _unacknowledged = activation;
        _job!.Ingest.Tell(activation);
        Timers.StartPeriodicTimer(ActivationTimer, ResendActivation.Instance, _settings.ActivationResend);
    }

    private void ResendActivationNow()
    {
        if (_unacknowledged is { } activation)
        {
            _job!.Ingest.Tell(activation);
        }
    }

    /// <summary>Acknowledgements and the job's end come from its ingest's node only: a peer cannot end a job or silence its activation.</summary>
    private bool FromIngestNode(object message)
    {
        if (_job is { } job && Sender.Path.Address.Equals(job.Ingest.Path.Address) && !Sender.IsNobody())
        {
            return true;
        }

        MessageGuard.Refuse(_log, "job-message-not-from-ingest", $"supervisor: {message} from {Sender.Path}, not the job's ingest node");
        return false;
    }

    private void OnPlanAcknowledged(PlanAcknowledged acknowledged)
    {
        if (_unacknowledged is { } activation && acknowledged.Epoch >= activation.Epoch)
        {
            _unacknowledged = null;
            Timers.Cancel(ActivationTimer);
        }
    }

    /// <summary>The job's source is done or it was stopped: every stage of the job goes, and so does this supervisor.</summary>
    private void OnJobEnded()
    {
        var stopped = 0;
        foreach (var (parts, index, node, _) in _workers.Stages.ToList())
        {
            _workers.AgentOf(node)?.Tell(new StopStage(_job!.JobId, parts, index));
            _workers.Forget(parts, index, node);
            stopped++;
        }

        Event($"job {_job?.JobId} ended; stopped {stopped} stage(s)");
        Context.Stop(Self);
    }

    private void Event(string text)
    {
        _log.Info("supervisor: {0}", text);
        MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), "supervisor", text, _job?.JobId ?? string.Empty));
    }

    private sealed class PlanTick
    {
        public static readonly PlanTick Instance = new();
    }

    private sealed class SettleCheck
    {
        public static readonly SettleCheck Instance = new();
    }

    private sealed class ResendActivation
    {
        public static readonly ResendActivation Instance = new();
    }

    private sealed record DeployTimeout(long Epoch);
}
