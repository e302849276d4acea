using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Ingest;

/// <summary>
/// A frame that kills the worker it runs on sends no rejection and its replays keep their attempt, so the window counts
/// the plans that replaced a lost worker while the frame was unconfirmed, and fails it after max-crashes such replays.
/// </summary>
public sealed class InFlightWindowQuarantineSpecs
{
    private static readonly TimeSpan MinDeadline = TimeSpan.FromMilliseconds(1000);

    [Fact]
    public void A_frame_unconfirmed_through_more_than_max_crashes_worker_losses_is_failed_instead_of_replayed_again()
    {
        var window = new InFlightWindow(4, MinDeadline, maxAttempts: 4, maxCrashes: 2);
        window.EnterEpoch(0, At(0), out _);
        for (var i = 0; i < 3; i++)
        {
            Admit(window, 0);
        }

        window.Confirm(1, -1, At(5)); // an innocent frame the sink already holds

        Assert.Equal(EpochChange.Newer, window.EnterEpoch(1, At(100), afterLoss: true, out var first, out var failedFirst));
        Assert.Equal([(0L, 1), (2L, 1)], first.Select(f => (f.FrameId, f.Attempt))); // a replay keeps the attempt
        Assert.Empty(failedFirst);
        window.Confirm(2, -1, At(150)); // the other innocent frame gets through on the replacement

        window.EnterEpoch(2, At(200), afterLoss: true, out var second, out var failedSecond);
        Assert.Equal([0L], second.Select(f => f.FrameId));
        Assert.Empty(failedSecond);

        // A rebalance is no loss: it replays without counting.
        window.EnterEpoch(3, At(300), afterLoss: false, out var rebalanced, out var failedRebalance);
        Assert.Equal([0L], rebalanced.Select(f => f.FrameId));
        Assert.Empty(failedRebalance);

        window.EnterEpoch(4, At(400), afterLoss: true, out var third, out var failedThird);
        Assert.Empty(third);
        var quarantined = Assert.Single(failedThird);
        Assert.True(quarantined.Failed);
        Assert.Equal((0L, 1, 3L), (quarantined.Frame.FrameId, quarantined.Frame.Attempt, quarantined.Frame.Epoch));
        Assert.Contains("3 times", quarantined.Reason, StringComparison.Ordinal);
        Assert.Equal((1L, 0L), (window.Failed, window.Resent));

        // Failed is final: no deadline re-sends it, no stale rejection revives it, and the sink's confirmation frees its credit.
        Assert.Empty(window.Expired(At(60_000)));
        Assert.False(window.Reject(0, 1, "late", At(60_001), out _));
        window.Confirm(0, 2, At(60_002));
        Assert.True(window.AllDelivered);
        Assert.Equal(0, window.Unconfirmed);
    }

    [Fact]
    public void With_max_crashes_zero_a_frame_lost_with_a_worker_is_failed_at_once_and_frames_admitted_after_the_loss_are_not()
    {
        var window = new InFlightWindow(2, MinDeadline, maxAttempts: 4, maxCrashes: 0);
        window.EnterEpoch(0, At(0), out _);
        Admit(window, 0);

        window.EnterEpoch(1, At(100), afterLoss: true, out var replay, out var failed);
        var late = Admit(window, 150);
        window.EnterEpoch(2, At(200), afterLoss: false, out var rebalanced, out var none);

        Assert.Empty(replay);
        Assert.Equal([0L], failed.Select(f => f.Frame.FrameId));
        Assert.Equal([late.FrameId], rebalanced.Select(f => f.FrameId));
        Assert.Empty(none);
    }

    [Fact]
    public void A_negative_crash_limit_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new InFlightWindow(1, MinDeadline, 4, maxCrashes: -1));
    }

    private static Frame Admit(InFlightWindow window, int ms) =>
        window.Admit("cam", 42, [new HostTensor("x", DataType.Float, [1], new byte[4])], At(ms));

    private static TimeSpan At(int ms) => TimeSpan.FromMilliseconds(ms);
}
