using System.Diagnostics;
using Akka.Actor;
using Akka.TestKit;
using PipelineActors.Onnx.Graph;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;
using PipelineActors.Runtime.Tests.DataPath.Sources;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Ingest;

/// <summary>The ingest under probes for supervisor, head stage and sink: credit, deadlines, poison limit, replay, live sources.</summary>
public sealed class IngestActorSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly IReadOnlyList<TensorInfo> Inputs = [new("input", DataType.Float, [1, 1, 2, 2])];
    private static readonly TimeSpan Never = TimeSpan.FromMinutes(5);

    private readonly TestProbe _supervisor;
    private readonly TestProbe _sink;
    private readonly TestProbe _head;
    private readonly TestProbe _observer;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;
    private readonly TestProbe _planSender;

    public IngestActorSpecs(Xunit.Abstractions.ITestOutputHelper output)
        : base(TestNodes.Config(Roles.Ingest), PipelineConfig.SystemName)
    {
        _output = output;
        _supervisor = CreateTestProbe();
        _sink = CreateTestProbe();
        _head = CreateTestProbe();
        _observer = CreateTestProbe();
        _planSender = CreateTestProbe(); // hears the ingest's acknowledgements
    }

    [Fact]
    public void The_ingest_registers_its_job_and_sends_no_frame_before_a_plan_is_active()
    {
        var ingest = StartIngest(new SyntheticSource(Inputs, 0, 10), window: 2, Never, maxAttempts: 4);

        var job = _supervisor.ExpectMsg<PipelineJob>();
        Assert.Equal(ingest, job.Ingest);
        Assert.Equal(_sink.Ref, job.Sink);
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        ingest.Tell(Plan(0, _head), _planSender.Ref);
        Assert.Equal(new PlanAcknowledged("job-1", 0), _planSender.ExpectMsg<PlanAcknowledged>());

        var first = _head.ExpectMsg<Frame>();
        Assert.Equal((0L, 0L, 1, "synthetic"), (first.FrameId, first.Epoch, first.Attempt, first.SourceId));
        Assert.Equal(SyntheticSource.Pattern(Inputs, 0), first.Tensors);
        Assert.Equal(ingest, _head.LastSender);
        Assert.Equal(1, _head.ExpectMsg<Frame>().FrameId);
    }

    [Fact]
    public void The_window_bounds_unconfirmed_frames_and_a_confirmation_received_twice_frees_credit_once()
    {
        var ingest = StartIngest(new SyntheticSource(Inputs, 0, 50), window: 3, Never, maxAttempts: 4);
        ingest.Tell(Plan(0, _head), _planSender.Ref);
        Assert.Equal([0L, 1, 2], Frames(3));
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        ingest.Tell(new FrameReceived(0, 0));
        Assert.Equal([3L], Frames(1));
        ingest.Tell(new FrameReceived(0, 0));
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        // Frame 2 is held by the sink but frame 1 is not: nothing is delivered past 0, so no credit.
        ingest.Tell(new FrameReceived(2, 0));
        ingest.Tell(new FrameReceived(2, 0));
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        ingest.Tell(new FrameReceived(1, 2));
        Assert.Equal([4L, 5], Frames(2));
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        ingest.Tell(new FrameReceived(5, 2)); // out of order: still only 3 delivered
        ingest.Tell(new FrameReceived(3, 3));
        Assert.Equal([6L], Frames(1));
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void An_unconfirmed_frame_is_resent_after_the_deadline_and_reported_failed_to_the_sink_after_max_attempts()
    {
        var deadline = TimeSpan.FromMilliseconds(250);
        var ingest = StartIngest(new SyntheticSource(Inputs, 0, 1), window: 1, deadline, maxAttempts: 3);
        ingest.Tell(Plan(0, _head), _planSender.Ref);

        var clock = Stopwatch.StartNew();
        var attempts = new List<(int Attempt, TimeSpan At)>();
        for (var i = 0; i < 3; i++)
        {
            var frame = _head.ExpectMsg<Frame>(TimeSpan.FromSeconds(5));
            Assert.Equal(0, frame.FrameId);
            Assert.Equal(SyntheticSource.Pattern(Inputs, 0), frame.Tensors);
            attempts.Add((frame.Attempt, clock.Elapsed));
        }

        var failed = _sink.ExpectMsg<FrameFailed>(TimeSpan.FromSeconds(5));

        Assert.Equal([1, 2, 3], attempts.Select(a => a.Attempt));
        Assert.All(attempts.Skip(1).Zip(attempts),
            p => Assert.True(p.First.At - p.Second.At >= deadline * 0.9, $"re-sent after {(p.First.At - p.Second.At).TotalMilliseconds:0} ms"));
        Assert.Equal(0, failed.FrameId);
        Assert.Contains("after 3 attempts", failed.Reason, StringComparison.Ordinal);
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(400));
        var stats = Stats(ingest);
        Assert.Equal((2L, 1L), (stats.Resent, stats.Failed));
    }

    [Fact]
    public void A_rejected_frame_is_resent_at_once_and_a_rejection_of_an_earlier_attempt_is_ignored()
    {
        var ingest = StartIngest(new SyntheticSource(Inputs, 0, 1), window: 1, Never, maxAttempts: 2);
        ingest.Tell(Plan(0, _head), _planSender.Ref);
        Assert.Equal(1, _head.ExpectMsg<Frame>().Attempt);

        ingest.Tell(new FrameRejected(0, 1, 1, "bad input"));
        Assert.Equal(2, _head.ExpectMsg<Frame>().Attempt);
        ingest.Tell(new FrameRejected(0, 1, 1, "bad input")); // stale: attempt 1 is not the live one
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        _sink.ExpectNoMsg(TimeSpan.FromMilliseconds(10));

        ingest.Tell(new FrameRejected(0, 2, 1, "bad input"));
        var failed = _sink.ExpectMsg<FrameFailed>();
        Assert.Contains("stage 1 failed: bad input", failed.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_new_plan_epoch_replays_unconfirmed_frames_to_the_new_head_under_the_new_epoch()
    {
        var newHead = CreateTestProbe();
        var ingest = StartIngest(new SyntheticSource(Inputs, 0, 20), window: 2, Never, maxAttempts: 4);
        ingest.Tell(Plan(0, _head), _planSender.Ref);
        Assert.Equal([0L, 1], Frames(2));
        ingest.Tell(new FrameReceived(0, 0));
        Assert.Equal([2L], Frames(1));
        ingest.Tell(new FrameReceived(2, 0)); // held by the sink, so not replayed

        ingest.Tell(Plan(1, newHead), _planSender.Ref);

        var replayed = newHead.ExpectMsg<Frame>();
        Assert.Equal((1L, 1L, 1), (replayed.FrameId, replayed.Epoch, replayed.Attempt));
        Assert.Equal(SyntheticSource.Pattern(Inputs, 1), replayed.Tensors);
        newHead.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        ingest.Tell(new FrameReceived(1, 2));
        var next = new[] { newHead.ExpectMsg<Frame>(), newHead.ExpectMsg<Frame>() };
        Assert.Equal([(3L, 1L), (4L, 1L)], next.Select(f => (f.FrameId, f.Epoch)));

        ingest.Tell(Plan(0, _head), _planSender.Ref); // an older plan arriving late changes nothing
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        var stats = Stats(ingest);
        Assert.Equal((1L, 1L), (stats.Replayed, stats.Epoch));
    }

    [Fact]
    public void A_live_source_drops_the_oldest_unsent_frame_when_the_pipeline_is_full_and_frame_ids_have_no_gaps()
    {
        var source = new NumberedLiveSource(framesPerSecond: 200);
        var ingest = StartIngest(source, window: 2, Never, maxAttempts: 4);
        Thread.Sleep(150); // no plan yet: the camera has not started
        Assert.Equal(0, source.Captured);

        ingest.Tell(Plan(0, _head), _planSender.Ref);
        var received = Frames(2, out var sent);
        Thread.Sleep(250); // the pipeline is full: captures replace the one waiting frame
        ingest.Tell(new FrameReceived(0, 0));
        ingest.Tell(new FrameReceived(1, 1));
        var more = Frames(2, out var sentLater);
        var capturedBefore = source.Captured;
        var stats = Stats(ingest);
        var capturedAfter = source.Captured;

        Assert.Equal([0L, 1, 2, 3], received.Concat(more));
        var sequence = sent.Concat(sentLater).Select(NumberedLiveSource.SequenceOf).ToList();
        Assert.True(sequence.Zip(sequence.Skip(1)).All(p => p.Second > p.First), $"captures sent out of order: {string.Join(", ", sequence)}");
        Assert.Equal(0, sequence[0]); // the camera starts with the first plan; its first capture is frame 0
        Assert.True(sequence[2] - sequence[1] >= 5,
            $"frame 2 should be the newest capture, not the one after frame 1 ({string.Join(", ", sequence)})");
        // Every capture the camera made between frames 1 and 2 was replaced while waiting, and is counted as skipped.
        Assert.True(stats.Skipped >= sequence[2] - sequence[1] - 1,
            $"only {stats.Skipped} skipped of {capturedAfter} ({string.Join(", ", sequence)})");
        Assert.Equal(4, stats.Accepted);
        Assert.InRange(stats.Accepted + stats.Skipped, capturedBefore - 1, capturedAfter); // every capture is sent, skipped, or the one waiting
    }

    [Fact]
    public void A_run_whose_frames_fail_still_completes_once_every_frame_has_an_outcome()
    {
        // Window 1, and frame 0 never gets a result: only the sink's confirmation of the failure
        // frees the window for frame 1, and the run completes when both have an outcome.
        var writer = new CollectingResultWriter();
        var sink = Sys.ActorOf(SinkActor.Props(writer));
        var ingest = Sys.ActorOf(IngestActor.Props(new SyntheticSource(Inputs, 0, 2), sink, _supervisor.Ref, Job(sink, 1),
            new IngestSettings(1, TimeSpan.FromMilliseconds(400), 1, 65536), _observer.Ref));
        sink.Tell(new AttachIngest(ingest));
        ingest.Tell(Plan(0, _head), _planSender.Ref);

        Assert.Equal(0, _head.ExpectMsg<Frame>().FrameId);
        var second = _head.ExpectMsg<Frame>(TimeSpan.FromSeconds(5));
        Assert.Equal(1, second.FrameId);
        sink.Tell(second);

        Assert.Equal(2, _observer.ExpectMsg<IngestCompleted>(TimeSpan.FromSeconds(5)).Frames);
        Assert.Equal([true, false], writer.Snapshot().Select(o => o.FailedReason is not null));
    }

    [Fact]
    public void The_job_is_resent_until_its_supervisor_accepts_it_and_again_once_that_supervisor_is_gone()
    {
        var ingest = StartIngest(new SyntheticSource(Inputs, 0, 1), window: 1, Never, maxAttempts: 4);
        Assert.Equal(ingest, _supervisor.ExpectMsg<PipelineJob>().Ingest);
        var singleton = CreateTestProbe(); // the supervisor behind the proxy: it answers with its own ref

        ingest.Tell(new JobAccepted("another-job"), singleton.Ref);
        Stats(ingest);
        Drain(_supervisor);
        _supervisor.ExpectMsg<PipelineJob>(TimeSpan.FromSeconds(3)); // someone else's job acknowledges nothing

        ingest.Tell(new JobAccepted("job-1"), singleton.Ref);
        Stats(ingest);
        Drain(_supervisor);
        _supervisor.ExpectNoMsg(TimeSpan.FromSeconds(2.5));

        Sys.Stop(singleton.Ref); // a handover, or the coordinator's node gone
        Assert.Equal(ingest, _supervisor.ExpectMsg<PipelineJob>(TimeSpan.FromSeconds(3)).Ingest);
        _supervisor.ExpectMsg<PipelineJob>(TimeSpan.FromSeconds(3)); // until the next supervisor answers
    }

    [Fact]
    public void A_15_fps_camera_with_30_fps_asked_streams_at_the_camera_rate_and_the_ingest_answers_at_once()
    {
        var camera = new SlowCamera(TimeSpan.FromMilliseconds(1000.0 / 15), framesPerSecond: 30);
        var ingest = StartIngest(camera, window: 2, Never, maxAttempts: 4);
        ingest.Tell(Plan(0, _head), _planSender.Ref);

        var clock = Stopwatch.StartNew();
        var (frames, answers) = ConfirmEveryFrameFor(ingest, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(2));

        var stats = Stats(ingest);
        // The camera's 15 a second, not the 30 asked for (the lower bound only says frames flowed on a loaded machine).
        var captured = stats.Accepted + stats.Skipped;
        Assert.InRange(captured / clock.Elapsed.TotalSeconds, 2.5, 22);
        // With capture ticks at 30 a second on a 15 fps camera the mailbox grew by a second every second, so every answer
        // after the first second was late. One stall of the whole process (2 s once in CI, with other test projects running)
        // is not that: the median answer and all but two must be prompt.
        AssertPrompt(answers);
        // Frames kept going out for the whole run (the stream neither backed up nor ended). How many captures were replaced
        // before the ingest took them varied from 0 (loaded machine) to 21 of 45 (idle VM), so no bound is put on it.
        Assert.True(stats.Accepted >= frames, $"{stats.Accepted} accepted, {frames} seen by the head");
        Assert.False(stats.SourceEnded);
    }

    [Fact]
    public void A_real_15_fps_mjpeg_camera_read_with_30_fps_asked_is_paced_by_the_camera_and_never_stalls_the_ingest()
    {
        var port = TestPorts.Free();
        var server = Media.ServeMjpeg(port, rate: 15, seconds: 30);
        try
        {
            var profile = new ModelProfile("input:0", 24, 32, TensorLayout.Nhwc, ChannelOrder.Rgb, 1 / 127.5f, [1, 1, 1], [1, 1, 1]);
            var camera = SourceSpec.Parse($"http://127.0.0.1:{port}/feed.mjpg", profile, new FrameSourceOptions(FramesPerSecond: 30));
            Assert.Equal(30, camera.FramesPerSecond);
            var ingest = StartIngest(camera, window: 2, Never, maxAttempts: 4);
            ingest.Tell(Plan(0, _head), _planSender.Ref);
            _head.ExpectMsg<Frame>(TimeSpan.FromSeconds(15)); // ffmpeg has connected

            var (frames, answers) = ConfirmEveryFrameFor(ingest, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5));

            var stats = Stats(ingest);
            Assert.InRange(frames + stats.Skipped, 5, 60); // the camera's 15 a second (and a little in the pipe), not 30
            AssertPrompt(answers);
            Assert.False(stats.SourceEnded);
        }
        finally
        {
            Media.Stop(server);
        }
    }

    [Fact]
    public void The_sink_gets_each_frames_pixels_before_the_frame_leaves_when_the_job_draws_on_them()
    {
        var settings = new IngestSettings(2, Never, 4, 65536) { PixelsToSink = true };
        var source = new SyntheticSource(Inputs, 0, 2);
        var ingest = Sys.ActorOf(IngestActor.Props(source, _sink.Ref, _supervisor.Ref, Job(_sink.Ref, 2), settings, _observer.Ref));
        ingest.Tell(Plan(0, _head), _planSender.Ref);

        var frames = new[] { _head.ExpectMsg<Frame>(), _head.ExpectMsg<Frame>() };
        var pixels = new[] { _sink.ExpectMsg<FramePixels>(), _sink.ExpectMsg<FramePixels>() };

        Assert.Equal([0L, 1], pixels.Select(p => p.FrameId));
        Assert.Equal(frames.Select(f => f.Tensors[0]), pixels.Select(p => p.Pixels));
    }

    [Fact]
    public void The_ingest_runs_on_a_pinned_dispatcher_of_its_own()
    {
        var settings = new IngestSettings(1, Never, 1, 65536);
        var props = IngestActor.Props(new SyntheticSource(Inputs, 0, 1), _sink.Ref, _supervisor.Ref, Job(_sink.Ref, 1), settings, null);

        Assert.Equal("pipeline.ingest-dispatcher", props.Dispatcher);
        Assert.Equal("PinnedDispatcher", Sys.Settings.Config.GetString("pipeline.ingest-dispatcher.type"));
    }

    [Fact]
    public void A_failed_ingest_stops_instead_of_restarting_over_its_disposed_source_and_tells_the_observer_why()
    {
        var source = new FlakySource();
        var ingest = StartIngest(source, window: 1, Never, maxAttempts: 4);
        Watch(ingest);
        ingest.Tell(Plan(0, _head), _planSender.Ref);
        Assert.Equal(0, _head.ExpectMsg<Frame>().FrameId);

        source.FailNextId = true;
        ingest.Tell(new FrameReceived(0, 0)); // credit for frame 1, whose numbering fails

        var failed = _observer.ExpectMsg<IngestFailed>(TimeSpan.FromSeconds(5));
        ExpectTerminated(ingest);
        var readsAtStop = source.Reads;
        Thread.Sleep(200);

        Assert.Contains("name lookup failed", failed.Reason, StringComparison.Ordinal);
        Assert.Equal(1, failed.NextFrameId); // the failed instance's window, not a blank one's 0: a resumed job reuses no id
        Assert.Equal(1, source.Disposals);
        Assert.Equal(readsAtStop, source.Reads); // nothing reads the disposed source
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task A_slow_but_alive_stage_gets_its_frames_through_without_failures_and_its_plan_is_reported_slower_than_planned()
    {
        // One stage at 300 ms a frame that computes every copy it is sent, window 4 and a 750 ms minimum deadline:
        // results take about 1.2 s, the ratio of a 600 ms stage to the default 1.5 s. Before, every frame was re-sent
        // at each deadline, the stage did each one up to four times, and frames were failed.
        var events = CreateTestProbe();
        Akka.Cluster.Tools.PublishSubscribe.DistributedPubSub.Get(Sys).Mediator.Tell(
            new Akka.Cluster.Tools.PublishSubscribe.Subscribe(Topics.Pipeline, events.Ref), events.Ref);
        events.ExpectMsg<Akka.Cluster.Tools.PublishSubscribe.SubscribeAck>();
        var writer = new CollectingResultWriter();
        var sink = Sys.ActorOf(SinkActor.Props(writer));
        var stage = Sys.ActorOf(Props.Create(() => new SlowStage(TimeSpan.FromMilliseconds(300), sink)));
        const int frames = 30;
        var settings = new IngestSettings(4, TimeSpan.FromMilliseconds(750), 4, 65536);
        var source = new SyntheticSource(Inputs, 0, frames);
        var ingest = Sys.ActorOf(IngestActor.Props(source, sink, _supervisor.Ref, Job(sink, 4), settings, _observer.Ref));
        sink.Tell(new AttachIngest(ingest));
        var placement = new StagePlacement(0, stage, "127.0.0.1:7", "0..9", 1);
        ingest.Tell(new PlanActivated("job-1", 0, 1, [stage], [placement], PlanReason.InitialPlacement), _planSender.Ref);

        Assert.Equal(frames, _observer.ExpectMsg<IngestCompleted>(TimeSpan.FromSeconds(40)).Frames);
        var stats = Stats(ingest);
        var computed = await stage.Ask<int>("computed", TimeSpan.FromSeconds(5));
        var p95 = stats.SlowPlans.Select(p => p.LatencyMsP95).DefaultIfEmpty().First();
        _output.WriteLine($"{frames} frames: {stats.Resent} re-sent, {stats.Failed} failed, {computed} copies computed, p95 {p95:0} ms when slow");

        Assert.Equal(0, stats.Failed);
        Assert.All(writer.Snapshot(), o => Assert.Null(o.FailedReason));
        Assert.Equal(frames, writer.Snapshot().Count);
        // Deadlines that never adapted re-sent 74 and failed 20 here; a loaded machine adds a few re-sends, not tens.
        Assert.True(stats.Resent <= 24, $"{stats.Resent} re-sends for {frames} frames");
        Assert.True(computed <= frames + 24, $"the stage computed {computed} copies of {frames} frames");
        var slow = Assert.Single(stats.SlowPlans);
        Assert.Equal((0L, 750.0), (slow.Epoch, slow.ExpectedMs));
        Assert.True(slow.LatencyMsP95 > 750, $"p95 {slow.LatencyMsP95:0} ms");
        Assert.Equal(stage, Assert.Single(slow.Stages).Stage);
        var reported = events.FishForMessage<PipelineEvent>(
            e => e.Text.Contains("slower than planned", StringComparison.Ordinal), TimeSpan.FromSeconds(5));
        Assert.Equal("ingest", reported.Source);
        Assert.Contains("stage 0 on 127.0.0.1:7", reported.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_resumed_job_numbers_its_frames_after_the_last_id_written_and_the_sink_delivers_them_from_there()
    {
        var writer = new CollectingResultWriter();
        var sink = Sys.ActorOf(SinkActor.Props(writer, firstFrameId: 500));
        var settings = new IngestSettings(2, Never, 4, 65536) { FirstId = 500 };
        var ingest = Sys.ActorOf(IngestActor.Props(new SyntheticSource(Inputs, 0, 3), sink, _supervisor.Ref, Job(sink, 2), settings, _observer.Ref));
        sink.Tell(new AttachIngest(ingest));
        ingest.Tell(Plan(0, _head), _planSender.Ref);

        var ids = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            var frame = _head.ExpectMsg<Frame>(TimeSpan.FromSeconds(5));
            ids.Add(frame.FrameId);
            sink.Tell(frame); // the stage's result
        }

        Assert.Equal(503, _observer.ExpectMsg<IngestCompleted>(TimeSpan.FromSeconds(5)).Frames); // the next id: 3 frames after 500
        Assert.Equal([500L, 501, 502], ids);
        Assert.Equal([500L, 501, 502], writer.Snapshot().Select(o => o.FrameId));
        Assert.All(writer.Snapshot(), o => Assert.Null(o.FailedReason));
        var stats = Stats(ingest);
        Assert.Equal((503L, 500L, 502L), (stats.Accepted, stats.FirstId, stats.DeliveredThrough));
    }

    [Fact]
    public void A_frame_still_unconfirmed_after_more_than_max_crashes_recovery_plans_is_failed_to_the_sink_and_not_replayed()
    {
        var settings = new IngestSettings(1, Never, 4, 65536) { MaxCrashes = 1 };
        var source = new SyntheticSource(Inputs, 0, 1);
        var ingest = Sys.ActorOf(IngestActor.Props(source, _sink.Ref, _supervisor.Ref, Job(_sink.Ref, 1), settings, _observer.Ref));
        ingest.Tell(Plan(0, _head), _supervisor.Ref); // the supervisor hears the acknowledgements
        Assert.Equal(0, _head.ExpectMsg<Frame>().FrameId);

        ingest.Tell(Plan(1, _head) with { Reason = PlanReason.Rebalance }, _supervisor.Ref); // no loss: replayed, not counted
        ingest.Tell(Plan(2, _head) with { Reason = PlanReason.Recovery }, _supervisor.Ref); // its worker was lost: replayed once more
        Assert.Equal([(0L, 1L), (0L, 2L)], new[] { _head.ExpectMsg<Frame>(), _head.ExpectMsg<Frame>() }.Select(f => (f.FrameId, f.Epoch)));
        ingest.Tell(Plan(3, _head) with { Reason = PlanReason.Recovery }, _supervisor.Ref); // and lost again: quarantined

        var failed = _sink.ExpectMsg<FrameFailed>(TimeSpan.FromSeconds(5));
        Assert.Equal(0, failed.FrameId);
        Assert.Contains("lost with the worker that held it 2 times", failed.Reason, StringComparison.Ordinal);
        _head.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.Equal(1, Stats(ingest).Failed);
    }

    private IActorRef StartIngest(IFrameSource source, int window, TimeSpan deadline, int maxAttempts) =>
        Sys.ActorOf(IngestActor.Props(source, _sink.Ref, _supervisor.Ref, Job(_sink.Ref, window),
            new IngestSettings(window, deadline, maxAttempts, 65536), _observer.Ref));

    private static PipelineJob Job(IActorRef sink, int window) => new("job-1", [], ActorRefs.Nobody, ActorRefs.Nobody, sink, window);

    private static PlanActivated Plan(long epoch, TestProbe head) =>
        new("job-1", epoch, 1, [head.Ref], [new StagePlacement(0, head.Ref, "127.0.0.1:1", "0..9", 1)], PlanReason.InitialPlacement);

    private List<long> Frames(int count) => Frames(count, out _);

    private List<long> Frames(int count, out List<Frame> frames)
    {
        frames = [];
        for (var i = 0; i < count; i++)
        {
            frames.Add(_head.ExpectMsg<Frame>(TimeSpan.FromSeconds(5)));
        }

        Assert.All(frames, f => Assert.Equal(1, f.Attempt));
        return frames.Select(f => f.FrameId).ToList();
    }

    private IngestStats Stats(IActorRef ingest)
    {
        ingest.Tell(GetIngestStats.Instance);
        return ExpectMsg<IngestStats>();
    }

    private static void Drain(TestProbe probe)
    {
        while (probe.HasMessages)
        {
            probe.ReceiveOne(TimeSpan.Zero);
        }
    }

    /// <summary>A camera whose every read waits for its next frame, slower than the rate it was asked for.</summary>
    /// <summary>
    /// Plays the sink for <paramref name="duration"/>: confirms each frame the head receives at once and asks the ingest for
    /// its counters after each; returns the frames seen and the slowest answer (a mailbox full of work answers late).
    /// </summary>
    /// <summary>The median answer and all but two are prompt; a mailbox that backs up makes every later answer late.</summary>
    private static void AssertPrompt(List<TimeSpan> answers)
    {
        var late = answers.Count(a => a > TimeSpan.FromMilliseconds(500));
        var median = answers.Order().ElementAt(answers.Count / 2);
        Assert.True(late <= 2, $"{late} of {answers.Count} answers took over 500 ms (slowest {answers.Max().TotalMilliseconds:0} ms)");
        Assert.True(median < TimeSpan.FromMilliseconds(200), $"the ingest's median answer took {median.TotalMilliseconds:0} ms");
    }

    private (int Frames, List<TimeSpan> Answers) ConfirmEveryFrameFor(IActorRef ingest, TimeSpan duration, TimeSpan frameTimeout)
    {
        var clock = Stopwatch.StartNew();
        var frames = 0;
        var answers = new List<TimeSpan>();
        while (clock.Elapsed < duration)
        {
            var frame = _head.ExpectMsg<Frame>(frameTimeout);
            frames++;
            ingest.Tell(new FrameReceived(frame.FrameId, frame.FrameId));
            var asked = Stopwatch.StartNew();
            Stats(ingest);
            answers.Add(asked.Elapsed);
        }

        return (frames, answers);
    }

    private sealed class SlowCamera(TimeSpan frameTime, double framesPerSecond) : IFrameSource
    {
        private long _sequence;

        public string Id => "slow camera";

        public bool IsLive => true;

        public double FramesPerSecond => framesPerSecond;

        public bool PacesItself => true;

        public IReadOnlyList<HostTensor>? Read()
        {
            Thread.Sleep(frameTime);
            return [new HostTensor("input", DataType.Int64, [1], BitConverter.GetBytes(_sequence++))];
        }

        public void Dispose()
        {
        }
    }

    /// <summary>A clip whose name lookup can be made to fail once, to crash the ingest mid-run.</summary>
    private sealed class FlakySource : IFrameSource
    {
        private long _reads;
        private int _disposals;

        public bool FailNextId { get; set; }

        public string Id
        {
            get
            {
                if (FailNextId)
                {
                    FailNextId = false;
                    throw new InvalidOperationException("name lookup failed");
                }

                return "flaky";
            }
        }

        public bool IsLive => false;

        public double FramesPerSecond => 0;

        public long Reads => Interlocked.Read(ref _reads);

        public int Disposals => Volatile.Read(ref _disposals);

        public IReadOnlyList<HostTensor>? Read()
        {
            Interlocked.Increment(ref _reads);
            return SyntheticSource.Pattern(Inputs, 0);
        }

        public void Dispose() => Interlocked.Increment(ref _disposals);
    }

    /// <summary>A stage that takes <c>frameTime</c> for every copy of a frame it is sent, one at a time, and passes it to the sink.</summary>
    private sealed class SlowStage : ReceiveActor, IWithTimers
    {
        private readonly Queue<Frame> _queue = new();
        private int _computed;
        private bool _busy;

        public SlowStage(TimeSpan frameTime, IActorRef sink)
        {
            Receive<Frame>(frame =>
            {
                _queue.Enqueue(frame);
                Next(frameTime);
            });
            Receive<Computed>(done =>
            {
                _busy = false;
                _computed++;
                sink.Tell(done.Frame);
                Next(frameTime);
            });
            Receive<string>(_ => Sender.Tell(_computed));
        }

        public ITimerScheduler Timers { get; set; } = null!;

        private void Next(TimeSpan frameTime)
        {
            if (!_busy && _queue.TryDequeue(out var frame))
            {
                _busy = true;
                Timers.StartSingleTimer("compute", new Computed(frame), frameTime);
            }
        }

        private sealed record Computed(Frame Frame);
    }

    /// <summary>A camera that stamps each capture with its sequence number.</summary>
    private sealed class NumberedLiveSource(double framesPerSecond) : IFrameSource
    {
        private long _captured;

        public string Id => "camera";

        public bool IsLive => true;

        public double FramesPerSecond => framesPerSecond;

        public long Captured => Interlocked.Read(ref _captured);

        public static long SequenceOf(Frame frame) => BitConverter.ToInt64(frame.Tensors[0].Data);

        public IReadOnlyList<HostTensor>? Read()
        {
            var sequence = Interlocked.Increment(ref _captured) - 1;
            return [new HostTensor("input", DataType.Int64, [1], BitConverter.GetBytes(sequence))];
        }

        public void Dispose()
        {
        }
    }
}
