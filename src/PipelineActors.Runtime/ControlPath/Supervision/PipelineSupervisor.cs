using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Membership;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;

namespace PipelineActors.Runtime.ControlPath.Supervision;

/// <summary>
/// The cluster singleton (coordinator role) that decides where stages run. It watches membership
/// and the workers' reports, deploys stages, wires each to its successor, and tells the ingest
/// which plan is live. Frames never pass through it: if it moves to another coordinator node,
/// frames keep flowing on the existing wiring while it rebuilds its view from the workers' reports.
/// </summary>
public sealed class PipelineSupervisor : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly IPlacementPolicy _policy;
    private readonly TimeSpan _rebalanceDelay;
    private readonly TimeSpan _deployTimeout;
    private readonly Dictionary<Address, Worker> _workers = [];
    private readonly Dictionary<(int Parts, int Index, Address Node), IActorRef> _registry = [];
    private PipelineJob? _job;
    private Active? _active;
    private Transition? _transition;
    private long _epoch;
    private bool _settled;
    private int _settleTicks;

    public PipelineSupervisor(IPlacementPolicy policy)
    {
        _policy = policy;
        var config = Context.System.Settings.Config;
        _rebalanceDelay = config.GetTimeSpan("pipeline.supervisor.rebalance-delay", TimeSpan.FromSeconds(1));
        _deployTimeout = config.GetTimeSpan("pipeline.supervisor.deploy-timeout", TimeSpan.FromSeconds(60));

        Receive<ClusterEvent.CurrentClusterState>(state =>
        {
            foreach (var member in state.Members.Where(m => m.HasRole(Roles.Worker) && m.Status == MemberStatus.Up))
            {
                WorkerFor(member.Address).Up = true;
            }

            foreach (var member in state.Unreachable)
            {
                if (_workers.TryGetValue(member.Address, out var w))
                {
                    w.Reachable = false;
                }
            }
        });
        Receive<ClusterEvent.MemberUp>(up =>
        {
            if (up.Member.HasRole(Roles.Worker))
            {
                WorkerFor(up.Member.Address).Up = true;
                ScheduleRebalance();
            }
        });
        Receive<ClusterEvent.UnreachableMember>(u => Lost(u.Member.Address, LossKind.Unreachable));
        Receive<ClusterEvent.MemberLeft>(l => Lost(l.Member.Address, LossKind.Leaving));
        Receive<ClusterEvent.MemberExited>(e => Lost(e.Member.Address, LossKind.Exited));
        Receive<ClusterEvent.MemberRemoved>(r =>
        {
            Lost(r.Member.Address, LossKind.Removed);
            _workers.Remove(r.Member.Address);
        });
        Receive<ClusterEvent.ReachableMember>(r =>
        {
            if (_workers.TryGetValue(r.Member.Address, out var w) && !w.Gone)
            {
                w.Reachable = true;
                ScheduleRebalance();
            }
        });
        Receive<ClusterEvent.IMemberEvent>(_ => { });

        Receive<WorkerStatus>(OnWorkerStatus);
        Receive<PipelineJob>(job =>
        {
            Sender.Tell(new JobAccepted(job.JobId));
            if (_job?.JobId == job.JobId)
            {
                _job = job; // refs may be newer
                return;
            }

            _job = job;
            Event($"job {job.JobId}: {job.Splits.Count} splits prepared");
            foreach (var worker in _workers.Values.Where(w => w.Status is not null))
            {
                Prefetch(worker);
            }

            Plan(immediate: true);
        });
        Receive<StageDeployed>(OnDeployed);
        Receive<StageDeployFailed>(failed =>
        {
            _log.Warning("Stage {0}/{1} failed to deploy: {2}", failed.Index, failed.Parts, failed.Reason);
            Event($"stage {failed.Index}/{failed.Parts} failed to deploy on {NodeAddress.Of(Sender.Path.Address)}: {failed.Reason}");
            if (_transition?.Epoch == failed.Epoch)
            {
                if (_workers.TryGetValue(NodeOf(Sender), out var w))
                {
                    w.FailedDeploys++;
                }

                _transition = null;
                Plan(immediate: true);
            }
        });
        Receive<StageWired>(OnWired);
        Receive<PlanTick>(_ => Plan(immediate: false));
        Receive<Settled>(_ =>
        {
            // Settled once every worker that is Up has reported (or after a few seconds anyway).
            _settleTicks++;
            var silent = _workers.Values.Count(w => w.Up && w.Reachable && !w.Gone && w.Status is null);
            if (silent > 0 && _settleTicks < 20)
            {
                return;
            }

            Timers.Cancel("settle");
            _settled = true;
            Plan(immediate: true);
        });
        Receive<DeployTimeout>(timeout =>
        {
            if (_transition?.Epoch != timeout.Epoch)
            {
                return;
            }

            foreach (var index in Enumerable.Range(0, _transition.Target.Parts).Where(i => !_transition.Stages.ContainsKey(i)))
            {
                if (_workers.TryGetValue(_transition.Target.Workers[index], out var slow))
                {
                    slow.FailedDeploys++;
                }
            }

            Event($"deployment for epoch {timeout.Epoch} timed out; planning again");
            _transition = null;
            Plan(immediate: true);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IPlacementPolicy? policy = null) =>
        Akka.Actor.Props.Create(() => new PipelineSupervisor(policy ?? new BalancedSplitPolicy()));

    protected override void PreStart()
    {
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));

        // A new supervisor (first start, or moved after its node died) listens to the workers'
        // reports before it decides anything, so it adopts the running plan instead of redeploying.
        Timers.StartPeriodicTimer("settle", Settled.Instance, TimeSpan.FromMilliseconds(1000), TimeSpan.FromMilliseconds(250));
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private Worker WorkerFor(Address address)
    {
        if (!_workers.TryGetValue(address, out var worker))
        {
            _workers[address] = worker = new Worker(address);
        }

        return worker;
    }

    private void OnWorkerStatus(WorkerStatus status)
    {
        // A worker on this very node reports with a local reference, whose address has no host.
        var address = NodeOf(status.Agent);
        var worker = WorkerFor(address);
        if (worker.Gone)
        {
            return;
        }

        var first = worker.Status is null;
        worker.Status = status;
        foreach (var hosted in status.Hosted)
        {
            _registry[(hosted.Parts, hosted.Index, address)] = hosted.Stage;
            _epoch = Math.Max(_epoch, hosted.WiredEpoch);
        }

        foreach (var key in _registry.Keys.Where(k => k.Node == address && !status.Hosted.Any(h => h.Parts == k.Parts && h.Index == k.Index)).ToList())
        {
            _registry.Remove(key);
        }

        if (first)
        {
            Event($"worker {NodeAddress.Of(address)} ready: {status.Cores} cores, {status.IntraOpThreads} intra-op thread(s), {status.MemoryBytes / (1 << 20)} MiB");
            if (_job is not null)
            {
                Prefetch(worker);
            }

            ScheduleRebalance();
        }
    }

    private void Prefetch(Worker worker)
    {
        var files = _job!.Splits.SelectMany(s => s.Stages).Select(s => s.File).DistinctBy(f => f.Sha256).Where(f => !worker.Status!.CachedFiles.Contains(f.Sha256)).ToList();
        if (files.Count > 0)
        {
            worker.Status!.Agent.Tell(new PrefetchFiles(_job.JobId, files, _job.ModelStore));
        }
    }

    private void Lost(Address address, LossKind why)
    {
        if (!_workers.TryGetValue(address, out var worker))
        {
            return;
        }

        if (!why.IsFinal())
        {
            worker.Reachable = false;
        }
        else
        {
            worker.Gone = true;
        }

        foreach (var key in _registry.Keys.Where(k => k.Node == address).ToList())
        {
            _registry.Remove(key);
        }

        var hosting = _active?.Target.Workers.Contains(address) == true || _transition?.Target.Workers.Contains(address) == true;
        Event($"worker {NodeAddress.Of(address)} {why.Text()}{(hosting ? "; moving its stages" : string.Empty)}");
        if (hosting)
        {
            _lostAt ??= Stopwatch.GetTimestamp();
            if (_transition?.Target.Workers.Contains(address) == true)
            {
                _transition = null;
            }

            Plan(immediate: true);
        }
    }

    private long? _lostAt;

    private void ScheduleRebalance() => Timers.StartSingleTimer("rebalance", PlanTick.Instance, _rebalanceDelay);

    private List<WorkerView> Available() => _workers.Values
        .Where(w => w.Up && w.Reachable && !w.Gone && w.Status is not null && w.FailedDeploys < 3)
        .OrderBy(w => w.Address.ToString(), StringComparer.Ordinal)
        .Select(w => new WorkerView(w.Address, w.Status!, _registry.Keys.Where(k => k.Node == w.Address).Select(k => (k.Parts, k.Index)).ToHashSet()))
        .ToList();

    private void Plan(bool immediate)
    {
        if (_job is null || !_settled)
        {
            return;
        }

        var workers = Available();
        if (workers.Count == 0)
        {
            return;
        }

        var live = workers.Select(w => w.Address).ToHashSet();
        Assignment target;
        PlanReason reason;
        if (_active is null)
        {
            if (TryAdopt(workers))
            {
                return;
            }

            target = _policy.Balanced(_job.Splits, workers);
            reason = PlanReason.InitialPlacement;
        }
        else if (_active.Target.Workers.Any(a => !live.Contains(a)))
        {
            target = _policy.Recover(_active.Target, workers);
            reason = PlanReason.Recovery;
        }
        else if (!immediate)
        {
            target = _policy.Balanced(_job.Splits, workers);
            if (target.SameAs(_active.Target))
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

        if (_transition is not null && _transition.Target.SameAs(target))
        {
            return; // already on its way
        }

        StartTransition(target, reason);
        if (reason == PlanReason.Recovery)
        {
            ScheduleRebalance(); // then move on to a better split for the workers that are left
        }
    }

    /// <summary>A supervisor that just started takes over a complete, consistently wired plan the workers report.</summary>
    private bool TryAdopt(List<WorkerView> workers)
    {
        var candidates = workers.SelectMany(w => w.Status.Hosted.Select(h => (Worker: w, Hosted: h)))
            .Where(x => x.Hosted.WiredEpoch >= 0)
            .GroupBy(x => (x.Hosted.Parts, x.Hosted.WiredEpoch))
            .OrderByDescending(g => g.Key.WiredEpoch);
        foreach (var group in candidates)
        {
            var parts = group.Key.Parts;
            var byIndex = group.GroupBy(x => x.Hosted.Index).ToDictionary(g => g.Key, g => g.First());
            if (byIndex.Count != parts || Enumerable.Range(0, parts).Any(i => !byIndex.ContainsKey(i)))
            {
                continue;
            }

            _epoch = Math.Max(_epoch, group.Key.WiredEpoch);
            var target = new Assignment(parts, Enumerable.Range(0, parts).Select(i => byIndex[i].Worker.Address).ToList());
            var stages = Enumerable.Range(0, parts).ToDictionary(i => i, i => byIndex[i].Hosted.Stage);
            _active = new Active(group.Key.WiredEpoch, target, stages);
            Event($"adopted the running plan (epoch {group.Key.WiredEpoch}, {parts} stages) without redeploying");
            _job!.Ingest.Tell(Activation(_active, PlanReason.Adopted));
            ScheduleRebalance();
            return true;
        }

        return false;
    }

    private void StartTransition(Assignment target, PlanReason reason)
    {
        var epoch = ++_epoch;
        var split = _job!.Splits.First(s => s.Parts == target.Parts);
        _transition = new Transition(epoch, target, reason, Stopwatch.GetTimestamp());
        for (var index = 0; index < target.Parts; index++)
        {
            var node = target.Workers[index];
            if (_registry.TryGetValue((target.Parts, index, node), out var existing))
            {
                _transition.Stages[index] = existing;
            }
            else
            {
                _workers[node].Status!.Agent.Tell(new DeployStage(_job.JobId, epoch, target.Parts, split.Stages[index], _job.ModelStore));
            }
        }

        Timers.StartSingleTimer("deploy-timeout", new DeployTimeout(epoch), _deployTimeout);
        Event($"epoch {epoch} ({reason.Text()}): {target.Parts} stage(s) on {string.Join(", ", target.Workers.Select(NodeAddress.Of))}; deploying {target.Parts - _transition.Stages.Count}");
        WireIfDeployed();
    }

    private void OnDeployed(StageDeployed deployed)
    {
        var node = NodeOf(deployed.Stage);
        _registry[(deployed.Parts, deployed.Index, node)] = deployed.Stage;
        if (_transition is { } t && t.Target.Parts == deployed.Parts && t.Target.Workers[deployed.Index] == node)
        {
            t.Stages[deployed.Index] = deployed.Stage;
            WireIfDeployed();
        }
    }

    private void WireIfDeployed()
    {
        var t = _transition!;
        if (t.Stages.Count < t.Target.Parts || t.Wiring)
        {
            return;
        }

        t.Wiring = true;
        for (var index = 0; index < t.Target.Parts; index++)
        {
            IReadOnlyList<IActorRef> successors = index + 1 < t.Target.Parts ? [t.Stages[index + 1]] : [_job!.Sink];
            t.Stages[index].Tell(new WireStage(t.Epoch, successors, _job!.Ingest));
        }
    }

    private void OnWired(StageWired wired)
    {
        if (_transition is not { } t || wired.Epoch != t.Epoch)
        {
            return;
        }

        t.Wired.Add(wired.Index);
        if (t.Wired.Count < t.Target.Parts)
        {
            return;
        }

        Timers.Cancel("deploy-timeout");
        _active = new Active(t.Epoch, t.Target, new Dictionary<int, IActorRef>(t.Stages));
        _transition = null;
        var took = Stopwatch.GetElapsedTime(t.Started).TotalMilliseconds;
        var sinceLoss = _lostAt is { } lost ? $", {Stopwatch.GetElapsedTime(lost).TotalMilliseconds:0} ms after the loss" : string.Empty;
        if (t.Reason == PlanReason.Recovery)
        {
            _lostAt = null;
        }

        Event($"epoch {t.Epoch} live ({t.Reason.Text()}) in {took:0} ms{sinceLoss}");
        PipelineMetrics.PlansActivated.Add(1, new KeyValuePair<string, object?>("reason", t.Reason.Text()));
        _job!.Ingest.Tell(Activation(_active, t.Reason));

        // The new plan is live: stop stage actors no plan uses any more.
        foreach (var ((parts, index, node), stage) in _registry.ToList())
        {
            if (_active.Stages.TryGetValue(index, out var live) && live.Equals(stage) && parts == _active.Target.Parts)
            {
                continue;
            }

            if (_workers.TryGetValue(node, out var w) && w.Status is not null && !w.Gone)
            {
                w.Status.Agent.Tell(new StopStage(parts, index));
            }

            _registry.Remove((parts, index, node));
        }

    }

    private PlanActivated Activation(Active active, PlanReason reason)
    {
        var split = _job!.Splits.First(s => s.Parts == active.Target.Parts);
        var placements = Enumerable.Range(0, active.Target.Parts)
            .Select(i => new StagePlacement(i, active.Stages[i], NodeAddress.Of(active.Target.Workers[i]), split.Stages[i].Layers, split.Stages[i].Flops))
            .ToList();
        return new PlanActivated(active.Epoch, active.Target.Parts, [active.Stages[0]], placements, reason);
    }

    private static Address NodeOf(IActorRef actor) => NodeAddress.NodeOf(Context.System, actor);

    private void Event(string text)
    {
        _log.Info("supervisor: {0}", text);
        MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), "supervisor", text));
    }

    private sealed class Worker(Address address)
    {
        public Address Address { get; } = address;

        public WorkerStatus? Status { get; set; }

        public bool Up { get; set; }

        public bool Reachable { get; set; } = true;

        public bool Gone { get; set; }

        public int FailedDeploys { get; set; }
    }

    private sealed record Active(long Epoch, Assignment Target, Dictionary<int, IActorRef> Stages);

    private sealed class Transition(long epoch, Assignment target, PlanReason reason, long started)
    {
        public long Epoch { get; } = epoch;

        public Assignment Target { get; } = target;

        public PlanReason Reason { get; } = reason;

        public long Started { get; } = started;

        public Dictionary<int, IActorRef> Stages { get; } = [];

        public HashSet<int> Wired { get; } = [];

        public bool Wiring { get; set; }
    }

    private sealed class PlanTick
    {
        public static readonly PlanTick Instance = new();
    }

    private sealed class Settled
    {
        public static readonly Settled Instance = new();
    }

    private sealed record DeployTimeout(long Epoch);
}
