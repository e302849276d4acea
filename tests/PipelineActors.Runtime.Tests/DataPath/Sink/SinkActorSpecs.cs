using Akka.Actor;
using Akka.TestKit;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Sink;

/// <summary>The sink writes each frame's outcome once, in frame order, and confirms every result to the ingest.</summary>
public sealed class SinkActorSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly CollectingResultWriter _writer = new();
    private readonly TestProbe _ingest;
    private readonly IActorRef _sink;

    public SinkActorSpecs()
        : base(TestNodes.Config(Roles.Ingest), PipelineConfig.SystemName)
    {
        _ingest = CreateTestProbe();
        _sink = Sys.ActorOf(SinkActor.Props(_writer));
        _sink.Tell(new AttachIngest(_ingest.Ref));
    }

    [Fact]
    public void Out_of_order_results_are_written_in_frame_order_and_each_confirmation_says_what_is_delivered()
    {
        _sink.Tell(Result(2));
        _ingest.ExpectMsg(new FrameReceived(2, -1));
        _sink.Tell(Result(0));
        _ingest.ExpectMsg(new FrameReceived(0, 0));
        Assert.Equal([0L], Written());

        _sink.Tell(Result(3));
        _ingest.ExpectMsg(new FrameReceived(3, 0));
        _sink.Tell(Result(1));
        _ingest.ExpectMsg(new FrameReceived(1, 3));

        Assert.Equal([0L, 1, 2, 3], Written());
        Assert.Equal(Result(2).Tensors, _writer.Snapshot()[2].Outputs);
        var stats = Stats();
        Assert.Equal((4L, 0L, 4L, 0), (stats.Delivered, stats.OutOfOrder, stats.NextExpected, stats.Buffered));
        Assert.Equal([0L, 1, 2, 3], stats.Deliveries.Select(d => d.FrameId));
    }

    [Fact]
    public void Duplicates_are_dropped_counted_and_confirmed_again()
    {
        _sink.Tell(Result(0));
        _ingest.ExpectMsg(new FrameReceived(0, 0));
        _sink.Tell(Result(2));
        _ingest.ExpectMsg(new FrameReceived(2, 0));

        _sink.Tell(Result(0, attempt: 2)); // delivered already
        _ingest.ExpectMsg(new FrameReceived(0, 0));
        _sink.Tell(Result(2, attempt: 2)); // buffered already
        _ingest.ExpectMsg(new FrameReceived(2, 0));
        _sink.Tell(Result(1));
        _ingest.ExpectMsg(new FrameReceived(1, 2));

        Assert.Equal([0L, 1, 2], Written());
        Assert.All(_writer.Snapshot(), o => Assert.Null(o.FailedReason));
        var stats = Stats();
        Assert.Equal((3L, 2L), (stats.Delivered, stats.DuplicatesDropped));
    }

    [Fact]
    public void A_failed_frame_lets_later_frames_through_and_is_written_with_its_reason()
    {
        _sink.Tell(Result(0));
        _ingest.ExpectMsg(new FrameReceived(0, 0));
        _sink.Tell(Result(2));
        _ingest.ExpectMsg(new FrameReceived(2, 0));

        _sink.Tell(new FrameFailed(1, "stage 1 failed: bad input (after 4 attempts)"));
        _sink.Tell(Result(3));
        _ingest.FishForMessage<FrameReceived>(r => r.FrameId == 3);

        var outcomes = _writer.Snapshot();
        Assert.Equal([0L, 1, 2, 3], outcomes.Select(o => o.FrameId));
        Assert.Equal([null, "stage 1 failed: bad input (after 4 attempts)", null, null], outcomes.Select(o => o.FailedReason));
        Assert.Empty(outcomes[1].Outputs);
        var stats = Stats();
        Assert.Equal((3L, 1L, 4L), (stats.Delivered, stats.Failed, stats.NextExpected));
    }

    [Fact]
    public void A_failed_frame_is_confirmed_to_the_ingest_so_its_place_in_the_window_is_freed()
    {
        // Without this the ingest never learns the frame is delivered: with every frame in
        // flight failed (or the last frame failed) it waits for credit, or completion, forever.
        _sink.Tell(Result(0));
        _ingest.ExpectMsg(new FrameReceived(0, 0));

        _sink.Tell(new FrameFailed(1, "no result within 1500 ms (after 4 attempts)"));

        _ingest.ExpectMsg(new FrameReceived(1, 1));
    }

    [Fact]
    public void A_failure_report_for_a_frame_that_already_has_a_result_changes_nothing()
    {
        _sink.Tell(Result(0));
        _ingest.ExpectMsg(new FrameReceived(0, 0));
        _sink.Tell(Result(2));
        _ingest.ExpectMsg(new FrameReceived(2, 0));

        _sink.Tell(new FrameFailed(0, "late"));
        _sink.Tell(new FrameFailed(2, "late"));
        _sink.Tell(Result(1));
        _ingest.FishForMessage<FrameReceived>(r => r.FrameId == 1);

        Assert.All(_writer.Snapshot(), o => Assert.Null(o.FailedReason));
        Assert.Equal([0L, 1, 2], Written());
    }

    [Fact]
    public void A_result_that_arrives_in_chunks_is_assembled_and_written()
    {
        var frame = Result(0);
        var halves = FrameLink.Cut(frame, (FrameCodec.EncodedLength(frame) + 1) / 2);
        Assert.Equal(2, halves.Length);

        _sink.Tell(halves[0]);
        _sink.Tell(halves[1]);

        _ingest.ExpectMsg(new FrameReceived(0, 0));
        Assert.Equal(frame.Tensors, Assert.Single(_writer.Snapshot()).Outputs);
    }

    [Fact]
    public void A_frames_pixels_ride_on_its_outcome_once_and_pixels_of_a_written_frame_are_not_kept()
    {
        var pixels = new HostTensor("input", DataType.Uint8, [1, 3, 1, 1], [1, 2, 3]);
        _sink.Tell(new FramePixels(0, pixels));
        _sink.Tell(new FramePixels(1, pixels with { Data = [4, 5, 6] }));
        _sink.Tell(Result(0));
        _ingest.ExpectMsg(new FrameReceived(0, 0));
        _sink.Tell(new FrameFailed(1, "late"));
        _ingest.ExpectMsg(new FrameReceived(1, 1));
        _sink.Tell(new FramePixels(0, pixels)); // late: frame 0 is written
        _sink.Tell(Result(2)); // no pixels were sent for it
        _ingest.ExpectMsg(new FrameReceived(2, 2));

        var outcomes = _writer.Snapshot();
        Assert.Equal(pixels, outcomes[0].Pixels);
        Assert.Equal([4, 5, 6], outcomes[1].Pixels!.Data);
        Assert.Null(outcomes[2].Pixels);
    }

    [Fact]
    public void A_result_far_beyond_any_window_is_dropped_unconfirmed_and_the_stream_goes_on()
    {
        // A forged id near long.MaxValue would otherwise be held for ever, with its result, and confirmed as received.
        _sink.Tell(Result(long.MaxValue - 1));
        _sink.Tell(Result(1_000_000));
        _sink.Tell(Result(0));

        _ingest.ExpectMsg(new FrameReceived(0, 0));
        _ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        _sink.Tell(Result(1));
        _ingest.ExpectMsg(new FrameReceived(1, 1));
        Assert.Equal([0L, 1], Written());
        Assert.Equal(0, Stats().Buffered);
    }

    private static Frame Result(long id, int attempt = 1) =>
        new(id, "camera-1", 1, 1_700_000_000_000_000 + id, attempt,
            [new HostTensor("logits", DataType.Float, [1, 2], [.. BitConverter.GetBytes((float)id), .. BitConverter.GetBytes(-1f)])]);

    private List<long> Written() => _writer.Snapshot().Select(o => o.FrameId).ToList();

    private SinkStats Stats()
    {
        _sink.Tell(GetSinkStats.Instance);
        return ExpectMsg<SinkStats>();
    }
}
