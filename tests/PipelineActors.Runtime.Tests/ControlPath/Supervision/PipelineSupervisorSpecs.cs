using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.TestKit;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Membership;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.ControlPath.Supervision;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.ControlPath.Supervision;

/// <summary>
/// The supervisor under probes standing in for worker agents, stages, the ingest and the sink.
/// Membership arrives as the supervisor's own membership messages (what it makes of cluster
/// events); each probe is mapped to the worker node it stands for. Every step is asserted: the
/// messages workers and the ingest receive, and the events the monitor hears.
/// </summary>
public sealed class PipelineSupervisorSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const string JobId = "job-1";

    private static readonly SupervisorSettings Fast = new(RebalanceDelay: TimeSpan.FromSeconds(1), DeployTimeout: TimeSpan.FromSeconds(30))
    {
        SettleFirstCheck = TimeSpan.FromMilliseconds(100),
        SettleInterval = TimeSpan.FromMilliseconds(50),
        SettleChecks = 40,
    };

    private static readonly IReadOnlyList<SplitPlan> Splits =
    [
        new(1, [Spec(1, 0, "0..9")]),
        new(2, [Spec(2, 0, "0..4"), Spec(2, 1, "5..9")]),
    ];

    private static readonly IReadOnlyList<string> AllFiles = Splits.SelectMany(s => s.Stages).Select(s => s.File.Sha256).ToList();

    private readonly ConcurrentDictionary<IActorRef, Address> _nodes = new();
    private readonly TestProbe _ingest;
    private readonly TestProbe _sink;
    private readonly TestProbe _store;
    private readonly TestProbe _events;
    private bool _acknowledgePlans = true;

    public PipelineSupervisorSpecs()
        : base(TestNodes.Config(Roles.Coordinator), PipelineConfig.SystemName)
    {
        _ingest = CreateTestProbe();
        _sink = CreateTestProbe();
        _store = CreateTestProbe();
        _events = CreateTestProbe();

        // The ingest acknowledges each activation (as IngestActor does) unless a spec turns that off.
        _ingest.SetAutoPilot(new DelegateAutoPilot((sender, message) =>
        {
            if (message is PlanActivated plan && _acknowledgePlans)
            {
                sender.Tell(new PlanAcknowledged(plan.JobId, plan.Epoch));
            }

            return AutoPilot.KeepRunning;
        }));
        DistributedPubSub.Get(Sys).Mediator.Tell(new Subscribe(Topics.Pipeline, _events.Ref), _events.Ref);
        _events.ExpectMsg<SubscribeAck>();
    }

    private PipelineJob Job => new(JobId, Splits, _store.Ref, _ingest.Ref, _sink.Ref, 4);

    [Fact]
    public void A_new_supervisor_waits_for_every_up_worker_to_report_then_deploys_wires_and_activates_one_stage_per_worker()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = Start();
        supervisor.Tell(new WorkerUp(a.Node));
        supervisor.Tell(new WorkerUp(b.Node));
        supervisor.Tell(Job, _ingest.Ref);
        Assert.Equal(JobId, _ingest.ExpectMsg<JobAccepted>().JobId);
        ExpectEvent("job job-1: 2 splits prepared");

        // A reports with an empty cache: it is asked to prefetch every stage file, once each.
        Report(supervisor, a, cached: []);
        var prefetch = a.Agent.ExpectMsg<PrefetchFiles>();
        Assert.Equal((JobId, _store.Ref), (prefetch.JobId, prefetch.ModelStore));
        Assert.Equal(AllFiles, prefetch.Files.Select(f => f.Sha256));
        ExpectEvent("worker 10.0.0.1:4053 ready: 2 cores, 1 intra-op thread(s), 1024 MiB");

        // B is up but silent: nothing is planned yet.
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(400));
        _ingest.ExpectNoMsg(TimeSpan.Zero);

        Report(supervisor, b); // has every file: no prefetch
        var deployA = a.Agent.ExpectMsg<DeployStage>();
        var deployB = b.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((JobId, 1L, 2, 0, _store.Ref), (deployA.JobId, deployA.Epoch, deployA.Parts, deployA.Spec.Index, deployA.ModelStore));
        Assert.Equal((1L, 2, 1), (deployB.Epoch, deployB.Parts, deployB.Spec.Index));
        Assert.Equal(Splits[1].Stages[1], deployB.Spec);
        ExpectEvent("epoch 1 (initial placement): 2 stage(s) on 10.0.0.1:4053, 10.0.0.2:4053; deploying 2");

        // No wiring until both stages are up.
        var a0 = Deployed(supervisor, a, deployA);
        a0.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        var b1 = Deployed(supervisor, b, deployB);
        Wired(supervisor, a0, 1, 2, 0, successor: b1.Ref);
        _ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // one stage still unconfirmed
        Wired(supervisor, b1, 1, 2, 1, successor: _sink.Ref);

        var plan = _ingest.ExpectMsg<PlanActivated>();
        Assert.Equal((1L, 2, PlanReason.InitialPlacement), (plan.Epoch, plan.Parts, plan.Reason));
        Assert.Equal([a0.Ref], plan.Heads);
        Assert.Equal(
            [(a0.Ref, "10.0.0.1:4053", "0..4"), (b1.Ref, "10.0.0.2:4053", "5..9")],
            plan.Placements.Select(p => (p.Stage, p.Node, p.Layers)));
        ExpectEvent("epoch 1 live (initial placement) in");
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // every stage is in use: nothing to stop
    }

    [Fact]
    public void A_worker_of_the_live_plan_that_becomes_unreachable_has_its_stage_moved_then_the_split_shrinks_and_old_stages_stop()
    {
        var (supervisor, a, b, a0, _) = StartWithLivePlan();

        supervisor.Tell(new WorkerLost(b.Node, LossKind.Unreachable));
        ExpectEvent("worker 10.0.0.2:4053 unreachable; moving its stages");

        // Recovery at once, keeping stage 0 where it runs: only stage 1 is deployed, next to it.
        var deploy = a.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((2L, 2, 1), (deploy.Epoch, deploy.Parts, deploy.Spec.Index));
        ExpectEvent("epoch 2 (recovery): 2 stage(s) on 10.0.0.1:4053, 10.0.0.1:4053; deploying 1");
        var a1 = Deployed(supervisor, a, deploy);
        Wired(supervisor, a0, 2, 2, 0, successor: a1.Ref);
        Wired(supervisor, a1, 2, 2, 1, successor: _sink.Ref);
        var recovered = _ingest.ExpectMsg<PlanActivated>();
        Assert.Equal((2L, PlanReason.Recovery), (recovered.Epoch, recovered.Reason));
        Assert.All(recovered.Placements, p => Assert.Equal("10.0.0.1:4053", p.Node));
        ExpectEvent("ms after the loss");
        b.Agent.ExpectNoMsg(TimeSpan.Zero); // the lost worker is told nothing

        // After the rebalance delay: one worker is better served by the one-part split.
        var whole = a.Agent.ExpectMsg<DeployStage>(TimeSpan.FromSeconds(5));
        Assert.Equal((3L, 1, 0), (whole.Epoch, whole.Parts, whole.Spec.Index));
        var stage = Deployed(supervisor, a, whole);
        Wired(supervisor, stage, 3, 1, 0, successor: _sink.Ref);
        var rebalanced = _ingest.ExpectMsg<PlanActivated>();
        Assert.Equal((3L, 1, PlanReason.Rebalance), (rebalanced.Epoch, rebalanced.Parts, rebalanced.Reason));

        // The two-part stages serve no plan now.
        var stops = new[] { a.Agent.ExpectMsg<StopStage>(), a.Agent.ExpectMsg<StopStage>() };
        Assert.Equal([(2, 0), (2, 1)], stops.Select(s => (s.Parts, s.Index)).Order());
    }

    [Fact]
    public void A_worker_that_comes_back_after_being_unreachable_is_given_a_stage_again_by_the_rebalance()
    {
        var (supervisor, a, b, a0, _) = StartWithLivePlan();
        supervisor.Tell(new WorkerLost(b.Node, LossKind.Unreachable));
        var recovery = a.Agent.ExpectMsg<DeployStage>();
        var a1 = Deployed(supervisor, a, recovery);
        Wired(supervisor, a0, 2, 2, 0, successor: a1.Ref);
        Wired(supervisor, a1, 2, 2, 1, successor: _sink.Ref);
        Assert.Equal(PlanReason.Recovery, _ingest.ExpectMsg<PlanActivated>().Reason);

        // Back before the rebalance tick: the two-part split stays, stage 1 returns to B.
        supervisor.Tell(new WorkerReachable(b.Node));
        Report(supervisor, b);
        var back = b.Agent.ExpectMsg<DeployStage>(TimeSpan.FromSeconds(5));
        Assert.Equal((3L, 2, 1), (back.Epoch, back.Parts, back.Spec.Index));
        var b1 = Deployed(supervisor, b, back);
        Wired(supervisor, a0, 3, 2, 0, successor: b1.Ref);
        Wired(supervisor, b1, 3, 2, 1, successor: _sink.Ref);
        var rebalanced = _ingest.ExpectMsg<PlanActivated>();
        Assert.Equal((3L, PlanReason.Rebalance), (rebalanced.Epoch, rebalanced.Reason));
        Assert.Equal(["10.0.0.1:4053", "10.0.0.2:4053"], rebalanced.Placements.Select(p => p.Node));
        Assert.Equal((2, 1), Stage(a.Agent.ExpectMsg<StopStage>())); // the stand-in on A stops
    }

    [Fact]
    public void A_deploy_failure_is_planned_again_at_once_and_a_worker_that_fails_three_times_gets_no_more_stages()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = StartWithWorkers(a, b);
        var first = a.Agent.ExpectMsg<DeployStage>();
        var a0 = Deployed(supervisor, a, first);
        var failing = b.Agent.ExpectMsg<DeployStage>();

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            Assert.Equal(((long)attempt, 1), (failing.Epoch, failing.Spec.Index));
            supervisor.Tell(new StageDeployFailed(JobId, failing.Epoch, 2, 1, "Stage model is not a valid ONNX file."), b.Agent.Ref);
            ExpectEvent("stage 1/2 failed to deploy on");
            if (attempt < 3)
            {
                // The same split again; stage 0 already runs on A and is reused, not redeployed.
                failing = b.Agent.ExpectMsg<DeployStage>();
                a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
            }

            if (attempt == 1)
            {
                // A late failure of the abandoned epoch changes nothing and is not counted.
                supervisor.Tell(new StageDeployFailed(JobId, 1, 2, 1, "late"), b.Agent.Ref);
                ExpectEvent("late");
                b.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
            }
        }

        // B is excluded: the one-part split on A.
        var whole = a.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((4L, 1, 0), (whole.Epoch, whole.Parts, whole.Spec.Index));
        b.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        var stage = Deployed(supervisor, a, whole);
        Wired(supervisor, stage, 4, 1, 0, successor: _sink.Ref);
        var plan = _ingest.ExpectMsg<PlanActivated>();
        Assert.Equal((4L, 1, PlanReason.InitialPlacement), (plan.Epoch, plan.Parts, plan.Reason));
        var stop = a.Agent.ExpectMsg<StopStage>();
        Assert.Equal((2, 0), (stop.Parts, stop.Index));
        a0.ExpectNoMsg(TimeSpan.Zero); // never wired: its deployment never had every stage
    }

    [Fact]
    public void An_excluded_worker_is_given_stages_again_once_its_exclusion_has_run_out()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = StartWithWorkers(a, b, Fast with { MaxFailedDeploys = 1, Exclusion = TimeSpan.FromSeconds(2) });
        Deployed(supervisor, a, a.Agent.ExpectMsg<DeployStage>());
        var failing = b.Agent.ExpectMsg<DeployStage>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        supervisor.Tell(new StageDeployFailed(JobId, failing.Epoch, 2, 1, "the node's model cache refused the file"), b.Agent.Ref);

        // Excluded: the one-part split on A goes live, and B is left alone for the exclusion's 2 s.
        var whole = a.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((2L, 1), (whole.Epoch, whole.Parts));
        Wired(supervisor, Deployed(supervisor, a, whole), 2, 1, 0, successor: _sink.Ref);
        Assert.Equal((2L, PlanReason.InitialPlacement), Epoch(_ingest.ExpectMsg<PlanActivated>()));
        var quiet = TimeSpan.FromSeconds(1.5) - clock.Elapsed;
        b.Agent.ExpectNoMsg(quiet > TimeSpan.Zero ? quiet : TimeSpan.Zero);

        var again = b.Agent.ExpectMsg<DeployStage>(TimeSpan.FromSeconds(5));
        var after = clock.Elapsed;
        Assert.True(after >= TimeSpan.FromSeconds(1.8), $"B was given a stage {after.TotalSeconds:0.0} s after it was excluded for 2 s");
        Assert.Equal((3L, 2, 1), (again.Epoch, again.Parts, again.Spec.Index));
    }

    [Fact]
    public void A_deployment_that_times_out_is_planned_again_and_goes_live_when_the_slow_worker_answers()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = StartWithWorkers(a, b, Fast with { DeployTimeout = TimeSpan.FromMilliseconds(700) });
        var a0 = Deployed(supervisor, a, a.Agent.ExpectMsg<DeployStage>());
        Assert.Equal(1, b.Agent.ExpectMsg<DeployStage>().Epoch); // and B never answers

        ExpectEvent("deployment for epoch 1 timed out; planning again", TimeSpan.FromSeconds(5));
        var retry = b.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((2L, 2, 1), (retry.Epoch, retry.Parts, retry.Spec.Index));
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // A's stage is reused

        var b1 = Deployed(supervisor, b, retry);
        Wired(supervisor, a0, 2, 2, 0, successor: b1.Ref);
        Wired(supervisor, b1, 2, 2, 1, successor: _sink.Ref);
        var plan = _ingest.ExpectMsg<PlanActivated>();
        Assert.Equal((2L, PlanReason.InitialPlacement), (plan.Epoch, plan.Reason));

        // The live plan's deadline was cancelled: nothing is planned again.
        a.Agent.ExpectNoMsg(TimeSpan.FromSeconds(1));
        b.Agent.ExpectNoMsg(TimeSpan.Zero);
        _ingest.ExpectNoMsg(TimeSpan.Zero);
    }

    [Fact]
    public void A_worker_of_the_deployment_that_leaves_aborts_it_and_the_plan_is_made_without_it()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = StartWithWorkers(a, b);
        var a0 = Deployed(supervisor, a, a.Agent.ExpectMsg<DeployStage>());
        b.Agent.ExpectMsg<DeployStage>();

        supervisor.Tell(new WorkerLost(b.Node, LossKind.Leaving));
        ExpectEvent("worker 10.0.0.2:4053 leaving; moving its stages");

        var whole = a.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((2L, 1), (whole.Epoch, whole.Parts));
        var stage = Deployed(supervisor, a, whole);
        Wired(supervisor, stage, 2, 1, 0, successor: _sink.Ref);
        Assert.Equal((2L, PlanReason.InitialPlacement), Epoch(_ingest.ExpectMsg<PlanActivated>()));
        Assert.Equal((2, 0), Stage(a.Agent.ExpectMsg<StopStage>()));
        a0.ExpectNoMsg(TimeSpan.Zero);

        // Gone for good: its reports and reachability no longer count.
        supervisor.Tell(new WorkerReachable(b.Node));
        Report(supervisor, b);
        b.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(1500));
    }

    [Fact]
    public void A_new_supervisor_adopts_the_plan_its_workers_report_without_redeploying_and_continues_its_epochs()
    {
        var (a, b) = (Worker(1), Worker(2));
        var (a0, b1) = (StageOn(a), StageOn(b));
        var supervisor = Start();
        supervisor.Tell(new WorkerUp(a.Node));
        supervisor.Tell(new WorkerUp(b.Node));
        supervisor.Tell(Job, _ingest.Ref);
        _ingest.ExpectMsg<JobAccepted>();

        // An older, complete one-part plan on B (epoch 4) loses to the newer two-part plan (epoch 7).
        Report(supervisor, a, hosted: [new HostedStage(JobId, 2, 0, a0.Ref, 7)]);
        Report(supervisor, b, hosted: [new HostedStage(JobId, 2, 1, b1.Ref, 7), new HostedStage(JobId, 1, 0, StageOn(b).Ref, 4)]);

        var plan = _ingest.ExpectMsg<PlanActivated>();
        Assert.Equal((7L, 2, PlanReason.Adopted), (plan.Epoch, plan.Parts, plan.Reason));
        Assert.Equal([a0.Ref], plan.Heads);
        Assert.Equal([a0.Ref, b1.Ref], plan.Placements.Select(p => p.Stage));
        ExpectEvent("adopted the running plan (epoch 7, 2 stages) without redeploying");
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        b.Agent.ExpectNoMsg(TimeSpan.Zero);
        a0.ExpectNoMsg(TimeSpan.Zero); // already wired: not wired again

        // The next plan change continues after the adopted epoch.
        supervisor.Tell(new WorkerLost(b.Node, LossKind.Removed));
        ExpectEvent("worker 10.0.0.2:4053 removed; moving its stages");
        var deploy = a.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((8L, 2, 1), (deploy.Epoch, deploy.Parts, deploy.Spec.Index));
    }

    [Fact]
    public void A_new_supervisor_that_finds_no_complete_plan_deploys_what_is_missing_after_the_highest_epoch_reported()
    {
        var (a, b) = (Worker(1), Worker(2));
        var a0 = StageOn(a);
        var supervisor = Start();
        supervisor.Tell(new WorkerUp(a.Node));
        supervisor.Tell(new WorkerUp(b.Node));
        supervisor.Tell(Job, _ingest.Ref);
        _ingest.ExpectMsg<JobAccepted>();

        // Stage 1 of epoch 7 is gone (its node restarted): nothing to adopt, but the ingest has seen
        // epoch 7 and drops older ones, so the next plan must be newer.
        Report(supervisor, a, hosted: [new HostedStage(JobId, 2, 0, a0.Ref, 7)]);
        Report(supervisor, b);

        var deploy = b.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((8L, 2, 1), (deploy.Epoch, deploy.Parts, deploy.Spec.Index));
        ExpectEvent("epoch 8 (initial placement): 2 stage(s) on 10.0.0.1:4053, 10.0.0.2:4053; deploying 1");
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // stage 0 is reused where it runs
        var b1 = Deployed(supervisor, b, deploy);
        Wired(supervisor, a0, 8, 2, 0, successor: b1.Ref);
        Wired(supervisor, b1, 8, 2, 1, successor: _sink.Ref);
        Assert.Equal((8L, PlanReason.InitialPlacement), Epoch(_ingest.ExpectMsg<PlanActivated>()));
    }

    [Fact]
    public void A_silent_worker_holds_the_first_plan_back_only_for_the_settle_checks()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = Start(Fast with { SettleChecks = 20 }); // about a second
        supervisor.Tell(new WorkerUp(a.Node));
        supervisor.Tell(new WorkerUp(b.Node));
        supervisor.Tell(Job, _ingest.Ref);
        Report(supervisor, a);

        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        var whole = a.Agent.ExpectMsg<DeployStage>(TimeSpan.FromSeconds(5));
        Assert.Equal((1L, 1), (whole.Epoch, whole.Parts)); // only A has reported
        b.Agent.ExpectNoMsg(TimeSpan.Zero);
    }

    [Fact]
    public void An_activation_the_ingest_does_not_acknowledge_is_sent_again_until_it_does()
    {
        _acknowledgePlans = false;
        var (_, _, _, _, _) = StartWithLivePlan();

        // Lost across an association, say: it comes again, the same plan, until acknowledged.
        var again = _ingest.ExpectMsg<PlanActivated>(TimeSpan.FromSeconds(3));
        Assert.Equal((1L, PlanReason.InitialPlacement), Epoch(again));
        _ingest.LastSender.Tell(new PlanAcknowledged(JobId, 1));
        _ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(2500));
    }

    [Fact]
    public void A_live_stage_missing_from_two_reports_of_its_up_worker_is_redeployed()
    {
        var (supervisor, a, b, a0, b1) = StartWithLivePlan();
        Report(supervisor, a, hosted: [new HostedStage(JobId, 2, 0, a0.Ref, 1)]);
        Report(supervisor, b, hosted: [new HostedStage(JobId, 2, 1, b1.Ref, 1)]);
        b.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        // The stage broke and left B's reports; one report might have overtaken its deployment, two do not.
        Report(supervisor, b, hosted: []);
        b.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Report(supervisor, b, hosted: []);
        ExpectEvent("stage(s) 1/2 stopped on 10.0.0.2:4053, which is up; redeploying");
        var deploy = b.Agent.ExpectMsg<DeployStage>();
        Assert.Equal((2L, 2, 1), (deploy.Epoch, deploy.Parts, deploy.Spec.Index));
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // stage 0 is kept where it runs
        var fresh = Deployed(supervisor, b, deploy);
        Wired(supervisor, a0, 2, 2, 0, successor: fresh.Ref);
        Wired(supervisor, fresh, 2, 2, 1, successor: _sink.Ref);
        Assert.Equal((2L, PlanReason.Recovery), Epoch(_ingest.FishForMessage<PlanActivated>(p => p.Epoch == 2)));
    }

    [Fact]
    public void A_worker_unreachable_for_less_than_the_threshold_keeps_its_stages_and_one_that_stays_unreachable_loses_them()
    {
        // The threshold is long next to the flap, so that a test thread held up on a loaded machine cannot make a 300 ms
        // flap look like a long loss.
        var (supervisor, a, b, _, _) = StartWithLivePlan(Fast with { UnreachableAfter = TimeSpan.FromSeconds(3) });

        // A flap: back within the threshold, nothing moves, not even once the threshold has passed.
        supervisor.Tell(new WorkerLost(b.Node, LossKind.Unreachable));
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        supervisor.Tell(new WorkerReachable(b.Node));
        ExpectEvent("worker 10.0.0.2:4053 was unreachable for under 3000 ms; its stages stay");
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(3500));

        // Unreachable for longer: its stage moves, after the threshold.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        supervisor.Tell(new WorkerLost(b.Node, LossKind.Unreachable));
        var deploy = a.Agent.ExpectMsg<DeployStage>(TimeSpan.FromSeconds(8));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(2900), $"moved after {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal((2L, 2, 1), (deploy.Epoch, deploy.Parts, deploy.Spec.Index));
    }

    [Fact]
    public void A_job_whose_ingest_has_seen_a_newer_epoch_gets_plans_numbered_after_it()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = Start();
        supervisor.Tell(new WorkerUp(a.Node));
        supervisor.Tell(new WorkerUp(b.Node));

        // A new supervisor whose workers report nothing: only the ingest knows the plans went to epoch 9 (review R7).
        supervisor.Tell(Job with { LastEpoch = 9 }, _ingest.Ref);
        _ingest.ExpectMsg<JobAccepted>();
        Report(supervisor, a);
        Report(supervisor, b);
        Assert.Equal(10L, a.Agent.ExpectMsg<DeployStage>().Epoch);
        Assert.Equal(10L, b.Agent.ExpectMsg<DeployStage>().Epoch);
    }

    [Fact]
    public void Two_jobs_on_the_same_workers_get_stages_of_their_own_and_one_ending_stops_only_its_stages()
    {
        var (supervisor, a, b, a0, b1) = StartWithLivePlan();
        var ingest2 = CreateTestProbe();
        var job2 = new PipelineJob("job-2", Splits, _store.Ref, ingest2.Ref, _sink.Ref, 4);

        // The second job's supervisor sees the first job's stages in the reports, yet deploys its own.
        Report(supervisor, a, hosted: [new HostedStage(JobId, 2, 0, a0.Ref, 1)]);
        Report(supervisor, b, hosted: [new HostedStage(JobId, 2, 1, b1.Ref, 1)]);
        supervisor.Tell(job2, ingest2.Ref);
        Assert.Equal("job-2", ingest2.ExpectMsg<JobAccepted>().JobId);
        var deployA = a.Agent.FishForMessage<DeployStage>(_ => true, TimeSpan.FromSeconds(5));
        var deployB = b.Agent.FishForMessage<DeployStage>(_ => true, TimeSpan.FromSeconds(5));
        Assert.Equal(("job-2", 1L, 2), (deployA.JobId, deployA.Epoch, deployA.Parts));
        Assert.Equal(("job-2", 1L, 2), (deployB.JobId, deployB.Epoch, deployB.Parts));
        var c0 = Deployed(supervisor, a, deployA);
        var c1 = Deployed(supervisor, b, deployB);
        Wired(supervisor, c0, 1, 2, 0, successor: c1.Ref, jobId: "job-2", ingest: ingest2.Ref);
        Wired(supervisor, c1, 1, 2, 1, successor: _sink.Ref, jobId: "job-2", ingest: ingest2.Ref);
        var plan2 = ingest2.ExpectMsg<PlanActivated>();
        Assert.Equal(("job-2", 1L), (plan2.JobId, plan2.Epoch));
        Assert.Equal([c0.Ref], plan2.Heads);
        ingest2.LastSender.Tell(new PlanAcknowledged("job-2", 1));

        // The first job ends: its two stages stop, the second job's stay.
        supervisor.Tell(new JobEnded(JobId), _ingest.Ref);
        var stops = new[] { a.Agent.FishForMessage<StopStage>(_ => true), b.Agent.FishForMessage<StopStage>(_ => true) };
        Assert.All(stops, stop => Assert.Equal(JobId, stop.JobId));
        ExpectEvent("job job-1 ended; stopped 2 stage(s)");
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        b.Agent.ExpectNoMsg(TimeSpan.Zero);
    }

    [Fact]
    public void A_job_end_an_acknowledgement_or_a_status_from_a_node_that_may_not_send_it_is_refused()
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = StartWithWorkers(a, b);
        var stranger = ((ExtendedActorSystem)Sys).Provider.ResolveActorRef("akka.tcp://pipeline@10.9.9.9:4053/user/forger#1");
        var before = (MessageGuard.RefusedSoFar("job-message-not-from-ingest"), MessageGuard.RefusedSoFar("status-for-another-node"));

        supervisor.Tell(new JobEnded(JobId), stranger);
        supervisor.Tell(new PlanAcknowledged(JobId, 1), stranger);
        supervisor.Tell(new WorkerStatus(a.Agent.Ref, 2, 1, 1L << 30, AllFiles, []), stranger);

        AwaitAssert(() => Assert.Equal(
            (before.Item1 + 2, before.Item2 + 1),
            (MessageGuard.RefusedSoFar("job-message-not-from-ingest"), MessageGuard.RefusedSoFar("status-for-another-node"))));
        var heard = _events.ReceiveWhile<object>(TimeSpan.FromMilliseconds(500), m => m, 1000);
        Assert.DoesNotContain(heard.OfType<PipelineEvent>(), e => e.Text.Contains("ended", StringComparison.Ordinal));
        supervisor.Tell(new JobEnded(JobId), _ingest.Ref);
        ExpectEvent("job job-1 ended");
    }

    [Fact]
    public void A_stage_of_a_job_no_ingest_registers_is_stopped_after_the_grace_time()
    {
        var a = Worker(1);
        var supervisor = Start(Fast with { OrphanGrace = TimeSpan.FromSeconds(1) });
        supervisor.Tell(new WorkerUp(a.Node));
        var orphan = StageOn(a);
        Report(supervisor, a, hosted: [new HostedStage("gone", 1, 0, orphan.Ref, 3)]);
        a.Agent.ExpectNoMsg(TimeSpan.FromMilliseconds(800));
        Report(supervisor, a, hosted: [new HostedStage("gone", 1, 0, orphan.Ref, 3)]);
        var stop = a.Agent.ExpectMsg<StopStage>(TimeSpan.FromSeconds(3));
        Assert.Equal(("gone", 1, 0), (stop.JobId, stop.Parts, stop.Index));
        ExpectEvent("stopped stage 0/1 of job gone on 10.0.0.1:4053: no ingest registered it");
    }

    /// <summary>Two workers up and reported, the job known, the two-part plan live at epoch 1.</summary>
    private (IActorRef Supervisor, FakeWorker A, FakeWorker B, TestProbe A0, TestProbe B1) StartWithLivePlan(SupervisorSettings? settings = null)
    {
        var (a, b) = (Worker(1), Worker(2));
        var supervisor = StartWithWorkers(a, b, settings);
        var a0 = Deployed(supervisor, a, a.Agent.ExpectMsg<DeployStage>());
        var b1 = Deployed(supervisor, b, b.Agent.ExpectMsg<DeployStage>());
        Wired(supervisor, a0, 1, 2, 0, successor: b1.Ref);
        Wired(supervisor, b1, 1, 2, 1, successor: _sink.Ref);
        Assert.Equal((1L, PlanReason.InitialPlacement), Epoch(_ingest.ExpectMsg<PlanActivated>()));
        return (supervisor, a, b, a0, b1);
    }

    private IActorRef StartWithWorkers(FakeWorker a, FakeWorker b, SupervisorSettings? settings = null)
    {
        var supervisor = Start(settings);
        supervisor.Tell(new WorkerUp(a.Node));
        supervisor.Tell(new WorkerUp(b.Node));
        supervisor.Tell(Job, _ingest.Ref);
        _ingest.ExpectMsg<JobAccepted>();
        Report(supervisor, a);
        Report(supervisor, b);
        return supervisor;
    }

    private IActorRef Start(SupervisorSettings? settings = null) =>
        Sys.ActorOf(PipelineSupervisor.Props(new BalancedSplitPolicy(), settings ?? Fast, NodeOf));

    private Address NodeOf(IActorRef actor) => _nodes.TryGetValue(actor, out var node) ? node : NodeAddress.NodeOf(Sys, actor);

    private FakeWorker Worker(int index)
    {
        var agent = CreateTestProbe();
        var node = new Address("akka.tcp", PipelineConfig.SystemName, $"10.0.0.{index}", 4053);
        _nodes[agent.Ref] = node;
        return new FakeWorker(agent, node);
    }

    /// <summary>A probe standing in for a stage actor on the worker's node.</summary>
    private TestProbe StageOn(FakeWorker worker)
    {
        var stage = CreateTestProbe();
        _nodes[stage.Ref] = worker.Node;
        return stage;
    }

    private static void Report(
        IActorRef supervisor, FakeWorker worker, IReadOnlyList<string>? cached = null, IReadOnlyList<HostedStage>? hosted = null) =>
        supervisor.Tell(new WorkerStatus(worker.Agent.Ref, 2, 1, 1L << 30, cached ?? AllFiles, hosted ?? []), worker.Agent.Ref);

    /// <summary>The worker loads the stage it was asked for and says so.</summary>
    private TestProbe Deployed(IActorRef supervisor, FakeWorker worker, DeployStage deploy)
    {
        var stage = StageOn(worker);
        supervisor.Tell(new StageDeployed(deploy.JobId, deploy.Epoch, deploy.Parts, deploy.Spec.Index, stage.Ref, 5), worker.Agent.Ref);
        return stage;
    }

    /// <summary>The stage is told its successor for the epoch and confirms.</summary>
    private void Wired(
        IActorRef supervisor, TestProbe stage, long epoch, int parts, int index, IActorRef successor, string jobId = JobId, IActorRef? ingest = null)
    {
        var wire = stage.ExpectMsg<WireStage>();
        Assert.Equal((jobId, epoch, ingest ?? _ingest.Ref), (wire.JobId, wire.Epoch, wire.Ingest));
        Assert.Equal([successor], wire.Successors);
        supervisor.Tell(new StageWired(jobId, epoch, parts, index), stage.Ref);
    }

    private void ExpectEvent(string text, TimeSpan? within = null) =>
        _events.FishForMessage<PipelineEvent>(
            e => e.Source == "supervisor" && e.Text.Contains(text, StringComparison.Ordinal), within ?? TimeSpan.FromSeconds(3), text);

    private static (long, PlanReason) Epoch(PlanActivated plan) => (plan.Epoch, plan.Reason);

    private static (int, int) Stage(StopStage stop) => (stop.Parts, stop.Index);

    private static StageSpec Spec(int parts, int index, string layers) =>
        new(index, new StageFile($"{parts}-{index}-{new string('0', 60)}", 1_000), ["in"], ["out"], [], 100, layers);

    private sealed record FakeWorker(TestProbe Agent, Address Node);
}
