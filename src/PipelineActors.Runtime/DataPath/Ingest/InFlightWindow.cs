using PipelineActors.Protocol;
using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Ingest;

/// <summary>What a plan with a given epoch means for the frames in flight.</summary>
public enum EpochChange
{
    /// <summary>Older than the live epoch: a late message, ignored.</summary>
    Stale,

    /// <summary>The first plan: nothing was sent before it.</summary>
    First,

    /// <summary>The live epoch again: frames in flight stay where they are.</summary>
    Same,

    /// <summary>A newer epoch: frames in flight on the old plan may be gone with a node and are replayed.</summary>
    Newer,
}

/// <summary>What to do with a frame that was rejected or missed its deadline.</summary>
/// <param name="Frame">The frame as it is to be sent again (attempt incremented), or as last sent when it has failed.</param>
/// <param name="Failed">True when the frame has used its attempts: report it failed to the sink, send nothing.</param>
/// <param name="Reason">Why the frame is re-sent or failed.</param>
public readonly record struct FrameRetry(Frame Frame, bool Failed, string Reason);

/// <summary>
/// The ingest's end-to-end window, without actors or clocks: numbers accepted frames without gaps,
/// bounds how many are unconfirmed (credit), keeps every unconfirmed frame for replay, and decides
/// deadlines (4x the p95 of confirmation times, at least the minimum, doubled for each attempt
/// already made) and retries up to a bounded attempt count. It also notices a plan whose results
/// keep arriving later than the minimum deadline (slower than planned). Time is handed in, so a
/// spec can move it.
/// A frame that crashes the process it runs in sends no rejection, and a replay keeps its attempt, so the window also
/// counts, per frame, the plans that replaced a lost worker while the frame was unconfirmed, and fails a frame lost
/// more than <c>maxCrashes</c> times instead of replaying it onto worker after worker (a poison frame's quarantine).
/// </summary>
public sealed class InFlightWindow
{
    private const int SampleCount = 256;
    private const int SamplesBeforeAdapting = 8;

    /// <summary>Consecutive late confirmations under one epoch after which its plan counts as slower than planned.</summary>
    public const int LateBeforeSlow = 8;

    // A re-send waits twice as long as the send before it, up to this many doublings.
    private const int MaxBackoffDoublings = 4;
    private readonly SortedDictionary<long, Entry> _unconfirmed = [];
    private readonly double[] _confirmMs = new double[SampleCount];
    private readonly int _window;
    private readonly TimeSpan _minDeadline;
    private readonly int _maxAttempts;
    private readonly int _maxCrashes;
    private long _confirmations;
    private int _lateInARow;

