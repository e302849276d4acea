using System.Diagnostics;
using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Placement;

namespace PipelineActors.Runtime.ControlPath.Membership;

/// <summary>What a worker's report did to the registry.</summary>
public enum ReportSeen
{
    /// <summary>The worker has left or been removed; its report changes nothing.</summary>
    Ignored,

    /// <summary>The worker's first report: it is ready to host stages.</summary>
    First,

    /// <summary>A later report: the registry now holds its latest view.</summary>
    Again,
}

/// <summary>
/// The supervisor's view of the workers (pure, no actor): which are up, unreachable or gone, their
/// latest reports, the stage actors each node hosts, and which workers have failed too many deploys
/// to be given another stage for now.
/// </summary>
/// <param name="maxFailedDeploys">Failed or timed-out deploys after which a worker is excluded.</param>
/// <param name="exclusion">How long an exclusion lasts (null: five minutes); then the worker gets a fresh count,
/// since a fetch that was slow or a disk that was full once may be fine now.</param>
/// <param name="clock">Monotonic time (null: a stopwatch); specs move it by hand.</param>
public sealed class WorkerRegistry(int maxFailedDeploys = 3, TimeSpan? exclusion = null, Func<TimeSpan>? clock = null)
{
    private readonly TimeSpan _exclusion = exclusion ?? TimeSpan.FromMinutes(5);
    private readonly Func<TimeSpan> _now = clock ?? StopwatchClock();
    private readonly Dictionary<Address, Worker> _workers = [];
    private readonly Dictionary<(int Parts, int Index, Address Node), IActorRef> _stages = [];

    /// <summary>Workers that are up and reachable but have not reported yet (a new supervisor waits for them).</summary>
    public int Silent => _workers.Values.Count(w => w.Up && w.Reachable && !w.Gone && w.Status is null);

    /// <summary>The latest report of every worker that has sent one (gone ones included until removed).</summary>
    public IEnumerable<WorkerStatus> Reports => _workers.Values.Where(w => w.Status is not null).Select(w => w.Status!);

    /// <summary>Every stage actor known to run, by split, index and node.</summary>
    public IReadOnlyList<(int Parts, int Index, Address Node, IActorRef Stage)> Stages =>
        _stages.Select(s => (s.Key.Parts, s.Key.Index, s.Key.Node, s.Value)).ToList();

    /// <summary>A worker member is up.</summary>
    public void Up(Address node) => WorkerFor(node).Up = true;

    /// <summary>A known worker is unreachable in a membership snapshot (its stages are kept: it may come back).</summary>
    public void Unreachable(Address node)
    {
        if (_workers.TryGetValue(node, out var worker))
        {
            worker.Reachable = false;
        }
    }

    /// <summary>A worker is reachable again; false when it is unknown or gone (nothing to plan for).</summary>
    public bool Reachable(Address node)
    {
        if (!_workers.TryGetValue(node, out var worker) || worker.Gone)
        {
            return false;
        }

        worker.Reachable = true;
        return true;
    }

    /// <summary>A worker was lost: its stages are forgotten; false when it was never known.</summary>
    public bool Lose(Address node, LossKind kind)
    {
        if (!_workers.TryGetValue(node, out var worker))
        {
            return false;
        }

        if (kind.IsFinal())
        {
            worker.Gone = true;
        }
        else
        {
            worker.Reachable = false;
        }

        foreach (var key in _stages.Keys.Where(k => k.Node == node).ToList())
        {
            _stages.Remove(key);
        }

        return true;
    }

    /// <summary>The member was removed from the cluster: nothing of it is kept.</summary>
    public void Remove(Address node) => _workers.Remove(node);

