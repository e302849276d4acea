using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.ControlPath.Supervision;

/// <summary>The plan frames flow through: its epoch, the worker of each stage, and the stage actors.</summary>
public sealed record LivePlan(long Epoch, Assignment Target, IReadOnlyDictionary<int, IActorRef> Stages)
{
    /// <summary>Whether this stage actor is part of the plan.</summary>
    public bool Uses(int parts, int index, IActorRef stage) =>
        parts == Target.Parts && Stages.TryGetValue(index, out var live) && live.Equals(stage);

    /// <summary>What the ingest is told: where the head is and where each stage runs.</summary>
    public PlanActivated Activation(string jobId, IReadOnlyList<SplitPlan> splits, PlanReason reason)
    {
        var split = splits.First(s => s.Parts == Target.Parts);
        var placements = Enumerable.Range(0, Target.Parts)
            .Select(i => new StagePlacement(i, Stages[i], NodeAddress.Of(Target.Workers[i]), split.Stages[i].Layers, split.Stages[i].Flops))
            .ToList();
        return new PlanActivated(jobId, Epoch, Target.Parts, [Stages[0]], placements, reason);
    }

    /// <summary>
    /// The complete, consistently wired plan the workers report, newest epoch first, or null: every
    /// index of one split wired for the same epoch. A supervisor that just started takes it over.
    /// </summary>
    public static LivePlan? Adopt(IReadOnlyList<WorkerView> workers)
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

            var target = new Assignment(parts, Enumerable.Range(0, parts).Select(i => byIndex[i].Worker.Address).ToList());
            var stages = Enumerable.Range(0, parts).ToDictionary(i => i, i => byIndex[i].Hosted.Stage);
            return new LivePlan(group.Key.WiredEpoch, target, stages);
        }

        return null;
    }
}
