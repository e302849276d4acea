using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Ingest;

/// <summary>The ingest's window without an actor: numbering, credit, deadlines, retries, replay; time is moved by hand.</summary>
public sealed class InFlightWindowSpecs
{
    private static readonly TimeSpan MinDeadline = TimeSpan.FromMilliseconds(1000);

    [Fact]
    public void Frames_are_numbered_from_zero_without_gaps_under_the_live_epoch_as_first_attempts()
    {
        var window = Window(3);
        window.EnterEpoch(7, At(0), out _);

        var frames = Enumerable.Range(0, 3).Select(i => Admit(window, i)).ToList();

        Assert.Equal([0L, 1, 2], frames.Select(f => f.FrameId));
        Assert.All(frames, f => Assert.Equal((7L, 1, "cam"), (f.Epoch, f.Attempt, f.SourceId)));
        Assert.Equal(3, window.NextId);
        Assert.Equal(42L, frames[0].CaptureUnixMicros);
    }

    [Fact]
    public void No_frame_is_admitted_before_a_plan_or_beyond_the_window()
    {
        var window = Window(2);
        Assert.Throws<InvalidOperationException>(() => Admit(window, 0));

        window.EnterEpoch(0, At(0), out _);
        Admit(window, 0);
        Admit(window, 0);

        Assert.False(window.HasCredit);
        Assert.Throws<InvalidOperationException>(() => Admit(window, 0));
        Assert.Equal(2, window.NextId); // the refused frame took no number
    }

    [Fact]
    public void Credit_comes_back_only_as_the_sink_delivers_in_order_and_a_confirmation_received_twice_frees_it_once()
    {
        var window = Window(3);
        window.EnterEpoch(0, At(0), out _);
        for (var i = 0; i < 3; i++)
        {
            Admit(window, 0);
        }

        Assert.True(window.Confirm(0, 0, At(10)));
        Assert.True(window.HasCredit);
        Admit(window, 10);
        Assert.False(window.HasCredit);

        Assert.False(window.Confirm(0, 0, At(20))); // the same confirmation again
        Assert.False(window.HasCredit);

        // Frame 2 is held, frame 1 is not: nothing is delivered past 0, so no credit.
        Assert.True(window.Confirm(2, 0, At(20)));
        Assert.False(window.HasCredit);

        Assert.True(window.Confirm(1, 2, At(30)));
        Assert.Equal((2L, 1), (window.DeliveredThrough, window.Unconfirmed));

        Assert.False(window.Confirm(1, 1, At(40))); // an older delivery point never moves it back
        Assert.Equal(2, window.DeliveredThrough);
    }

    [Fact]
    public void A_delivery_point_past_the_last_frame_sent_grants_no_extra_credit()
    {
        var window = Window(2);
        window.EnterEpoch(0, At(0), out _);
        Admit(window, 0);

        window.Confirm(0, long.MaxValue, At(1));

        Assert.Equal(0, window.DeliveredThrough);
        Admit(window, 1);
        Admit(window, 1);
        Assert.False(window.HasCredit);
        Assert.False(window.AllDelivered);
    }

    [Fact]
    public void An_unconfirmed_frame_past_the_deadline_is_resent_with_the_next_attempt_and_fails_after_max_attempts()
    {
        var window = Window(1, maxAttempts: 3);
        window.EnterEpoch(0, At(0), out _);
        Admit(window, 0);

        Assert.Empty(window.Expired(At(1000))); // exactly at the deadline is not past it
        var second = Assert.Single(window.Expired(At(1001)));
        Assert.Equal((0L, 2, false), (second.Frame.FrameId, second.Frame.Attempt, second.Failed));
        Assert.Contains("no result within 1000 ms", second.Reason, StringComparison.Ordinal);

        Assert.Empty(window.Expired(At(3001))); // the deadline runs from the re-send, twice as long for attempt 2
        var third = Assert.Single(window.Expired(At(3002)));
        Assert.Equal((3, false), (third.Frame.Attempt, third.Failed));
        Assert.Contains("no result within 2000 ms", third.Reason, StringComparison.Ordinal);

        Assert.Empty(window.Expired(At(7002))); // and four times as long for attempt 3
        var failed = Assert.Single(window.Expired(At(7003)));
        Assert.Equal((0L, 3, true), (failed.Frame.FrameId, failed.Frame.Attempt, failed.Failed));
        Assert.Empty(window.Expired(At(9999))); // failed once, never again
        Assert.Equal((2L, 1L), (window.Resent, window.Failed));

        // A failed frame holds its credit until the sink confirms the failure, like a result.
        Assert.False(window.HasCredit);
        window.Confirm(0, 0, At(10_000));
        Assert.True(window.HasCredit && window.AllDelivered);
    }

    [Fact]
    public void With_one_attempt_a_late_frame_fails_at_once()
    {
        var window = Window(1, maxAttempts: 1);
        window.EnterEpoch(0, At(0), out _);
        Admit(window, 0);

        var failed = Assert.Single(window.Expired(At(1500)));

        Assert.True(failed.Failed);
        Assert.Equal((0L, 1L), (window.Resent, window.Failed));
    }

