using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Monitoring;

/// <summary>
/// The monitor's state keeps every job apart: its row (state, throughput, latency, counters), the stages of its own plan, and its events,
/// even where two jobs run the same stage index of the same number of parts on one node.
/// </summary>
public sealed class MonitorStateSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const string NodeA = "10.0.0.11:4053";
    private const string NodeB = "10.0.0.12:4053";

    public MonitorStateSpecs()
        : base(TestNodes.Config(Roles.Monitor), PipelineConfig.SystemName)
    {
    }

    [Fact]
    public void Reports_from_two_jobs_make_two_rows_each_with_its_own_figures_stages_and_events()
    {
        var state = new MonitorState();
        var (cam1Head, cam1Tail, cam2Head, cam2Tail) = (Stage(), Stage(), Stage(), Stage());
        List<StagePlacement> cam1Plan = [new(0, cam1Head, NodeA, "0..4 (conv1 .. relu2)", 3_000), new(1, cam1Tail, NodeB, "5..9", 1_000)];
        List<StagePlacement> cam2Plan = [new(0, cam2Head, NodeA, "0..4 (conv1 .. relu2)", 3_000), new(1, cam2Tail, NodeB, "5..9", 1_000)];

        state.Add(Report(1_000, "cam1", framesIn: 100, resultsOut: 90, skipped: 2, failed: 1, p50: 40, p95: 60, epoch: 3, cam1Plan), 1_000);
        state.Add(Report(1_000, "cam2", framesIn: 12, resultsOut: 10, skipped: 0, failed: 0, p50: 200, p95: 250, epoch: 1, cam2Plan), 1_000);
        state.Add(StageReport(1_000, cam1Head, NodeA, frames: 100, bytesOut: 1_000_000), 1_000);
        state.Add(StageReport(1_000, cam2Head, NodeA, frames: 10, bytesOut: 100_000), 1_000);
        state.Add(Report(2_000, "cam1", framesIn: 130, resultsOut: 120, skipped: 5, failed: 1, p50: 41, p95: 62, epoch: 3, cam1Plan), 2_000);
        state.Add(Report(3_000, "cam2", framesIn: 34, resultsOut: 30, skipped: 0, failed: 2, p50: 210, p95: 260, epoch: 1, cam2Plan), 3_000);
        state.Add(StageReport(2_000, cam1Head, NodeA, frames: 130, bytesOut: 1_300_000), 2_000);
        state.Add(StageReport(2_000, cam2Head, NodeA, frames: 20, bytesOut: 200_000), 2_000);
        state.Add(new PipelineEvent(1_500, "supervisor", "epoch 3 live (recovery) in 900 ms", "cam1"), 1_500);
        state.Add(new PipelineEvent(1_600, "supervisor", "worker 10.0.0.13:4053 unreachable"), 1_600);
        state.Add(NodeA, new WorkerStatus(Stage(), 4, 1, 8L << 30, [], []));

        var snapshot = state.Snapshot(3_200, [Member(NodeA), Member(NodeB)]);

        Assert.Equal(["cam1", "cam2"], snapshot.Jobs.Select(j => j.JobId));
        var (cam1, cam2) = (snapshot.Jobs[0], snapshot.Jobs[1]);
        Assert.All(snapshot.Jobs, j => Assert.Equal(ReportedJobStates.Running, j.State));

        var e1 = cam1.Pipeline!;
        Assert.Equal((130, 120, 5, 1), (e1.FramesIn, e1.ResultsOut, e1.Skipped, e1.Failed));
        Assert.Equal(30, e1.FramesPerSecond); // 30 results in the second between its two reports
        Assert.Equal((41.0, 62.0, 3L), (e1.LatencyP50Ms, e1.LatencyP95Ms, e1.Epoch));
        var e2 = cam2.Pipeline!;
        Assert.Equal((34, 30, 0, 2), (e2.FramesIn, e2.ResultsOut, e2.Skipped, e2.Failed));
        Assert.Equal(10, e2.FramesPerSecond); // 20 results in two seconds
        Assert.Equal((210.0, 260.0, 1L), (e2.LatencyP50Ms, e2.LatencyP95Ms, e2.Epoch));

        // Stage 0 of 2 on node A in both jobs: each job shows its own actor's rates.
        Assert.Equal([(0, NodeA), (1, NodeB)], cam1.Stages.Select(s => (s.Index, s.Node)));
        var head = cam1.Stages[0];
        Assert.Equal((130L, 30.0, 0.3, 0.75), (head.Frames, head.FramesPerSecond, head.LinkMBPerSecond, head.FlopsShare));
        Assert.Equal((20L, 10.0, 0.1), (cam2.Stages[0].Frames, cam2.Stages[0].FramesPerSecond, cam2.Stages[0].LinkMBPerSecond));
        Assert.Equal(0, cam1.Stages[1].Frames); // no report from the tail yet

        Assert.Equal(["epoch 3 live (recovery) in 900 ms"], cam1.Events.Select(e => e.Text));
        Assert.Empty(cam2.Events);
        Assert.Equal(["worker 10.0.0.13:4053 unreachable"], snapshot.Events.Select(e => e.Text));

        var a = snapshot.Members.Single(m => m.Address == NodeA);
        Assert.Equal((4, 8L << 30), (a.Cores!.Value, a.MemoryBytes!.Value));
        Assert.Equal(["cam1 0/2", "cam2 0/2"], a.Stages);
        Assert.Equal(["cam1 1/2", "cam2 1/2"], snapshot.Members.Single(m => m.Address == NodeB).Stages);
    }

    [Fact]
    public void A_job_whose_reports_stop_is_finished_when_every_frame_had_an_outcome_and_silent_when_frames_were_outstanding()
    {
        var state = new MonitorState();
        List<StagePlacement> plan = [new(0, Stage(), NodeA, "0..9", 1)];
        state.Add(Report(1_000, "done", framesIn: 50, resultsOut: 49, skipped: 0, failed: 1, p50: 10, p95: 20, epoch: 1, plan, inFlight: 0), 1_000);
        state.Add(Report(1_000, "cut", framesIn: 50, resultsOut: 40, skipped: 0, failed: 0, p50: 10, p95: 20, epoch: 1, plan, inFlight: 10), 1_000);
        state.Add(new PipelineEvent(1_000, "supervisor", "job fresh: 2 splits prepared", "fresh"), 1_000);
        state.Add(Report(1_000, "planless", framesIn: 0, resultsOut: 0, skipped: 0, failed: 0, p50: 0, p95: 0, epoch: -1, [], inFlight: 0), 7_000);

        var snapshot = state.Snapshot(1_000 + MonitorState.SilentAfterMs + 1_000, []);

        var states = snapshot.Jobs.ToDictionary(j => j.JobId, j => j.State);
        Assert.Equal(ReportedJobStates.Finished, states["done"]);
        Assert.Equal(ReportedJobStates.Silent, states["cut"]);
        Assert.Equal(ReportedJobStates.Starting, states["fresh"]);
        Assert.Equal(ReportedJobStates.WaitingForPlan, states["planless"]);
    }

    [Fact]
    public void A_late_report_is_ignored_and_a_job_started_again_under_its_id_starts_a_new_throughput_history()
    {
        var state = new MonitorState();
        List<StagePlacement> plan = [new(0, Stage(), NodeA, "0..9", 1)];
        state.Add(Report(1_000, "cam1", framesIn: 10, resultsOut: 10, skipped: 0, failed: 0, p50: 1, p95: 1, epoch: 1, plan), 1_000);
        state.Add(Report(2_000, "cam1", framesIn: 30, resultsOut: 30, skipped: 0, failed: 0, p50: 1, p95: 1, epoch: 1, plan), 2_000);
        state.Add(Report(1_500, "cam1", framesIn: 20, resultsOut: 20, skipped: 0, failed: 0, p50: 1, p95: 1, epoch: 1, plan), 2_100);

        Assert.Equal([20.0], state.Snapshot(2_200, []).Jobs.Single().Pipeline!.ThroughputHistory);

        state.Add(Report(3_000, "cam1", framesIn: 5, resultsOut: 4, skipped: 0, failed: 0, p50: 1, p95: 1, epoch: 0, plan), 3_000);
        var restarted = state.Snapshot(3_100, []).Jobs.Single().Pipeline!;
        Assert.Empty(restarted.ThroughputHistory);
        Assert.Equal(4, restarted.ResultsOut);
    }

    private IActorRef Stage() => CreateTestProbe().Ref;

    private static ClusterMember Member(string address) => new(address, [Roles.Worker], "Up", true);

    private static PipelineReport Report(
        long unixMs,
        string jobId,
        long framesIn,
        long resultsOut,
        long skipped,
        long failed,
        double p50,
        double p95,
        long epoch,
        IReadOnlyList<StagePlacement> plan,
        long inFlight = 3) =>
        new(unixMs, jobId, framesIn, resultsOut, skipped, failed, 0, 0, 0, 0, inFlight, p50, p95, p95 + 10, epoch, plan, []);

    private static StageReport StageReport(long unixMs, IActorRef stage, string node, long frames, long bytesOut) =>
        new(unixMs, new StageStats(2, 0, node, frames, 5, 7, 0.8, frames * 1_000, bytesOut, 0), 0, stage);
}
