using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.ControlPath.Supervision;

namespace PipelineActors.Runtime.Tests.ControlPath.Supervision;

/// <summary>The live plan: what the ingest is told, and which running plan a new supervisor adopts from the workers' reports.</summary>
public sealed class LivePlanSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Address A = Node(1);
    private static readonly Address B = Node(2);

    private static readonly IReadOnlyList<SplitPlan> Splits =
    [
        new(1, [Spec(1, 0, "0..9", 100)]),
        new(2, [Spec(2, 0, "0..4", 60), Spec(2, 1, "5..9", 40)]),
    ];

    [Fact]
    public void The_activation_names_the_head_and_where_each_stage_runs_with_its_layers()
    {
        var (s0, s1) = (CreateTestProbe().Ref, CreateTestProbe().Ref);
        var live = new LivePlan(7, new Assignment(2, [B, A]), new Dictionary<int, IActorRef> { [0] = s0, [1] = s1 });

        var plan = live.Activation("job-1", Splits, PlanReason.Rebalance);

        Assert.Equal((7L, 2, PlanReason.Rebalance), (plan.Epoch, plan.Parts, plan.Reason));
        Assert.Equal([s0], plan.Heads);
        Assert.Equal(
            [new StagePlacement(0, s0, "10.0.0.2:4053", "0..4", 60), new StagePlacement(1, s1, "10.0.0.1:4053", "5..9", 40)],
            plan.Placements);
        Assert.True(live.Uses(2, 1, s1));
        Assert.False(live.Uses(2, 1, s0));
        Assert.False(live.Uses(1, 0, s0));
    }

    [Fact]
    public void A_new_supervisor_adopts_the_newest_split_whose_every_stage_is_wired_for_one_epoch()
    {
        var (old0, old1, new0, new1) = (CreateTestProbe().Ref, CreateTestProbe().Ref, CreateTestProbe().Ref, CreateTestProbe().Ref);
        var workers = new[]
        {
            Worker(A, new HostedStage("job-1", 2, 0, old0, 3), new HostedStage("job-1", 1, 0, new0, 4)),
            Worker(B, new HostedStage("job-1", 2, 1, old1, 3), new HostedStage("job-1", 2, 0, new1, 5)),
        };

        var adopted = LivePlan.Adopt(workers);

        // Epoch 5 has index 0 only and epoch 4 is the one-part split: complete, and newer than 3.
        Assert.NotNull(adopted);
        Assert.Equal((4L, 1), (adopted.Epoch, adopted.Target.Parts));
        Assert.Equal([A], adopted.Target.Workers);
        Assert.Equal(new0, adopted.Stages[0]);
    }

    [Fact]
    public void Stages_never_wired_or_wired_for_different_epochs_are_not_a_plan_to_adopt()
    {
        var workers = new[]
        {
            Worker(A, new HostedStage("job-1", 2, 0, CreateTestProbe().Ref, 3), new HostedStage("job-1", 1, 0, CreateTestProbe().Ref, -1)),
            Worker(B, new HostedStage("job-1", 2, 1, CreateTestProbe().Ref, 2)),
        };

        Assert.Null(LivePlan.Adopt(workers));
        Assert.Null(LivePlan.Adopt([]));
    }

    private WorkerView Worker(Address node, params HostedStage[] hosted) =>
        new(node, new WorkerStatus(TestActor, 1, 1, 1, [], hosted), hosted.Select(h => (h.Parts, h.Index)).ToHashSet());

    private static StageSpec Spec(int parts, int index, string layers, long flops) =>
        new(index, new StageFile($"{parts}-{index}", 1), [], [], [], flops, layers);

    private static Address Node(int index) => new("akka.tcp", "pipeline", $"10.0.0.{index}", 4053);
}
