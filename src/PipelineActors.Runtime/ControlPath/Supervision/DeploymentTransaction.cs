using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Placement;

namespace PipelineActors.Runtime.ControlPath.Supervision;

/// <summary>Where a deployment stands.</summary>
public enum DeploymentOutcome
{
    /// <summary>Stages are being deployed or wired.</summary>
    Pending,

    /// <summary>Every stage confirmed its wiring: the plan can go live.</summary>
    Activate,

    /// <summary>A stage failed to deploy or the deployment timed out: plan again, counting it against the workers in
    /// <see cref="DeploymentTransaction.Excluded"/>.</summary>
    RetryElsewhere,

    /// <summary>A worker of the target was lost: plan again from the new membership.</summary>
    Abort,
}

/// <summary>
/// One plan change as a transaction (pure, no actor): the stages the target lacks are deployed,
/// all of them are wired once every one is up, and the plan may go live when each confirms its
/// wiring for <see cref="Epoch"/>. A failure, a timeout or a lost worker ends it for good.
/// </summary>
public sealed class DeploymentTransaction(long epoch, Assignment target, PlanReason reason, long startedTicks)
{
    private readonly Dictionary<int, IActorRef> _stages = [];
    private readonly HashSet<int> _wired = [];
    private readonly List<Address> _excluded = [];

    public long Epoch { get; } = epoch;

    public Assignment Target { get; } = target;

    public PlanReason Reason { get; } = reason;

    /// <summary>When it started (<see cref="System.Diagnostics.Stopwatch"/> ticks).</summary>
    public long Started { get; } = startedTicks;

    public DeploymentOutcome Outcome { get; private set; }

    /// <summary>The stage actors that are up, by index.</summary>
    public IReadOnlyDictionary<int, IActorRef> Stages => _stages;

    /// <summary>The indices still waiting for a deployed stage.</summary>
    public IReadOnlyList<int> Missing => Enumerable.Range(0, Target.Parts).Where(i => !_stages.ContainsKey(i)).ToList();

    /// <summary>Whether the wiring has been sent (it is sent once).</summary>
    public bool Wiring { get; private set; }

    /// <summary>The workers to count a failed deploy against, once the outcome is <see cref="DeploymentOutcome.RetryElsewhere"/>.</summary>
    public IReadOnlyList<Address> Excluded => _excluded;

    /// <summary>Whether this worker hosts a stage of the target.</summary>
    public bool Involves(Address node) => Target.Workers.Contains(node);

    /// <summary>A stage that already runs where the target wants it is used as it is, not deployed again.</summary>
    public void Reuse(int index, IActorRef stage) => _stages[index] = stage;

    /// <summary>
    /// A stage reported deployed. It counts when the target wants this index of this split on this
    /// node, whatever epoch it was deployed for: the same stage on the same node serves any plan.
    /// </summary>
    public bool Deployed(int parts, int index, Address node, IActorRef stage)
    {
        if (Outcome != DeploymentOutcome.Pending || parts != Target.Parts || index < 0 || index >= parts || Target.Workers[index] != node)
        {
            return false;
        }

        _stages[index] = stage;
        return true;
    }

    /// <summary>
    /// Once every stage is up, the wiring to send (each stage to its successor, the last to the
    /// sink), and never again; empty before that.
    /// </summary>
    public IReadOnlyList<(IActorRef Stage, WireStage Wiring)> TakeWiring(string jobId, IActorRef sink, IActorRef ingest)
    {
        if (Outcome != DeploymentOutcome.Pending || Wiring || _stages.Count < Target.Parts)
        {
            return [];
        }

        Wiring = true;
        return Enumerable.Range(0, Target.Parts)
            .Select(i => (_stages[i], new WireStage(jobId, Epoch, [i + 1 < Target.Parts ? _stages[i + 1] : sink], ingest)))
            .ToList();
    }

    /// <summary>A stage confirmed its wiring; true when it was the last one (the outcome is then <see cref="DeploymentOutcome.Activate"/>).</summary>
    public bool Wired(long epoch, int index)
    {
        if (Outcome != DeploymentOutcome.Pending || epoch != Epoch || !Wiring)
        {
            return false;
        }

        _wired.Add(index);
        if (_wired.Count < Target.Parts)
        {
            return false;
        }

        Outcome = DeploymentOutcome.Activate;
        return true;
    }

    /// <summary>A stage of this epoch failed to deploy on <paramref name="node"/>; true when that ends the transaction.</summary>
    public bool DeployFailed(long epoch, Address node)
    {
        if (Outcome != DeploymentOutcome.Pending || epoch != Epoch)
        {
            return false;
        }

        _excluded.Add(node);
        Outcome = DeploymentOutcome.RetryElsewhere;
        return true;
    }

    /// <summary>The deadline for this epoch passed; the workers whose stage never came up are counted against.</summary>
    public bool TimedOut(long epoch)
    {
        if (Outcome != DeploymentOutcome.Pending || epoch != Epoch)
        {
            return false;
        }

        _excluded.AddRange(Missing.Select(i => Target.Workers[i]));
        Outcome = DeploymentOutcome.RetryElsewhere;
        return true;
    }

    /// <summary>A worker was lost; true when the target used it (the transaction is aborted).</summary>
    public bool Lost(Address node)
    {
        if (Outcome != DeploymentOutcome.Pending || !Involves(node))
        {
            return false;
        }

        Outcome = DeploymentOutcome.Abort;
        return true;
    }

    /// <summary>The plan this transaction put live.</summary>
    public LivePlan Activation() => Outcome == DeploymentOutcome.Activate
        ? new LivePlan(Epoch, Target, new Dictionary<int, IActorRef>(_stages))
        : throw new InvalidOperationException($"Deployment for epoch {Epoch} is {Outcome}, not ready to activate.");
}
