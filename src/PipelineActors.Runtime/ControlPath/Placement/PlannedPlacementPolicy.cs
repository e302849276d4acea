using Akka.Actor;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.ControlPath.Placement;

/// <summary>
/// Stages where a plan put them: stage i on the worker at <c>host:port</c> number i, in the split of that many parts (the
/// caller prepares that split with the plan's cuts). The planner chose the device order, so the order is kept exactly; while
/// any planned worker is missing (before it joins, after it is lost) the fallback policy places the stages.
/// </summary>
public sealed class PlannedPlacementPolicy : IPlacementPolicy
{
    private readonly IReadOnlyList<string> _stageEndpoints;
    private readonly IPlacementPolicy _fallback;

    /// <param name="stageEndpoints">The worker of each stage, in stage order, as <c>host:port</c>.</param>
    /// <param name="fallback">Places stages when the plan cannot be followed; the balanced split by default.</param>
    public PlannedPlacementPolicy(IReadOnlyList<string> stageEndpoints, IPlacementPolicy? fallback = null)
    {
        if (stageEndpoints.Count == 0 || stageEndpoints.Distinct(StringComparer.Ordinal).Count() != stageEndpoints.Count)
        {
            throw new ArgumentException("A planned placement names one distinct worker per stage.", nameof(stageEndpoints));
        }

        _stageEndpoints = stageEndpoints;
        _fallback = fallback ?? new BalancedSplitPolicy();
    }

    /// <summary>The worker of each stage, as <c>host:port</c>.</summary>
    public IReadOnlyList<string> StageEndpoints => _stageEndpoints;

    public Assignment Balanced(IReadOnlyList<SplitPlan> splits, IReadOnlyList<WorkerView> workers)
    {
        var byEndpoint = workers.ToDictionary(w => Endpoint(w.Address), w => w.Address, StringComparer.Ordinal);
        var planned = _stageEndpoints.Select(e => byEndpoint.GetValueOrDefault(e)).ToList();
        return splits.Any(s => s.Parts == _stageEndpoints.Count) && planned.All(a => a is not null)
            ? new Assignment(_stageEndpoints.Count, planned.Select(a => a!).ToList())
            : _fallback.Balanced(splits, workers);
    }

    public Assignment Recover(Assignment current, IReadOnlyList<WorkerView> workers) => _fallback.Recover(current, workers);

    /// <summary>An address as the plan names it: <c>host:port</c>, whatever the protocol.</summary>
    public static string Endpoint(Address address) => $"{address.Host}:{address.Port}";
}
