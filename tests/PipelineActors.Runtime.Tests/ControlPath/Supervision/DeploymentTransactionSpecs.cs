using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.ControlPath.Supervision;

namespace PipelineActors.Runtime.Tests.ControlPath.Supervision;

/// <summary>One plan change as a transaction: deploy what is missing, wire once, go live on every wiring ack, or end for good.</summary>
public sealed class DeploymentTransactionSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Address A = Node(1);
    private static readonly Address B = Node(2);
    private static readonly Address C = Node(3);

    private readonly IActorRef _sink;
    private readonly IActorRef _ingest;
    private readonly IActorRef[] _stages;
    private readonly DeploymentTransaction _deployment = new(5, new Assignment(3, [A, B, C]), PlanReason.Recovery, 1234);

    public DeploymentTransactionSpecs()
    {
        _sink = CreateTestProbe().Ref;
        _ingest = CreateTestProbe().Ref;
        _stages = [CreateTestProbe().Ref, CreateTestProbe().Ref, CreateTestProbe().Ref];
    }

    [Fact]
    public void A_stage_that_already_runs_is_reused_and_only_the_missing_ones_are_waited_for()
    {
        Assert.Equal([0, 1, 2], _deployment.Missing);

        _deployment.Reuse(0, _stages[0]);

        Assert.Equal([1, 2], _deployment.Missing);
        Assert.Equal(DeploymentOutcome.Pending, _deployment.Outcome);
        Assert.Equal((5L, PlanReason.Recovery, 1234L), (_deployment.Epoch, _deployment.Reason, _deployment.Started));
    }

    [Fact]
    public void No_wiring_goes_out_until_every_stage_is_up_then_each_is_wired_to_its_successor_once()
    {
        _deployment.Reuse(0, _stages[0]);
        Assert.True(_deployment.Deployed(3, 2, C, _stages[2]));
        Assert.Empty(_deployment.TakeWiring("job-1", _sink, _ingest));
        Assert.False(_deployment.Wiring);

        Assert.True(_deployment.Deployed(3, 1, B, _stages[1]));
        var wiring = _deployment.TakeWiring("job-1", _sink, _ingest);

        Assert.Equal(_stages, wiring.Select(w => w.Stage));
        Assert.All(wiring, w => Assert.Equal((5L, _ingest), (w.Wiring.Epoch, w.Wiring.Ingest)));
        Assert.Equal([_stages[1]], wiring[0].Wiring.Successors);
        Assert.Equal([_stages[2]], wiring[1].Wiring.Successors);
        Assert.Equal([_sink], wiring[2].Wiring.Successors);
        Assert.True(_deployment.Wiring);
        Assert.Empty(_deployment.TakeWiring("job-1", _sink, _ingest));
    }

    [Fact]
    public void A_deployed_stage_counts_only_where_the_target_wants_it_whatever_epoch_it_was_deployed_for()
    {
        Assert.False(_deployment.Deployed(3, 1, A, _stages[1])); // the target wants index 1 on B
        Assert.False(_deployment.Deployed(2, 1, B, _stages[1])); // another split
        Assert.False(_deployment.Deployed(3, 3, C, _stages[2])); // no such index
        Assert.Equal([0, 1, 2], _deployment.Missing);

        Assert.True(_deployment.Deployed(3, 1, B, _stages[1]));
        Assert.Equal(_stages[1], _deployment.Stages[1]);
    }

    [Fact]
    public void The_plan_goes_live_only_when_every_stage_confirms_its_wiring_for_this_epoch()
    {
        WireAll();
        Assert.False(_deployment.Wired(4, 0)); // an older epoch's ack
        Assert.False(_deployment.Wired(5, 0));
        Assert.False(_deployment.Wired(5, 0)); // the same ack twice counts once
        Assert.False(_deployment.Wired(5, 2));
        Assert.Equal(DeploymentOutcome.Pending, _deployment.Outcome);
        Assert.Throws<InvalidOperationException>(() => _deployment.Activation());

        Assert.True(_deployment.Wired(5, 1));

        Assert.Equal(DeploymentOutcome.Activate, _deployment.Outcome);
        var live = _deployment.Activation();
        Assert.Equal((5L, _deployment.Target), (live.Epoch, live.Target));
        Assert.Equal(_stages, Enumerable.Range(0, 3).Select(i => live.Stages[i]));
    }

    [Fact]
    public void A_wiring_ack_before_the_wiring_was_sent_does_not_count()
    {
        Assert.False(_deployment.Wired(5, 0));
        WireAll();
        Assert.False(_deployment.Wired(5, 1));
        Assert.False(_deployment.Wired(5, 2));
        Assert.Equal(DeploymentOutcome.Pending, _deployment.Outcome);
    }

    [Fact]
    public void A_deploy_failure_of_this_epoch_ends_it_to_retry_without_the_failing_worker_and_later_answers_are_ignored()
    {
        Assert.False(_deployment.DeployFailed(4, B)); // a failure from an abandoned epoch
        Assert.Equal(DeploymentOutcome.Pending, _deployment.Outcome);

        Assert.True(_deployment.DeployFailed(5, B));

        Assert.Equal(DeploymentOutcome.RetryElsewhere, _deployment.Outcome);
        Assert.Equal([B], _deployment.Excluded);
        Assert.False(_deployment.Deployed(3, 0, A, _stages[0]));
        Assert.False(_deployment.DeployFailed(5, C));
        Assert.False(_deployment.TimedOut(5));
        Assert.False(_deployment.Lost(A));
        Assert.Equal([B], _deployment.Excluded);
    }

    [Fact]
    public void A_timeout_counts_against_the_workers_whose_stage_never_came_up_only()
    {
        _deployment.Reuse(0, _stages[0]);
        _deployment.Deployed(3, 2, C, _stages[2]);
        Assert.False(_deployment.TimedOut(4));

        Assert.True(_deployment.TimedOut(5));

        Assert.Equal(DeploymentOutcome.RetryElsewhere, _deployment.Outcome);
        Assert.Equal([B], _deployment.Excluded);
    }

    [Fact]
    public void A_timeout_while_wiring_plans_again_without_blaming_any_worker()
    {
        WireAll();
        _deployment.Wired(5, 0);

        Assert.True(_deployment.TimedOut(5));

        Assert.Equal(DeploymentOutcome.RetryElsewhere, _deployment.Outcome);
        Assert.Empty(_deployment.Excluded);
    }

    [Fact]
    public void Losing_a_worker_of_the_target_aborts_it_and_losing_another_does_not()
    {
        Assert.False(_deployment.Involves(Node(9)));
        Assert.False(_deployment.Lost(Node(9)));
        Assert.Equal(DeploymentOutcome.Pending, _deployment.Outcome);

        Assert.True(_deployment.Involves(C));
        Assert.True(_deployment.Lost(C));

        Assert.Equal(DeploymentOutcome.Abort, _deployment.Outcome);
        Assert.Empty(_deployment.Excluded);
        Assert.False(_deployment.Wired(5, 0));
    }

    private void WireAll()
    {
        _deployment.Deployed(3, 0, A, _stages[0]);
        _deployment.Deployed(3, 1, B, _stages[1]);
        _deployment.Deployed(3, 2, C, _stages[2]);
        Assert.Equal(3, _deployment.TakeWiring("job-1", _sink, _ingest).Count);
    }

    private static Address Node(int index) => new("akka.tcp", "pipeline", $"10.0.0.{index}", 4053);
}
