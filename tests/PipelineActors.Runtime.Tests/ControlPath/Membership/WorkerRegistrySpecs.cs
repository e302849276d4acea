using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Membership;

namespace PipelineActors.Runtime.Tests.ControlPath.Membership;

/// <summary>The supervisor's view of the workers: who may host stages, what each hosts, who is gone or excluded.</summary>
public sealed class WorkerRegistrySpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Address A = Node(1);
    private static readonly Address B = Node(2);
    private static readonly Address C = Node(3);

    private readonly WorkerRegistry _registry = new(maxFailedDeploys: 2);

    [Fact]
    public void An_up_worker_is_silent_and_not_eligible_until_its_first_report()
    {
        _registry.Up(A);
        Assert.Equal(1, _registry.Silent);
        Assert.Empty(_registry.Eligible());

        Assert.Equal(ReportSeen.First, _registry.Report(A, Status()));
        Assert.Equal(0, _registry.Silent);
        Assert.Equal([A], _registry.Eligible().Select(w => w.Address));
        Assert.Equal(ReportSeen.Again, _registry.Report(A, Status()));
    }

    [Fact]
    public void A_worker_that_reports_before_its_member_is_up_is_not_eligible_yet()
    {
        Assert.Equal(ReportSeen.First, _registry.Report(A, Status()));
        Assert.Empty(_registry.Eligible());

        _registry.Up(A);
        Assert.Equal([A], _registry.Eligible().Select(w => w.Address));
    }

    [Fact]
    public void Eligible_workers_come_in_address_order_with_the_stages_their_reports_list()
    {
        var stage = CreateTestProbe().Ref;
        foreach (var node in new[] { C, A, B })
        {
            _registry.Up(node);
        }

        _registry.Report(C, Status());
        _registry.Report(A, Status(new HostedStage("job-1", 2, 1, stage, 4)));
        _registry.Report(B, Status());

        var eligible = _registry.Eligible();
        Assert.Equal([A, B, C], eligible.Select(w => w.Address));
        Assert.Equal([(2, 1)], eligible[0].Hosted);
        Assert.Empty(eligible[1].Hosted);
        Assert.Equal(stage, _registry.StageOn(2, 1, A));
    }

    [Fact]
    public void A_later_report_replaces_what_that_node_hosts_and_leaves_other_nodes_alone()
    {
        var (s0, s1, other) = (CreateTestProbe().Ref, CreateTestProbe().Ref, CreateTestProbe().Ref);
        _registry.Report(A, Status(new HostedStage("job-1", 2, 0, s0, 3), new HostedStage("job-1", 2, 1, s1, 3)));
        _registry.Report(B, Status(new HostedStage("job-1", 1, 0, other, 2)));

        _registry.Report(A, Status(new HostedStage("job-1", 2, 1, s1, 3)));

        Assert.Null(_registry.StageOn(2, 0, A));
        Assert.Equal(s1, _registry.StageOn(2, 1, A));
        Assert.Equal(other, _registry.StageOn(1, 0, B));
        Assert.Equal(2, _registry.Stages.Count);
    }

    [Fact]
    public void An_unreachable_worker_loses_its_stages_and_eligibility_until_it_is_reachable_again()
    {
        var stage = CreateTestProbe().Ref;
        _registry.Up(A);
        _registry.Report(A, Status(new HostedStage("job-1", 1, 0, stage, 1)));

        Assert.True(_registry.Lose(A, LossKind.Unreachable));
        Assert.Empty(_registry.Eligible());
        Assert.Null(_registry.StageOn(1, 0, A));
        Assert.Equal(0, _registry.Silent);
        Assert.NotNull(_registry.AgentOf(A));

        Assert.True(_registry.Reachable(A));
        Assert.Equal([A], _registry.Eligible().Select(w => w.Address));
    }

    [Theory]
    [InlineData(LossKind.Leaving)]
    [InlineData(LossKind.Exited)]
    [InlineData(LossKind.Removed)]
    public void A_worker_that_left_is_gone_for_good_its_reports_ignored_and_reachability_ignored(LossKind kind)
    {
        _registry.Up(A);
        _registry.Report(A, Status());

        Assert.True(_registry.Lose(A, kind));

        Assert.False(_registry.Reachable(A));
        Assert.Equal(ReportSeen.Ignored, _registry.Report(A, Status(new HostedStage("job-1", 1, 0, CreateTestProbe().Ref, 1))));
        Assert.Empty(_registry.Eligible());
        Assert.Empty(_registry.Stages);
        Assert.Null(_registry.AgentOf(A));
        Assert.Single(_registry.Reports); // its last report is kept until the member is removed
    }

    [Fact]
    public void A_removed_member_is_forgotten_so_a_node_that_rejoins_at_the_address_starts_fresh()
    {
        _registry.Up(A);
        _registry.Report(A, Status());
        _registry.Lose(A, LossKind.Removed);
        _registry.Remove(A);

        Assert.Empty(_registry.Reports);
        Assert.Equal(ReportSeen.First, _registry.Report(A, Status()));
        Assert.Empty(_registry.Eligible()); // not up until its member is
    }

    [Fact]
    public void Losing_or_seeing_unreachable_a_worker_never_known_changes_nothing()
    {
        Assert.False(_registry.Lose(A, LossKind.Unreachable));
        _registry.Unreachable(B);
        Assert.False(_registry.Reachable(B));

        _registry.Up(B);
        _registry.Report(B, Status());
        Assert.Equal([B], _registry.Eligible().Select(w => w.Address));
    }

    [Fact]
    public void An_unreachable_member_in_a_snapshot_keeps_its_stages_but_is_not_eligible()
    {
        var stage = CreateTestProbe().Ref;
        _registry.Up(A);
        _registry.Report(A, Status(new HostedStage("job-1", 1, 0, stage, 1)));

        _registry.Unreachable(A);

        Assert.Empty(_registry.Eligible());
        Assert.Equal(stage, _registry.StageOn(1, 0, A));
    }

    [Fact]
    public void A_worker_is_excluded_once_it_has_failed_the_maximum_number_of_deploys()
    {
        _registry.Up(A);
        _registry.Up(B);
        _registry.Report(A, Status());
        _registry.Report(B, Status());

        _registry.FailedDeploy(B);
        Assert.False(_registry.Excluded(B));
        Assert.Equal([A, B], _registry.Eligible().Select(w => w.Address));

        _registry.FailedDeploy(B);
        Assert.True(_registry.Excluded(B));
        Assert.Equal([A], _registry.Eligible().Select(w => w.Address));
        Assert.NotNull(_registry.AgentOf(B)); // still told to stop the stages it runs
    }

    [Fact]
    public void An_exclusion_runs_out_after_its_time_and_the_worker_starts_a_fresh_count_of_failed_deploys()
    {
        var now = TimeSpan.Zero;
        var registry = new WorkerRegistry(maxFailedDeploys: 2, exclusion: TimeSpan.FromMinutes(5), clock: () => now);
        registry.Up(A);
        registry.Report(A, Status());

        Assert.Null(registry.FailedDeploy(A));
        Assert.Equal(TimeSpan.FromMinutes(5), registry.FailedDeploy(A)); // this failure starts the exclusion
        Assert.Null(registry.FailedDeploy(A)); // failures while excluded neither extend it nor count
        now = TimeSpan.FromMinutes(5) - TimeSpan.FromMilliseconds(1);
        Assert.True(registry.Excluded(A));
        Assert.Empty(registry.Eligible());

        now = TimeSpan.FromMinutes(5);
        Assert.Equal([A], registry.Eligible().Select(w => w.Address));
        Assert.False(registry.Excluded(A));

        // A fresh count: one failure is not enough to exclude it again, two are, for another five minutes.
        now = TimeSpan.FromMinutes(6);
        Assert.Null(registry.FailedDeploy(A));
        Assert.False(registry.Excluded(A));
        Assert.Equal(TimeSpan.FromMinutes(11), registry.FailedDeploy(A));
        Assert.True(registry.Excluded(A));
    }

    [Fact]
    public void A_deployed_stage_is_known_on_its_node_until_forgotten()
    {
        var stage = CreateTestProbe().Ref;
        _registry.Hosts(3, 2, C, stage);

        Assert.Equal(stage, _registry.StageOn(3, 2, C));
        Assert.Null(_registry.StageOn(3, 2, A));
        Assert.Equal([(3, 2, C, stage)], _registry.Stages);

        _registry.Forget(3, 2, C);
        Assert.Empty(_registry.Stages);
    }

    private static Address Node(int index) => new("akka.tcp", "pipeline", $"10.0.0.{index}", 4053);

    private WorkerStatus Status(params HostedStage[] hosted) => new(TestActor, 4, 1, 1L << 30, [], hosted);
}
