using Akka.Actor;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Supervision;

namespace PipelineActors.Runtime.ControlPath.Placement;

/// <summary>Which worker hosts each stage of a split.</summary>
public sealed record Assignment(int Parts, IReadOnlyList<Address> Workers)
{
    public bool SameAs(Assignment? other) => other is not null && Parts == other.Parts && Workers.SequenceEqual(other.Workers);
}

/// <summary>What the policy sees of a worker.</summary>
public sealed record WorkerView(Address Address, WorkerStatus Status, IReadOnlySet<(int Parts, int Index)> Hosted);

/// <summary>
/// Where stages go. A replaceable policy: this one uses the partitioner's balanced split with one
/// stage per worker; the planner brings heterogeneous nodes, bandwidth and replicated stages.
/// </summary>
public interface IPlacementPolicy
{
    /// <summary>The placement to aim for with these workers (ordered by address).</summary>
    Assignment Balanced(IReadOnlyList<SplitPlan> splits, IReadOnlyList<WorkerView> workers);

    /// <summary>The smallest change to <paramref name="current"/> that puts every stage on a live worker.</summary>
    Assignment Recover(Assignment current, IReadOnlyList<WorkerView> workers);
}

/// <summary>One stage per worker, as many stages as workers (up to the most parts prepared); keeps stages where they already run.</summary>
public sealed class BalancedSplitPolicy : IPlacementPolicy
{
    public Assignment Balanced(IReadOnlyList<SplitPlan> splits, IReadOnlyList<WorkerView> workers)
    {
        var parts = splits.Select(s => s.Parts).Where(p => p <= Math.Max(1, workers.Count)).DefaultIfEmpty(1).Max();
        var chosen = new Address?[parts];
        var free = workers.ToList();

        // Redeploy only what must move: a worker already hosting a stage of this split keeps it.
        for (var index = 0; index < parts; index++)
        {
            var host = free.FirstOrDefault(w => w.Hosted.Contains((parts, index)));
            if (host is not null)
            {
                chosen[index] = host.Address;
                free.Remove(host);
            }
        }

        for (var index = 0; index < parts; index++)
        {
            if (chosen[index] is null)
            {
                chosen[index] = free[0].Address;
                free.RemoveAt(0);
            }
        }

        return new Assignment(parts, chosen.Select(a => a!).ToList());
    }

    public Assignment Recover(Assignment current, IReadOnlyList<WorkerView> workers)
    {
        var live = workers.Select(w => w.Address).ToHashSet();
        var result = current.Workers.ToList();
        for (var index = 0; index < result.Count; index++)
        {
            if (live.Contains(result[index]))
            {
                continue;
            }

            // Next to the survivors' own stages: the least loaded live worker, preferring one that
            // already runs this stage, then one holding its file.
            result[index] = workers
                .OrderByDescending(w => w.Hosted.Contains((current.Parts, index)))
                .ThenBy(w => result.Count(a => a == w.Address))
                .ThenBy(w => w.Address.ToString(), StringComparer.Ordinal)
                .First().Address;
        }

        return current with { Workers = result };
    }
}