    /// <param name="firstId">The first frame's id: 0 for a new job; a resumed job continues after the ids it issued before.</param>
    /// <param name="maxCrashes">Replays after the loss of a worker a frame may have; the next loss fails it (int.MaxValue: never).</param>
    public InFlightWindow(int window, TimeSpan minDeadline, int maxAttempts, long firstId = 0, int maxCrashes = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstId);
        ArgumentOutOfRangeException.ThrowIfNegative(maxCrashes);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(minDeadline, TimeSpan.Zero);
        _window = window;
        _minDeadline = minDeadline;
        _maxAttempts = maxAttempts;
        FirstId = firstId;
        NextId = firstId;
        DeliveredThrough = firstId - 1;
        _maxCrashes = maxCrashes;
    }

    /// <summary>The id the first accepted frame got (or gets).</summary>
    public long FirstId { get; }

    /// <summary>The id the next accepted frame gets; less the first id, the number of frames accepted so far. It only grows.</summary>
    public long NextId { get; private set; }

    /// <summary>Frames accepted so far by this window.</summary>
    public long Accepted => NextId - FirstId;

    /// <summary>The sink holds every frame up to this id (a result or a failure); <see cref="FirstId"/> - 1 before the first.</summary>
    public long DeliveredThrough { get; private set; }

    /// <summary>The live plan's epoch; -1 before the first plan.</summary>
    public long Epoch { get; private set; } = -1;

    public long Resent { get; private set; }

    public long Replayed { get; private set; }

    public long Failed { get; private set; }

    /// <summary>
    /// The epoch whose plan is slower than planned: its last <see cref="LateBeforeSlow"/> confirmations each came later
    /// than the minimum deadline, the time a result was expected in; null while the live plan keeps pace.
    /// </summary>
    public long? SlowEpoch { get; private set; }

    /// <summary>Frames sent and not yet delivered through (at most the window).</summary>
    public int Unconfirmed => (int)(NextId - (DeliveredThrough + 1));

    /// <summary>Room for one more frame under the window.</summary>
    public bool HasCredit => Unconfirmed < _window;

    /// <summary>Every accepted frame has an outcome at the sink.</summary>
    public bool AllDelivered => DeliveredThrough == NextId - 1;

    /// <summary>How long a frame's first attempt may go unconfirmed before it is re-sent (later attempts: <see cref="DeadlineOf(int)"/>).</summary>
    public TimeSpan Deadline =>
        Math.Min(_confirmations, SampleCount) < SamplesBeforeAdapting
            ? _minDeadline
            : TimeSpan.FromMilliseconds(Math.Max(_minDeadline.TotalMilliseconds, 4 * LatencyMsP95));

    /// <summary>The p95 of the last 256 confirmation times, in milliseconds (0 before the first).</summary>
    public double LatencyMsP95
    {
        get
        {
            var count = (int)Math.Min(_confirmations, SampleCount);
            return count == 0 ? 0 : Percentiles.At(Percentiles.Sorted(_confirmMs.AsSpan(0, count)), 0.95);
        }
    }

    /// <summary>Moves to a plan's epoch; on a newer one, <paramref name="replay"/> holds every frame the sink does not hold yet.</summary>
    public EpochChange EnterEpoch(long epoch, TimeSpan now, out IReadOnlyList<Frame> replay) =>
        EnterEpoch(epoch, now, afterLoss: false, out replay, out _);

    /// <summary>
    /// Moves to a plan's epoch; on a newer one, <paramref name="replay"/> holds every frame the sink does not hold yet.
    /// With <paramref name="afterLoss"/> (the plan replaces a lost worker), each of those frames counts a loss, and one
    /// lost more than <c>maxCrashes</c> times is in <paramref name="failed"/> instead: report it failed, send nothing.
    /// </summary>
    public EpochChange EnterEpoch(long epoch, TimeSpan now, bool afterLoss, out IReadOnlyList<Frame> replay, out IReadOnlyList<FrameRetry> failed)
    {
        replay = [];
        failed = [];
        if (epoch < Epoch)
        {
            return EpochChange.Stale;
        }

        var change = Epoch < 0 ? EpochChange.First : epoch == Epoch ? EpochChange.Same : EpochChange.Newer;
        Epoch = epoch;
        if (change == EpochChange.Newer)
        {
            // A new plan is judged on its own results.
            _lateInARow = 0;
            SlowEpoch = null;
            var frames = new List<Frame>();
            var quarantined = new List<FrameRetry>();
            foreach (var entry in _unconfirmed.Values.Where(e => !e.Done))
            {
                // Which worker held the frame is unknown here, so every unconfirmed frame counts the loss; a frame that
                // merely shared a window with a poison frame is confirmed after the next replay and stops counting.
                if (afterLoss && ++entry.Losses > _maxCrashes)
                {
                    entry.Done = true;
                    Failed++;
                    var reason = $"lost with the worker that held it {entry.Losses} times (a frame that crashes its worker sends no rejection)";
                    quarantined.Add(new FrameRetry(entry.Frame, Failed: true, reason));
                    continue;
                }

                // The attempt is kept: a replay is not the frame's fault and must not bring it nearer to failing.
                entry.Frame = entry.Frame with { Epoch = epoch };
                entry.SentAt = now;
                entry.FirstSentAt = now;
                frames.Add(entry.Frame);
            }

            Replayed += frames.Count;
            replay = frames;
            failed = quarantined;
        }

        return change;
    }

    /// <summary>Numbers a frame and keeps it until the sink holds it; the caller sends the returned frame (attempt 1).</summary>
    public Frame Admit(string sourceId, long captureUnixMicros, IReadOnlyList<HostTensor> tensors, TimeSpan now)
    {
        if (!HasCredit)
        {
            throw new InvalidOperationException($"The window of {_window} frames is full; admit a frame only with credit.");
        }

        if (Epoch < 0)
        {
            throw new InvalidOperationException("No plan is live yet; a frame has nowhere to go.");
        }

        var frame = new Frame(NextId++, sourceId, Epoch, captureUnixMicros, 1, tensors);
        _unconfirmed[frame.FrameId] = new Entry(frame, now);
        return frame;
    }

    /// <summary>
    /// The sink holds <paramref name="frameId"/> and everything up to <paramref name="deliveredThrough"/>.
    /// Returns true when this confirmation is the frame's first (a second one changes nothing).
    /// </summary>
    public bool Confirm(long frameId, long deliveredThrough, TimeSpan now)
    {
        var first = false;
        if (_unconfirmed.TryGetValue(frameId, out var entry) && !entry.Done)
        {
            entry.Done = true;
            first = true;

            // Every confirmation is a sample, timed from the frame's first send under this plan: sampling only
            // first attempts left the deadline at its minimum for ever once a slow pipeline had every frame
            // re-sent. Which attempt produced the result is unknown, so this is the longest the result took,
            // which errs towards a longer deadline (fewer re-sends), the safe side.
            var took = now - entry.FirstSentAt;
            _confirmMs[_confirmations++ % SampleCount] = took.TotalMilliseconds;
            if (entry.Frame.Epoch == Epoch)
            {
                _lateInARow = took > _minDeadline ? _lateInARow + 1 : 0;
                if (_lateInARow >= LateBeforeSlow)
                {
                    SlowEpoch = Epoch;
                }
                else if (_lateInARow == 0)
                {
                    SlowEpoch = null;
                }
            }
        }

        // Credit is keyed by the sink's delivery point, not by confirmations: a frame confirmed twice
        // frees its place once, and a point past the last frame sent (a confused or hostile peer)
        // grants no credit that was never used.
        var through = Math.Min(deliveredThrough, NextId - 1);
        if (through > DeliveredThrough)
        {
            DeliveredThrough = through;
            while (_unconfirmed.Count > 0 && _unconfirmed.First().Key <= through)
            {
                _unconfirmed.Remove(_unconfirmed.First().Key);
            }
        }

        return first;
    }

    /// <summary>A stage rejected attempt <paramref name="attempt"/> of a frame; only the live attempt of an unconfirmed frame counts.</summary>
    public bool Reject(long frameId, int attempt, string reason, TimeSpan now, out FrameRetry retry)
    {
        if (_unconfirmed.TryGetValue(frameId, out var entry) && !entry.Done && entry.Frame.Attempt == attempt)
        {
            retry = Retry(entry, reason, now);
            return true;
        }

        retry = default;
        return false;
    }

    /// <summary>
    /// Every unconfirmed frame whose last send is older than its deadline, each re-sent or failed. The deadline
    /// doubles with each attempt already made: a slow but alive stage gets time to answer before the deadline has
    /// adapted, instead of every frame being re-sent at once, redone by the stage and failed a few seconds later.
    /// </summary>
    public IReadOnlyList<FrameRetry> Expired(TimeSpan now)
    {
        var deadline = Deadline;
        var late = _unconfirmed.Values.Where(e => !e.Done && now - e.SentAt > DeadlineOf(e.Frame.Attempt, deadline)).ToList();
        return late.Select(e => Retry(e, $"no result within {DeadlineOf(e.Frame.Attempt, deadline).TotalMilliseconds:0} ms", now)).ToList();
    }

    /// <summary>How long attempt <paramref name="attempt"/> of a frame may go unconfirmed before it is re-sent.</summary>
    public TimeSpan DeadlineOf(int attempt) => DeadlineOf(attempt, Deadline);

    private static TimeSpan DeadlineOf(int attempt, TimeSpan deadline) =>
        deadline * (1 << Math.Clamp(attempt - 1, 0, MaxBackoffDoublings));

    private FrameRetry Retry(Entry entry, string reason, TimeSpan now)
    {
        if (entry.Frame.Attempt >= _maxAttempts)
        {
            // Done, but kept until the sink confirms the failure, like a result.
            entry.Done = true;
            Failed++;
            return new FrameRetry(entry.Frame, Failed: true, reason);
        }

        Resent++;
        entry.Frame = entry.Frame with { Epoch = Epoch, Attempt = entry.Frame.Attempt + 1 };
        entry.SentAt = now;
        return new FrameRetry(entry.Frame, Failed: false, reason);
    }

    private sealed class Entry(Frame frame, TimeSpan sentAt)
    {
        public Frame Frame { get; set; } = frame;

        public TimeSpan SentAt { get; set; } = sentAt;

        /// <summary>The first send under the live plan (the admission, or the replay onto a newer plan).</summary>
        public TimeSpan FirstSentAt { get; set; } = sentAt;

        public bool Done { get; set; }

        /// <summary>Plans that replaced a lost worker while this frame was unconfirmed.</summary>
        public int Losses { get; set; }
    }
}
