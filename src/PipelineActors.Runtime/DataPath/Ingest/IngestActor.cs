using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;

namespace PipelineActors.Runtime.DataPath.Ingest;

/// <summary>How the ingest paces and guards frames.</summary>
/// <param name="Window">Frames in flight at most (end-to-end credit); about the stage count, plus a little.</param>
/// <param name="MinDeadline">A frame unconfirmed this long (or 4x the p95 confirmation time, if larger) is re-sent.</param>
/// <param name="MaxAttempts">Sends after which a frame is reported failed (a poison frame).</param>
public sealed record IngestSettings(int Window, TimeSpan MinDeadline, int MaxAttempts, int ChunkBytes);

/// <summary>Ask the ingest for its counters.</summary>
public sealed class GetIngestStats
{
    public static readonly GetIngestStats Instance = new();

    private GetIngestStats()
    {
    }
}

/// <summary>The ingest's counters and the live plan.</summary>
public sealed record IngestStats(long Accepted, long Skipped, long Resent, long Replayed, long Failed, long DeliveredThrough, bool SourceEnded, long Epoch, PlanActivated? Plan, IReadOnlyList<(long Ticks, string Text)> Events)
{
    /// <summary>When each plan went live (Stopwatch ticks), its epoch and why; the newest 1,000.</summary>
    public IReadOnlyList<(long Ticks, long Epoch, PlanReason Reason)> Plans { get; init; } = [];
}

/// <summary>Sent to the observer when the source has ended and every accepted frame has an outcome.</summary>
public sealed record IngestCompleted(long Frames) : INoSerializationVerificationNeeded;

