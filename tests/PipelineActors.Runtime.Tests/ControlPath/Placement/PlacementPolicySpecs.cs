using Akka.Actor;
using PipelineActors.Runtime.ControlPath.Supervision;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.Tests.ControlPath.Placement;

/// <summary>The placement policy decides where stages go; it must move only what must move.</summary>
public sealed class PlacementPolicySpecs
{
    private static readonly BalancedSplitPolicy Policy = new();

    private static readonly IReadOnlyList<SplitPlan> Splits =
        Enumerable.Range(1, 3).Select(p => new SplitPlan(p,
            Enumerable.Range(0, p).Select(i => new StageSpec(i, new StageFile($"{p}-{i}", 1), [], [], [], 1, string.Empty)).ToList())).ToList();

    private static Address Node(int port) => new("akka.tcp", "pipeline", "127.0.0.1", port);

    private static WorkerView Worker(int port, params (int Parts, int Index)[] hosted) =>
        new(Node(port), new WorkerStatus(ActorRefs.Nobody, 1, 1, 1, [], []), hosted.ToHashSet());

    [Fact]
    public void As_many_stages_as_workers_one_per_worker_up_to_the_most_parts_prepared()
    {
        Assert.Equal(2, Policy.Balanced(Splits, [Worker(1), Worker(2)]).Parts);
        var four = Policy.Balanced(Splits, [Worker(1), Worker(2), Worker(3), Worker(4)]);
        Assert.Equal(3, four.Parts);
        Assert.Equal(3, four.Workers.Distinct().Count());
    }

    [Fact]
    public void A_worker_that_already_hosts_a_stage_of_the_split_keeps_it()
    {
        var placement = Policy.Balanced(Splits, [Worker(1), Worker(2, (3, 0)), Worker(3, (3, 1))]);
        Assert.Equal(3, placement.Parts);
        Assert.Equal([Node(2), Node(3), Node(1)], placement.Workers);
    }

    [Fact]
    public void Recovery_moves_only_the_lost_stage_next_to_the_least_loaded_survivor()
    {
        var current = new Assignment(3, [Node(1), Node(2), Node(3)]);
        var recovered = Policy.Recover(current, [Worker(1, (3, 0)), Worker(3, (3, 2))]);
        Assert.Equal(3, recovered.Parts);
        Assert.Equal(Node(1), recovered.Workers[0]); // untouched
        Assert.Equal(Node(3), recovered.Workers[2]); // untouched
        Assert.Contains(recovered.Workers[1], new[] { Node(1), Node(3) });
    }

    [Fact]
    public void Recovery_prefers_a_survivor_that_already_runs_the_lost_stage()
    {
        var current = new Assignment(2, [Node(1), Node(2)]);
        var recovered = Policy.Recover(current, [Worker(1, (2, 0)), Worker(3, (2, 1))]);
        Assert.Equal([Node(1), Node(3)], recovered.Workers);
    }
}