    /// <summary>A worker's report: its offer and the stages it hosts replace what was known of that node.</summary>
    public ReportSeen Report(Address node, WorkerStatus status)
    {
        var worker = WorkerFor(node);
        if (worker.Gone)
        {
            return ReportSeen.Ignored;
        }

        var first = worker.Status is null;
        worker.Status = status;
        foreach (var hosted in status.Hosted)
        {
            _stages[(hosted.Parts, hosted.Index, node)] = hosted.Stage;
        }

        foreach (var key in _stages.Keys.Where(k => k.Node == node && !status.Hosted.Any(h => h.Parts == k.Parts && h.Index == k.Index)).ToList())
        {
            _stages.Remove(key);
        }

        return first ? ReportSeen.First : ReportSeen.Again;
    }

    /// <summary>
    /// A deploy on this worker failed or timed out; after enough of them it gets no more stages until the exclusion
    /// runs out. Returns when the exclusion ends if this failure started one (null otherwise), so the caller can plan again then.
    /// </summary>
    public TimeSpan? FailedDeploy(Address node)
    {
        if (!_workers.TryGetValue(node, out var worker) || IsExcluded(worker))
        {
            return null;
        }

        if (++worker.FailedDeploys < maxFailedDeploys)
        {
            return null;
        }

        worker.ExcludedUntil = _now() + _exclusion;
        return worker.ExcludedUntil;
    }

    /// <summary>Whether this worker has failed so many deploys that it is not placed on now.</summary>
    public bool Excluded(Address node) => _workers.TryGetValue(node, out var worker) && IsExcluded(worker);

    /// <summary>The workers stages may be placed on: up, reachable, reported and not excluded, ordered by address.</summary>
    public IReadOnlyList<WorkerView> Eligible() => _workers.Values
        .Where(w => w.Up && w.Reachable && !w.Gone && w.Status is not null && !IsExcluded(w))
        .OrderBy(w => w.Address.ToString(), StringComparer.Ordinal)
        .Select(w => new WorkerView(w.Address, w.Status!, _stages.Keys.Where(k => k.Node == w.Address).Select(k => (k.Parts, k.Index)).ToHashSet()))
        .ToList();

    /// <summary>The latest report of a worker, or null if it has not reported.</summary>
    public WorkerStatus? StatusOf(Address node) => _workers.TryGetValue(node, out var worker) ? worker.Status : null;

    /// <summary>The agent to tell a worker something, or null when it has not reported or is gone.</summary>
    public IActorRef? AgentOf(Address node) =>
        _workers.TryGetValue(node, out var worker) && worker.Status is not null && !worker.Gone ? worker.Status.Agent : null;

    /// <summary>A stage actor runs on a node (reported deployed, or in the node's report).</summary>
    public void Hosts(int parts, int index, Address node, IActorRef stage) => _stages[(parts, index, node)] = stage;

    /// <summary>The stage actor for this split and index on this node, if one runs there.</summary>
    public IActorRef? StageOn(int parts, int index, Address node) => _stages.GetValueOrDefault((parts, index, node));

    /// <summary>The stage was told to stop.</summary>
    public void Forget(int parts, int index, Address node) => _stages.Remove((parts, index, node));

    /// <summary>An exclusion that has run out is cleared when next looked at: the worker starts a fresh count.</summary>
    private bool IsExcluded(Worker worker)
    {
        if (worker.ExcludedUntil is not { } until)
        {
            return false;
        }

        if (_now() < until)
        {
            return true;
        }

        worker.ExcludedUntil = null;
        worker.FailedDeploys = 0;
        return false;
    }

    private static Func<TimeSpan> StopwatchClock()
    {
        var watch = Stopwatch.StartNew();
        return () => watch.Elapsed;
    }

    private Worker WorkerFor(Address node)
    {
        if (!_workers.TryGetValue(node, out var worker))
        {
            _workers[node] = worker = new Worker(node);
        }

        return worker;
    }

    private sealed class Worker(Address address)
    {
        public Address Address { get; } = address;

        public WorkerStatus? Status { get; set; }

        public bool Up { get; set; }

        public bool Reachable { get; set; } = true;

        public bool Gone { get; set; }

        public int FailedDeploys { get; set; }

        /// <summary>Set once the worker has failed the maximum number of deploys: it gets no stage before then.</summary>
        public TimeSpan? ExcludedUntil { get; set; }
    }
}