    [Fact]
    public void Only_a_rejection_of_the_live_attempt_of_an_unconfirmed_frame_counts()
    {
        var window = Window(2, maxAttempts: 2);
        window.EnterEpoch(0, At(0), out _);
        Admit(window, 0);

        Assert.True(window.Reject(0, 1, "bad input", At(5), out var retry));
        Assert.Equal((2, false, "bad input"), (retry.Frame.Attempt, retry.Failed, retry.Reason));
        Assert.False(window.Reject(0, 1, "bad input", At(6), out _)); // attempt 1 is no longer live
        Assert.False(window.Reject(5, 1, "bad input", At(6), out _)); // never sent

        Assert.True(window.Reject(0, 2, "bad input", At(7), out var last));
        Assert.True(last.Failed);
        Assert.False(window.Reject(0, 2, "bad input", At(8), out _)); // already failed
    }

    [Fact]
    public void A_confirmed_frame_is_neither_resent_nor_rejected()
    {
        var window = Window(3);
        window.EnterEpoch(0, At(0), out _);
        Admit(window, 0);
        Admit(window, 0);
        window.Confirm(1, -1, At(10)); // held by the sink out of order

        var late = Assert.Single(window.Expired(At(5000)));

        Assert.Equal(0, late.Frame.FrameId);
        Assert.False(window.Reject(1, 1, "late", At(5001), out _));
    }

    [Fact]
    public void A_newer_epoch_replays_every_frame_the_sink_does_not_hold_under_the_new_epoch_keeping_its_attempt()
    {
        var window = Window(4);
        Assert.Equal(EpochChange.First, window.EnterEpoch(0, At(0), out var none));
        Assert.Empty(none);
        for (var i = 0; i < 4; i++)
        {
            Admit(window, 0);
        }

        window.Confirm(0, 0, At(10));
        window.Confirm(2, 0, At(10)); // held by the sink, so not replayed
        window.Expired(At(1500)); // frames 1 and 3 are now on attempt 2

        Assert.Equal(EpochChange.Newer, window.EnterEpoch(3, At(2000), out var replay));

        Assert.Equal([(1L, 3L, 2), (3L, 3L, 2)], replay.Select(f => (f.FrameId, f.Epoch, f.Attempt)));
        Assert.Equal(2, window.Replayed);
        Assert.Empty(window.Expired(At(3900))); // a replay restarts the frame's deadline (attempt 2's: twice the first)
        Assert.Equal(2, window.Expired(At(4001)).Count);
    }

    [Fact]
    public void The_same_epoch_replays_nothing_and_an_older_epoch_is_ignored()
    {
        var window = Window(2);
        window.EnterEpoch(5, At(0), out _);
        Admit(window, 0);

        Assert.Equal(EpochChange.Same, window.EnterEpoch(5, At(1), out var same));
        Assert.Equal(EpochChange.Stale, window.EnterEpoch(4, At(2), out var stale));

        Assert.Empty(same);
        Assert.Empty(stale);
        Assert.Equal((5L, 0L), (window.Epoch, window.Replayed));
        Assert.Equal(5, Admit(window, 3).Epoch);
    }

    [Fact]
    public void The_deadline_adapts_to_four_times_the_p95_of_first_attempt_confirmations_after_eight_samples()
    {
        var window = Window(1);
        window.EnterEpoch(0, At(0), out _);
        var now = 0;
        void RoundTrip(int ms)
        {
            Admit(window, now);
            now += ms;
            window.Confirm(window.NextId - 1, window.NextId - 1, At(now));
        }

        for (var i = 0; i < 7; i++)
        {
            RoundTrip(600);
        }

        Assert.Equal(MinDeadline, window.Deadline); // seven samples are not enough to trust

        RoundTrip(600);
        Assert.Equal(TimeSpan.FromMilliseconds(2400), window.Deadline);

        // Fast confirmations never bring it below the minimum.
        var fast = Window(1);
        fast.EnterEpoch(0, At(0), out _);
        for (var i = 0; i < 20; i++)
        {
            fast.Admit("cam", 0, [], At(i * 10));
            fast.Confirm(i, i, At((i * 10) + 1));
        }

        Assert.Equal(MinDeadline, fast.Deadline);
    }

    [Fact]
    public void A_confirmation_of_a_resent_frame_is_a_sample_timed_from_its_first_send_so_the_deadline_adapts_to_a_slow_pipeline()
    {
        // Every result takes 2.4 s (a 600 ms stage, window 4): each frame is re-sent once before it comes. Sampling only
        // first attempts kept the deadline at its minimum for ever, so every frame went out four times and failed.
        var window = Window(1);
        window.EnterEpoch(0, At(0), out _);
        var now = 0;
        for (var i = 0; i < 8; i++)
        {
            Admit(window, now);
            Assert.Equal(2, Assert.Single(window.Expired(At(now + 1001))).Frame.Attempt);
            now += 2400;
            window.Confirm(i, i, At(now));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(4 * 2400), window.Deadline);
        Assert.Equal(2400, window.LatencyMsP95, precision: 3);

        // From now on a 2.4 s result comes well inside the deadline: nothing is re-sent.
        Admit(window, now);
        Assert.Empty(window.Expired(At(now + 2400)));
        Assert.Equal((8L, 0L), (window.Resent, window.Failed));
    }

