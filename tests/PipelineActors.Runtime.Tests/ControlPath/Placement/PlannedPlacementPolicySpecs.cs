using Akka.Actor;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.Tests.ControlPath.Placement;

/// <summary>A planned placement puts each stage on the worker the plan named, in the plan's order, and falls back when it cannot.</summary>
public sealed class PlannedPlacementPolicySpecs
{
    private static readonly IReadOnlyList<SplitPlan> Splits = Enumerable.Range(1, 3)
        .Select(p => new SplitPlan(
            p,
            Enumerable.Range(0, p).Select(i => new StageSpec(i, new StageFile($"{p}-{i}", 1), [], [], [], 1, string.Empty)).ToList()))
        .ToList();

    private static Address Node(string host, int port) => new("akka.tcp", "pipeline", host, port);

    private static WorkerView Worker(Address address, params (int Parts, int Index)[] hosted) =>
        new(address, new WorkerStatus(ActorRefs.Nobody, 1, 1, 1, [], []), hosted.ToHashSet());

    [Fact]
    public void Each_stage_goes_to_the_planned_worker_by_address_whatever_order_the_workers_come_in()
    {
        // The plan puts stage 0 on the worker with the higher address: the balanced policy, taking workers in address
        // order, would have put it on the other one.
        var policy = new PlannedPlacementPolicy(["10.213.0.6:4100", "10.213.0.2:4200"]);
        var workers = new[] { Worker(Node("10.213.0.2", 4200)), Worker(Node("10.213.0.6", 4100)), Worker(Node("10.213.0.9", 4300)) };

        var assignment = policy.Balanced(Splits, workers);

        Assert.Equal(2, assignment.Parts);
        Assert.Equal([Node("10.213.0.6", 4100), Node("10.213.0.2", 4200)], assignment.Workers);
        Assert.NotEqual(assignment.Workers, new BalancedSplitPolicy().Balanced(Splits, workers.Take(2).ToList()).Workers);
    }

    [Fact]
    public void The_plan_keeps_its_workers_even_when_one_already_hosts_another_stage_of_the_split()
    {
        var policy = new PlannedPlacementPolicy(["127.0.0.1:2", "127.0.0.1:1"]);

        var assignment = policy.Balanced(Splits, [Worker(Node("127.0.0.1", 1), (2, 0)), Worker(Node("127.0.0.1", 2), (2, 1))]);

        Assert.Equal([Node("127.0.0.1", 2), Node("127.0.0.1", 1)], assignment.Workers);
    }

    [Fact]
    public void While_a_planned_worker_is_missing_the_stages_are_placed_as_the_balanced_policy_places_them()
    {
        var policy = new PlannedPlacementPolicy(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
        var survivors = new[] { Worker(Node("127.0.0.1", 1)), Worker(Node("127.0.0.1", 3)) };

        var assignment = policy.Balanced(Splits, survivors);

        Assert.Equal(2, assignment.Parts);
        Assert.Equal(new BalancedSplitPolicy().Balanced(Splits, survivors).Workers, assignment.Workers);
        var recovered = policy.Recover(new Assignment(3, [Node("127.0.0.1", 1), Node("127.0.0.1", 2), Node("127.0.0.1", 3)]), survivors);
        Assert.DoesNotContain(Node("127.0.0.1", 2), recovered.Workers);
    }

    [Fact]
    public void A_plan_with_more_stages_than_prepared_splits_falls_back()
    {
        var policy = new PlannedPlacementPolicy(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"]);
        var workers = Enumerable.Range(1, 4).Select(p => Worker(Node("127.0.0.1", p))).ToList();

        Assert.Equal(3, policy.Balanced(Splits, workers).Parts);
    }

    [Fact]
    public void A_plan_naming_one_worker_twice_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new PlannedPlacementPolicy(["127.0.0.1:1", "127.0.0.1:1"]));
    }
}
