using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Ingest;

/// <summary>The hand-over between reader and ingest without threads: clips wait, cameras keep the newest, reads are spaced.</summary>
public sealed class FramePacerSpecs
{
    [Fact]
    public void A_clip_frame_waits_to_be_taken_and_the_next_is_not_read_before()
    {
        var pacer = new FramePacer(live: false, framesPerSecond: 0, pacesItself: false);
        Assert.True(pacer.MayRead);

        Assert.True(pacer.Offer(Frame(0)));
        Assert.False(pacer.MayRead); // the clip waits for the ingest's credit
        Assert.Throws<InvalidOperationException>(() => pacer.Offer(Frame(1)));

        Assert.Equal(0, Sequence(pacer.Take()));
        Assert.True(pacer.MayRead);
        Assert.Null(pacer.Take());
        Assert.Equal(0, pacer.Skipped);
    }

    [Fact]
    public void A_live_frame_gives_way_to_a_newer_one_counted_skipped_and_only_the_first_tells_the_ingest()
    {
        var pacer = new FramePacer(live: true, framesPerSecond: 30, pacesItself: true);

        Assert.True(pacer.Offer(Frame(0)));
        Assert.True(pacer.MayRead); // a camera never waits for the pipeline
        Assert.False(pacer.Offer(Frame(1)));
        Assert.False(pacer.Offer(Frame(2)));

        Assert.Equal(2, pacer.Skipped);
        Assert.Equal(2, Sequence(pacer.Take()));
        Assert.Null(pacer.Take());
        Assert.True(pacer.Offer(Frame(3))); // waiting again after a take: the ingest is told again
    }

    [Fact]
    public void Reads_are_spaced_by_the_rate_unless_the_source_paces_itself_or_has_no_rate()
    {
        var paced = new FramePacer(live: true, framesPerSecond: 25, pacesItself: false);
        var camera = new FramePacer(live: true, framesPerSecond: 25, pacesItself: true);
        var asFastAsTaken = new FramePacer(live: false, framesPerSecond: 0, pacesItself: false);

        Assert.Equal(TimeSpan.FromMilliseconds(40), paced.Interval);
        Assert.Equal(TimeSpan.Zero, paced.NextReadAt(null)); // the first read goes at once
        Assert.Equal(TimeSpan.FromMilliseconds(1040), paced.NextReadAt(TimeSpan.FromSeconds(1)));
        Assert.Equal(TimeSpan.Zero, camera.Interval);
        Assert.Equal(TimeSpan.FromSeconds(1), camera.NextReadAt(TimeSpan.FromSeconds(1)));
        Assert.Equal(TimeSpan.Zero, asFastAsTaken.Interval);
    }

    [Fact]
    public void A_clip_that_ends_still_hands_over_its_last_frame()
    {
        var pacer = new FramePacer(live: false, framesPerSecond: 10, pacesItself: false);
        pacer.Offer(Frame(7));

        Assert.True(pacer.End());

        Assert.False(pacer.Exhausted);
        Assert.False(pacer.MayRead);
        Assert.Equal(7, Sequence(pacer.Take()));
        Assert.True(pacer.Exhausted);
        Assert.Equal(0, pacer.Skipped);
    }

    [Fact]
    public void A_camera_that_ends_drops_its_unsent_frame_as_skipped()
    {
        var pacer = new FramePacer(live: true, framesPerSecond: 10, pacesItself: true);
        pacer.Offer(Frame(0));

        Assert.True(pacer.End());

        Assert.True(pacer.Exhausted);
        Assert.Null(pacer.Take());
        Assert.Equal(1, pacer.Skipped);
    }

    [Fact]
    public void An_end_is_told_once_and_nothing_is_offered_after_it()
    {
        var pacer = new FramePacer(live: true, framesPerSecond: 10, pacesItself: true);

        Assert.True(pacer.End());
        Assert.False(pacer.End());

        Assert.True(pacer.Exhausted);
        Assert.False(pacer.MayRead);
        Assert.Throws<InvalidOperationException>(() => pacer.Offer(Frame(1)));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void A_rate_that_is_not_a_finite_number_of_frames_per_second_is_refused(double rate) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new FramePacer(live: false, rate, pacesItself: false));

    private static SourceFrame Frame(long sequence) =>
        new([new HostTensor("x", DataType.Int64, [1], BitConverter.GetBytes(sequence))], 0);

    private static long Sequence(SourceFrame? frame) => BitConverter.ToInt64(Assert.IsType<SourceFrame>(frame).Tensors[0].Data);
}