    [Fact]
    public void A_slow_but_alive_pipeline_gets_each_frame_resent_with_backoff_and_none_failed_before_the_deadline_adapts()
    {
        // Window 4 over one 600 ms stage that computes every copy it is sent, in order, re-sends included: the load the
        // ingest's re-sends add is the stage's own. Time moves in 10 ms steps; the stage's results confirm as they come.
        var window = new InFlightWindow(4, TimeSpan.FromMilliseconds(1500), 4);
        window.EnterEpoch(0, At(0), out _);
        var queue = new Queue<long>();
        var busyUntil = 0;
        long? computing = null;
        var sends = new Dictionary<long, int>();
        var held = new HashSet<long>();
        var through = -1L;
        for (var now = 0; now <= 60_000; now += 10)
        {
            if (computing is { } done && now >= busyUntil)
            {
                // The sink: delivered in order through the first id it does not hold yet.
                held.Add(done);
                while (held.Contains(through + 1))
                {
                    through++;
                }

                window.Confirm(done, through, At(now));
                computing = null;
            }

            foreach (var retry in window.Expired(At(now)))
            {
                Assert.False(retry.Failed, $"frame {retry.Frame.FrameId} failed at {now} ms: {retry.Reason}");
                queue.Enqueue(retry.Frame.FrameId);
                sends[retry.Frame.FrameId]++;
            }

            while (window.HasCredit)
            {
                var frame = Admit(window, now);
                queue.Enqueue(frame.FrameId);
                sends[frame.FrameId] = 1;
            }

            if (computing is null && queue.Count > 0)
            {
                computing = queue.Dequeue();
                busyUntil = now + 600;
            }
        }

        Assert.Equal(0, window.Failed);
        Assert.True(window.Accepted >= 60, $"only {window.Accepted} frames in 60 s of a 600 ms stage");
        Assert.DoesNotContain(sends, s => s.Value >= 3); // never three sends of one frame, let alone the limit of four
        Assert.All(sends.Where(s => s.Key >= 20), s => Assert.Equal(1, s.Value)); // once adapted, nothing is re-sent
    }

    [Fact]
    public void A_plan_whose_results_stay_later_than_the_minimum_deadline_is_slow_until_one_comes_in_time_or_a_new_plan_starts()
    {
        var window = Window(1);
        window.EnterEpoch(3, At(0), out _);
        var now = 0;
        void RoundTrip(int ms)
        {
            Admit(window, now);
            now += ms;
            window.Confirm(window.NextId - 1, window.NextId - 1, At(now));
        }

        for (var i = 0; i < InFlightWindow.LateBeforeSlow - 1; i++)
        {
            RoundTrip(1200);
        }

        RoundTrip(900); // one in time: the late ones in a row start again
        for (var i = 0; i < InFlightWindow.LateBeforeSlow - 1; i++)
        {
            RoundTrip(1200);
        }

        Assert.Null(window.SlowEpoch);
        RoundTrip(1200);
        Assert.Equal(3, window.SlowEpoch);

        RoundTrip(500);
        Assert.Null(window.SlowEpoch);
        for (var i = 0; i < InFlightWindow.LateBeforeSlow; i++)
        {
            RoundTrip(1200);
        }

        Assert.Equal(3, window.SlowEpoch);
        window.EnterEpoch(4, At(now), out _);
        Assert.Null(window.SlowEpoch);
    }

    [Fact]
    public void A_resumed_job_numbers_its_frames_from_the_first_id_it_is_given_and_its_credit_counts_from_there()
    {
        var window = new InFlightWindow(2, MinDeadline, 4, firstId: 1000);
        window.EnterEpoch(0, At(0), out _);

        Assert.Equal((999L, 0L, true), (window.DeliveredThrough, window.Accepted, window.AllDelivered));
        Assert.Equal([1000L, 1001], new[] { Admit(window, 0), Admit(window, 0) }.Select(f => f.FrameId));
        Assert.False(window.HasCredit);

        window.Confirm(1000, 1000, At(10));
        Assert.Equal(1002, Admit(window, 10).FrameId);
        Assert.Equal((1003L, 3L, 1000L), (window.NextId, window.Accepted, window.DeliveredThrough));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InFlightWindow(1, MinDeadline, 4, firstId: -1));
    }

    [Fact]
    public void The_window_takes_only_settings_it_can_work_with()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new InFlightWindow(0, MinDeadline, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InFlightWindow(1, MinDeadline, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InFlightWindow(1, TimeSpan.Zero, 4));
    }

    private static InFlightWindow Window(int size, int maxAttempts = 4) => new(size, MinDeadline, maxAttempts);

    private static Frame Admit(InFlightWindow window, int ms) =>
        window.Admit("cam", 42, [new HostTensor("x", DataType.Float, [1], new byte[4])], At(ms));

    private static TimeSpan At(int ms) => TimeSpan.FromMilliseconds(ms);
}