/// <summary>
/// The camera-feed ingest: takes frames from a source, numbers the ones it accepts (no gaps),
/// sends them to the head of the live plan under end-to-end credit, and keeps every frame until
/// the sink holds its result: frames lost with a failed node are re-sent on the new plan, frames
/// past their deadline are re-sent, and a frame that fails again and again is reported failed.
/// </summary>
public sealed class IngestActor : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IFrameSource _source;
    private readonly IActorRef _sink;
    private readonly IActorRef _supervisor;
    private readonly IngestSettings _settings;
    private readonly IActorRef? _observer;
    private readonly SortedDictionary<long, InFlight> _inFlight = [];
    private readonly double[] _confirmMs = new double[256];
    private readonly List<(long, string)> _events = [];
    private readonly List<(long, long, PlanReason)> _plans = [];
    private PipelineJob _job;
    private IReadOnlyList<IActorRef> _heads = [];
    private PlanActivated? _plan;
    private long _epoch = -1;
    private long _nextId;
    private long _deliveredThrough = -1;
    private long _confirmations;
    private (IReadOnlyList<FrameTensor> Tensors, long Capture)? _pendingLive;
    private bool _ended;
    private int _owed;
    private bool _completed;
    private long _skipped;
    private long _resent;
    private long _replayed;
    private long _failed;

    private readonly FrameImages? _images;

    public IngestActor(IFrameSource source, IActorRef sink, IActorRef supervisor, PipelineJob job, IngestSettings settings, IActorRef? observer, FrameImages? images = null)
    {
        _images = images;
        _source = source;
        _sink = sink;
        _supervisor = supervisor;
        _settings = settings;
        _observer = observer;
        _job = job;

        Receive<JobAccepted>(_ => { });
        Receive<PlanActivated>(OnPlan);
        Receive<FrameReceived>(OnReceived);
        Receive<FrameRejected>(rejected =>
        {
            if (_inFlight.TryGetValue(rejected.FrameId, out var f) && !f.Done && rejected.Attempt == f.Frame.Attempt)
            {
                Retry(f, $"stage {rejected.StageIndex} failed: {rejected.Reason}");
            }
        });
        Receive<Register>(_ => _supervisor.Tell(_job));
        Receive<SourceFault>(fault => Event($"source {fault.SourceId}: {fault.Message}{(fault.Ended ? " (source ended)" : string.Empty)}"));
        Receive<Capture>(_ => CaptureLive());
        Receive<CheckDeadlines>(_ => CheckTimeouts());
        Receive<GetIngestStats>(_ => Sender.Tell(new IngestStats(_nextId, _skipped, _resent, _replayed, _failed, _deliveredThrough, _ended, _epoch, _plan, _events.ToList()) { Plans = _plans.ToList() }));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IFrameSource source, IActorRef sink, IActorRef supervisor, PipelineJob job, IngestSettings settings, IActorRef? observer, FrameImages? images = null) =>
        Akka.Actor.Props.Create(() => new IngestActor(source, sink, supervisor, job, settings, observer, images));

    protected override void PreStart()
    {
        _job = _job with { Ingest = Self };
        if (_source is IReportsFaults reporting)
        {
            // A camera that drops or a corrupt picture is reported, never a crash of the ingest.
            var self = Self;
            reporting.Faults.Reported += fault => self.Tell(fault);
        }

        Timers.StartPeriodicTimer("register", Register.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        Timers.StartPeriodicTimer("deadlines", CheckDeadlines.Instance, TimeSpan.FromMilliseconds(100));
    }

    protected override void PostStop() => _source.Dispose();

    private bool HasCredit => _heads.Count > 0 && _nextId - (_deliveredThrough + 1) < _settings.Window;

    private void OnPlan(PlanActivated plan)
    {
        if (plan.Epoch < _epoch)
        {
            return;
        }

        var replay = plan.Epoch > _epoch && _epoch >= 0;
        if (_source.FramesPerSecond > 0 && _plan is null)
        {
            // The camera starts when the pipeline can take its first frame.
            Timers.StartPeriodicTimer("capture", Capture.Instance, TimeSpan.FromSeconds(1 / _source.FramesPerSecond));
        }

        _epoch = plan.Epoch;
        _plan = plan;
        _heads = plan.Heads;
        Event($"plan epoch {plan.Epoch} live ({plan.Reason.Text()}): {string.Join(" -> ", plan.Placements.Select(p => p.Node))}");
        if (_plans.Count >= 1000)
        {
            _plans.RemoveRange(0, 250);
        }

        _plans.Add((Stopwatch.GetTimestamp(), plan.Epoch, plan.Reason));
        if (replay)
        {
            // Frames in flight on the old plan may be gone with a node; send them again under the new epoch.
            foreach (var f in _inFlight.Values.Where(f => !f.Done))
            {
                _replayed++;
                PipelineMetrics.FramesReplayed.Add(1);
                Send(f, f.Frame.Attempt);
            }
        }

        Pump();
    }

    private void OnReceived(FrameReceived received)
    {
        if (_inFlight.TryGetValue(received.FrameId, out var f) && !f.Done)
        {
            f.Done = true;
            PipelineMetrics.InFlight.Add(-1);
            if (f.Frame.Attempt == 1)
            {
                _confirmMs[_confirmations++ % _confirmMs.Length] = Stopwatch.GetElapsedTime(f.SentAt).TotalMilliseconds;
            }
        }

        // Credit is keyed by frame id: a frame confirmed twice frees its place once.
        if (received.DeliveredThrough > _deliveredThrough)
        {
            _deliveredThrough = received.DeliveredThrough;
            while (_inFlight.Count > 0 && _inFlight.First().Key <= _deliveredThrough)
            {
                _inFlight.Remove(_inFlight.First().Key);
            }
        }

        Pump();
        CheckCompleted();
    }

    private void Pump()
    {
        while (HasCredit)
        {
            if (_pendingLive is { } pending)
            {
                _pendingLive = null;
                Accept(pending.Tensors, pending.Capture);
                continue;
            }

            if (_source.IsLive || _ended)
            {
                return;
            }

            if (_source.FramesPerSecond > 0)
            {
                // A clip played at its frame rate: one frame per tick, never skipped.
                if (_owed == 0)
                {
                    return;
                }

                _owed--;
            }

            var tensors = _source.Read();
            if (tensors is null)
            {
                _ended = true;
                CheckCompleted();
                return;
            }

            Accept(tensors, NowMicros());
        }
    }

    private void CaptureLive()
    {
        if (_ended)
        {
            return;
        }

        if (!_source.IsLive)
        {
            _owed = 1;
            Pump();
            return;
        }

        var tensors = _source.Read();
        if (tensors is null)
        {
            _ended = true;
            if (_pendingLive is not null)
            {
                _skipped++;
                _pendingLive = null;
            }

            CheckCompleted();
            return;
        }

        if (_pendingLive is not null)
        {
            _skipped++; // the pipeline is full: the oldest unsent frame gives way to the newest
            PipelineMetrics.FramesSkipped.Add(1);
        }

        _pendingLive = (tensors, NowMicros());
        Pump();
    }

    private void Accept(IReadOnlyList<FrameTensor> tensors, long capture)
    {
        var frame = new Frame(_nextId++, _source.Id, _epoch, capture, 1, tensors);
        PipelineMetrics.FramesAccepted.Add(1);
        PipelineMetrics.InFlight.Add(1);
        if (_images is not null && tensors.Count > 0 && tensors[0].Shape.Length == 4)
        {
            _images.Put(frame.FrameId, tensors[0]);
        }

        var f = new InFlight(frame);
        _inFlight[frame.FrameId] = f;
        Send(f, 1);
    }

    private void Send(InFlight f, int attempt)
    {
        f.Frame = f.Frame with { Epoch = _epoch, Attempt = attempt };
        f.SentAt = Stopwatch.GetTimestamp();
        var head = _heads[(int)(f.Frame.FrameId % _heads.Count)];
        FrameLink.Send(head, f.Frame, Self, _settings.ChunkBytes);
    }

    private void CheckTimeouts()
    {
        if (_heads.Count == 0)
        {
            return;
        }

        var deadline = Deadline();
        foreach (var f in _inFlight.Values.Where(f => !f.Done && Stopwatch.GetElapsedTime(f.SentAt) > deadline).ToList())
        {
            Retry(f, $"no result within {deadline.TotalMilliseconds:0} ms");
        }
    }

    private TimeSpan Deadline()
    {
        var count = (int)Math.Min(_confirmations, _confirmMs.Length);
        if (count < 8)
        {
            return _settings.MinDeadline;
        }

        var samples = _confirmMs.Take(count).Order().ToArray();
        var p95 = samples[Math.Min(count - 1, (int)(0.95 * count))];
        return TimeSpan.FromMilliseconds(Math.Max(_settings.MinDeadline.TotalMilliseconds, 4 * p95));
    }

    private void Retry(InFlight f, string reason)
    {
        if (f.Frame.Attempt >= _settings.MaxAttempts)
        {
            f.Done = true;
            _failed++;
            PipelineMetrics.InFlight.Add(-1);
            PipelineMetrics.FramesFailed.Add(1);
            _log.Warning("Frame {0} failed after {1} attempts: {2}", f.Frame.FrameId, f.Frame.Attempt, reason);
            Event($"frame {f.Frame.FrameId} failed after {f.Frame.Attempt} attempts: {reason}");
            _sink.Tell(new FrameFailed(f.Frame.FrameId, $"{reason} (after {f.Frame.Attempt} attempts)"));
            return;
        }

        _resent++;
        PipelineMetrics.FramesResent.Add(1);
        Send(f, f.Frame.Attempt + 1);
    }

    private void CheckCompleted()
    {
        if (_ended && !_completed && _deliveredThrough == _nextId - 1)
        {
            _completed = true;
            Event($"source ended; all {_nextId} frames have an outcome");
            _observer?.Tell(new IngestCompleted(_nextId));
        }
    }

    private void Event(string text)
    {
        if (_events.Count >= 1000)
        {
            _events.RemoveRange(0, 250); // bounded, like every buffer here
        }

        _events.Add((Stopwatch.GetTimestamp(), text));
        _log.Info("ingest: {0}", text);
    }

    private static long NowMicros() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;

    private sealed class InFlight(Frame frame)
    {
        public Frame Frame { get; set; } = frame;

        public long SentAt { get; set; }

        public bool Done { get; set; }
    }

    private sealed class Register
    {
        public static readonly Register Instance = new();
    }

    private sealed class Capture
    {
        public static readonly Capture Instance = new();
    }

    private sealed class CheckDeadlines
    {
        public static readonly CheckDeadlines Instance = new();
    }
}
