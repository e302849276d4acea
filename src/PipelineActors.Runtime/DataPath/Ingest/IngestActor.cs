using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Ingest;

/// <summary>How the ingest paces and guards frames.</summary>
/// <param name="Window">Frames in flight at most (end-to-end credit); about the stage count, plus a little.</param>
/// <param name="MinDeadline">A frame unconfirmed this long (or 4x the p95 confirmation time, if larger) is re-sent.</param>
/// <param name="MaxAttempts">Sends after which a frame is reported failed (a poison frame).</param>
public sealed record IngestSettings(int Window, TimeSpan MinDeadline, int MaxAttempts, int ChunkBytes)
{
    /// <summary>
    /// Replays after the loss of a worker a frame may have before it is failed (a frame that crashes its worker sends
    /// no rejection); the default is <c>pipeline.ingest.max-crashes</c> in hocon/reference.conf.
    /// </summary>
    public int MaxCrashes { get; init; } = 2;

    /// <summary>Hand each frame's first input tensor (its pixels) to the sink, for a writer that draws results on them.</summary>
    public bool PixelsToSink { get; init; }

    /// <summary>The first frame's id: a job that resumes (on this node or another) continues after the last id it issued.</summary>
    public long FirstId { get; init; }

    /// <summary>
    /// Tell the supervisor the job ended once every frame has an outcome, so its stages stop. A harness that still reads
    /// the stages' counters after the run turns it off and ends the job itself.
    /// </summary>
    public bool EndsJob { get; init; } = true;
}

/// <summary>
/// Stop taking frames from the source (a job being stopped): the frames in flight still complete, then the ingest reports
/// <see cref="IngestCompleted"/> as if the source had ended.
/// </summary>
public sealed class EndSource : INoSerializationVerificationNeeded
{
    public static readonly EndSource Instance = new();

    private EndSource()
    {
    }
}

/// <summary>A plan whose results keep arriving later than the minimum deadline: a stage of it runs slower than planned.</summary>
/// <param name="Epoch">The plan's epoch.</param>
/// <param name="LatencyMsP95">The p95 of recent confirmation times when it was noticed.</param>
/// <param name="ExpectedMs">The time a result was expected in (the minimum deadline).</param>
/// <param name="Stages">The plan's stages, for a planner that moves or sheds load from the slow one.</param>
public sealed record SlowPlan(long Epoch, double LatencyMsP95, double ExpectedMs, IReadOnlyList<StagePlacement> Stages);

/// <summary>Ask the ingest for its counters.</summary>
public sealed class GetIngestStats
{
    public static readonly GetIngestStats Instance = new();

    private GetIngestStats()
    {
    }
}

/// <summary>The ingest's counters and the live plan.</summary>
public sealed record IngestStats(
    long Accepted,
    long Skipped,
    long Resent,
    long Replayed,
    long Failed,
    long DeliveredThrough,
    bool SourceEnded,
    long Epoch,
    PlanActivated? Plan,
    IReadOnlyList<(long Ticks, string Text)> Events)
{
    /// <summary>When each plan went live (Stopwatch ticks), its epoch and why; the newest 1,000.</summary>
    public IReadOnlyList<(long Ticks, long Epoch, PlanReason Reason)> Plans { get; init; } = [];

    /// <summary>The id the first frame got; <see cref="Accepted"/> counts ids, so a resumed job's frames are Accepted - FirstId.</summary>
    public long FirstId { get; init; }

    /// <summary>Plans found slower than planned, oldest first (the newest 100).</summary>
    public IReadOnlyList<SlowPlan> SlowPlans { get; init; } = [];

    /// <summary>What the first hop carries: <c>raw</c> pixels, or the JPEG codec the plan's first stage decodes (<c>jpeg:90</c>).</summary>
    public string FirstHop { get; init; } = Transfer.FirstHop.Raw;

    /// <summary>The tensor bytes of the admitted frames as they left for the first stage (JPEG where the first hop is).</summary>
    public long FirstHopBytes { get; init; }

    /// <summary>The same frames' tensor bytes as the source gave them (raw pixels).</summary>
    public long FirstHopRawBytes { get; init; }

    /// <summary>Frames the first-hop counters cover (each admitted frame once, however often it was sent).</summary>
    public long FirstHopFrames { get; init; }

    /// <summary>Milliseconds spent encoding the first hop, all frames together.</summary>
    public double FirstHopEncodeMs { get; init; }
}

/// <summary>Sent to the observer when the source has ended and every accepted frame has an outcome.</summary>
/// <param name="Frames">The id after the last frame: the frames accepted, counted from the job's first id.</param>
public sealed record IngestCompleted(long Frames) : INoSerializationVerificationNeeded;

/// <summary>Sent to the observer when the ingest failed and stopped: the run cannot complete.</summary>
public sealed record IngestFailed(string Reason) : INoSerializationVerificationNeeded
{
    /// <summary>The id no frame of the failed ingest got: a resumed job starts here (<see cref="IngestSettings.FirstId"/>), reusing none.</summary>
    public long NextFrameId { get; init; }
}

/// <summary>
/// The camera-feed ingest, thin over pure state: a <see cref="SourceReader"/> reads the source on
/// its own thread, an <see cref="InFlightWindow"/> numbers frames, holds credit and decides
/// re-sends, replays and failures; this actor routes their decisions to the head of the live
/// plan, the sink and the supervisor, and runs the timers. It never blocks while it runs (stopping
/// waits briefly for the reader's thread).
/// </summary>
public sealed class IngestActor : ReceiveActor, IWithTimers
{
    /// <summary>The dispatcher the ingest runs on (hocon/reference.conf).</summary>
    public const string Dispatcher = "pipeline.ingest-dispatcher";

    private const int EventsKept = 1000;
    private const int SlowPlansKept = 100;
    private static readonly TimeSpan RegisterInterval = TimeSpan.FromSeconds(1);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly IFrameSource _source;
    private readonly IActorRef _sink;
    private readonly IActorRef _supervisor;
    private readonly IngestSettings _settings;
    private readonly IActorRef? _observer;
    private readonly InFlightWindow _window;
    private readonly NodeLimits _limits;
    private readonly List<(long, string)> _events = [];
    private readonly List<(long, long, PlanReason)> _plans = [];
    private readonly List<SlowPlan> _slowPlans = [];
    private readonly FirstHopEncoding? _firstHop;
    private long _firstHopBytes;
    private long _firstHopRawBytes;
    private long _firstHopFrames;
    private long _firstHopEncodeTicks;
    private PipelineJob _job;
    private SourceReader? _reader;
    private Action<SourceFault>? _onFault;
    private IActorRef? _acknowledgedBy;
    private IReadOnlyList<IActorRef> _heads = [];
    private bool _draining;
    private PlanActivated? _plan;
    private long _skippedCounted;
    private bool _sourceEnded;
    private bool _completed;

    public IngestActor(IFrameSource source, IActorRef sink, IActorRef supervisor, PipelineJob job, IngestSettings settings, IActorRef? observer)
        : this(source, sink, supervisor, job, settings, observer, WindowOf(settings))
    {
    }

    /// <param name="window">Held outside the actor (by its props), so an instance made after a failure still knows every id given.</param>
    public IngestActor(
        IFrameSource source,
        IActorRef sink,
        IActorRef supervisor,
        PipelineJob job,
        IngestSettings settings,
        IActorRef? observer,
        InFlightWindow window)
    {
        _source = source;
        _sink = sink;
        _supervisor = supervisor;
        _settings = settings;
        _observer = observer;
        _job = job;
        _window = window;
        _limits = NodeLimits.Of(Context.System);
        _firstHop = FirstHopEncoding.For(job.Splits);

        Receive<JobAccepted>(OnJobAccepted);
        Receive<Terminated>(OnTerminated);
        Receive<Register>(_ => _supervisor.Tell(_job with { LastEpoch = _window.Epoch }));
        Receive<PlanActivated>(OnPlan);
        Receive<EndSource>(_ =>
        {
            if (!_draining)
            {
                _draining = true;
                Event($"stop asked: no more frames from {_source.Id}; draining {_window.Unconfirmed} in flight");
                Pump();
            }
        });
        Receive<SourceReady>(_ => Pump());
        Receive<FrameReceived>(received =>
        {
            // Credit comes from the job's sink, on this node: a peer's confirmation would drop frames it never saw.
            if (!MessageGuard.FromThisNode(Sender))
            {
                MessageGuard.Refuse(_log, "credit-not-from-sink",
                    $"ingest of job {_job.JobId}: a confirmation of frame {received.FrameId} from {Sender.Path}");
                return;
            }

            var wasSlow = _window.SlowEpoch;
            if (_window.Confirm(received.FrameId, received.DeliveredThrough, _clock.Elapsed))
            {
                PipelineMetrics.InFlight.Add(-1);
            }

            if (_window.SlowEpoch is { } slow && slow != wasSlow)
            {
                ReportSlow(slow);
            }

            Pump();
        });
        Receive<FrameRejected>(rejected =>
        {
            var reason = $"stage {rejected.StageIndex} failed: {rejected.Reason}";
            if (_window.Reject(rejected.FrameId, rejected.Attempt, reason, _clock.Elapsed, out var retry))
            {
                Carry(retry);
            }
        });
        Receive<CheckDeadlines>(_ =>
        {
            if (_heads.Count > 0)
            {
                foreach (var retry in _window.Expired(_clock.Elapsed))
                {
                    Carry(retry);
                }
            }
        });
        Receive<SourceFault>(fault => Event($"source {fault.SourceId}: {fault.Message}{(fault.Ended ? " (source ended)" : string.Empty)}"));
        Receive<GetIngestStats>(_ => Sender.Tell(Stats()));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The ingest's props; every instance made from them shares one window, so ids are never given twice.</summary>
    public static Props Props(
        IFrameSource source, IActorRef sink, IActorRef supervisor, PipelineJob job, IngestSettings settings, IActorRef? observer)
    {
        var window = WindowOf(settings);
        return Akka.Actor.Props.Create(() => new IngestActor(source, sink, supervisor, job, settings, observer, window)).WithDispatcher(Dispatcher);
    }

    protected override void PreStart()
    {
        _job = _job with { Ingest = Self };
        var self = Self;
        _reader = new SourceReader(_source, self);
        if (_source is IReportsFaults reporting)
        {
            // A camera that drops or a corrupt picture is reported, never a crash of the ingest.
            _onFault = fault => self.Tell(fault);
            reporting.Faults.Reported += _onFault;
        }

        StartRegistering();
        Timers.StartPeriodicTimer("deadlines", CheckDeadlines.Instance, TimeSpan.FromMilliseconds(100));
        if (_firstHop is not null)
        {
            Event($"first hop {_firstHop.Text}: the ingest encodes {_firstHop.Tensors} as JPEG; the stages that read it decode it");
        }
    }

    protected override void PostStop()
    {
        if (_onFault is not null && _source is IReportsFaults reporting)
        {
            reporting.Faults.Reported -= _onFault;
        }

        // Stops the reader's thread and disposes the source: nothing reads it after the ingest is gone.
        _reader?.Dispose();
    }

    protected override void PostRestart(Exception reason)
    {
        // A restarted ingest would number frames from 0 again (the sink drops them as duplicates) and
        // its source was disposed when the failed instance stopped: it stops instead, and says why.
        // The window outlives the failed instance, so the observer learns where a resumed job may continue numbering.
        var why = $"the ingest of job {_job.JobId} failed ({reason.GetType().Name}: {reason.Message}) and stopped";
        _log.Error(reason, "{0}; a restart cannot resume its disposed source", why);
        _observer?.Tell(new IngestFailed(why) { NextFrameId = _window.NextId });
        Context.Stop(Self);
    }

    /// <summary>
    /// Sends the job every second until a supervisor acknowledges it, then watches that supervisor:
    /// when it stops (a handover, its node gone) the job goes out again, through the singleton proxy,
    /// to whichever supervisor comes next. Not covered: a supervisor restarted in place keeps its ref,
    /// so no Terminated comes, yet it has forgotten the job; that case is the supervisor's to handle.
    /// </summary>
    private void StartRegistering()
    {
        Timers.StartPeriodicTimer("register", Register.Instance, TimeSpan.Zero, RegisterInterval);
    }

    private void OnJobAccepted(JobAccepted accepted)
    {
        // An acknowledgement without a sender names no supervisor to watch; keep registering.
        if (accepted.JobId != _job.JobId || Sender.IsNobody())
        {
            return;
        }

        if (!MessageGuard.FromSupervisorNode(Context.System, Sender))
        {
            MessageGuard.Refuse(_log, "acceptance-not-from-supervisor",
                $"ingest of job {_job.JobId}: accepted by {Sender.Path}, not the supervisor's node");
            return;
        }

        Timers.Cancel("register");
        if (!Sender.Equals(_acknowledgedBy))
        {
            if (_acknowledgedBy is not null)
            {
                Context.Unwatch(_acknowledgedBy);
            }

            _acknowledgedBy = Sender;
            Context.Watch(Sender);
            Event($"job {_job.JobId} accepted by {Sender.Path}");
        }
    }

    private void OnTerminated(Terminated terminated)
    {
        if (terminated.ActorRef.Equals(_acknowledgedBy))
        {
            _acknowledgedBy = null;
            Event($"the supervisor that accepted job {_job.JobId} is gone; registering the job again");
            StartRegistering();
        }
    }

    private void OnPlan(PlanActivated plan)
    {
        // Refused without an acknowledgement, so the real supervisor, if it sent this, sends it again (its node may be one
        // this node does not yet see as the oldest coordinator).
        if (!MessageGuard.FromSupervisorNode(Context.System, Sender))
        {
            MessageGuard.Refuse(_log, "plan-not-from-supervisor",
                $"ingest of job {_job.JobId}: plan epoch {plan.Epoch} from {Sender.Path}, not the supervisor's node");
            return;
        }

        if (plan.JobId != _job.JobId || !_limits.EpochWithinStep(plan.Epoch, _window.Epoch))
        {
            MessageGuard.Refuse(_log, "plan-out-of-step",
                $"ingest of job {_job.JobId}: plan of job {plan.JobId} epoch {plan.Epoch} after epoch {_window.Epoch}");
            return;
        }

        // Acknowledged even when stale: the supervisor re-sends its activation until it hears this (review R8).
        Sender.Tell(new PlanAcknowledged(_job.JobId, Math.Max(plan.Epoch, _window.Epoch)));
        var change = _window.EnterEpoch(plan.Epoch, _clock.Elapsed, plan.Reason == PlanReason.Recovery, out var replay, out var quarantined);
        if (change == EpochChange.Stale)
        {
            return;
        }

        if (change == EpochChange.First)
        {
            // The camera starts when the pipeline can take its first frame.
            _reader!.Start();
        }

        _plan = plan;
        _heads = plan.Heads;
        Event($"plan epoch {plan.Epoch} live ({plan.Reason.Text()}): {string.Join(" -> ", plan.Placements.Select(p => p.Node))}");
        if (_plans.Count >= EventsKept)
        {
            _plans.RemoveRange(0, EventsKept / 4);
        }

        _plans.Add((Stopwatch.GetTimestamp(), plan.Epoch, plan.Reason));
        foreach (var frame in replay)
        {
            // Frames in flight on the old plan may be gone with a node; they go again under the new epoch.
            PipelineMetrics.FramesReplayed.Add(1);
            Send(frame);
        }

        foreach (var failed in quarantined)
        {
            Carry(failed);
        }

        Pump();
    }

    /// <summary>Takes waiting frames while there is credit and a plan; notices the source's end.</summary>
    private void Pump()
    {
        var reader = _reader!;
        while (!_draining && _heads.Count > 0 && _window.HasCredit && reader.TryTake() is { } next)
        {
            // A live frame keeps its capture time; a clip's frame enters the pipeline now (it may
            // have waited for credit since it was read).
            var capture = reader.IsLive ? next.CaptureUnixMicros : NowMicros();
            var frame = _window.Admit(_source.Id, capture, FirstHopTensors(next.Tensors), _clock.Elapsed);
            PipelineMetrics.FramesAccepted.Add(1);
            PipelineMetrics.InFlight.Add(1);
            if (_settings.PixelsToSink && next.Tensors.Count > 0 && next.Tensors[0].Shape.Length == 4)
            {
                // Told before the frame leaves: the sink (on this node) has the pixels (never the JPEG) before any result.
                _sink.Tell(new FramePixels(frame.FrameId, next.Tensors[0]));
            }

            Send(frame);
        }

        CountSkipped();
        if (!_sourceEnded && (reader.Exhausted || _draining))
        {
            _sourceEnded = true;
            if (reader.Error is { } error)
            {
                Event($"source {_source.Id} failed and ends: {error}");
            }
        }

        if (_sourceEnded && !_completed && _window.AllDelivered)
        {
            _completed = true;
            Event($"source ended; all {_window.Accepted} frames have an outcome");
            _observer?.Tell(new IngestCompleted(_window.NextId));

            // The job's stages are no use to anyone now: its supervisor stops them.
            if (_settings.EndsJob)
            {
                _supervisor.Tell(new JobEnded(_job.JobId));
            }
        }
    }

    /// <summary>
    /// The source's tensors as the first hop carries them: encoded once, at admission, so a re-sent or replayed frame
    /// carries the same bytes; counted for the run's report.
    /// </summary>
    private IReadOnlyList<HostTensor> FirstHopTensors(IReadOnlyList<HostTensor> tensors)
    {
        var sent = tensors;
        if (_firstHop is not null)
        {
            var start = Stopwatch.GetTimestamp();
            sent = _firstHop.Encode(tensors);
            _firstHopEncodeTicks += Stopwatch.GetTimestamp() - start;
        }

        _firstHopFrames++;
        _firstHopRawBytes += tensors.Sum(t => (long)t.Data.Length);
        _firstHopBytes += sent.Sum(t => (long)t.Data.Length);
        return sent;
    }

    private void Carry(FrameRetry retry)
    {
        if (!retry.Failed)
        {
            PipelineMetrics.FramesResent.Add(1);
            Send(retry.Frame);
            return;
        }

        var (id, attempts) = (retry.Frame.FrameId, retry.Frame.Attempt);
        PipelineMetrics.InFlight.Add(-1);
        PipelineMetrics.FramesFailed.Add(1);
        _log.Warning("Frame {0} failed after {1} attempts: {2}", id, attempts, retry.Reason);
        Event($"frame {id} failed after {attempts} attempts: {retry.Reason}");
        _sink.Tell(new FrameFailed(id, $"{retry.Reason} (after {attempts} attempts)"));
    }

    private void Send(Frame frame)
    {
        if (_heads.Count > 0)
        {
            var head = _heads[(int)(frame.FrameId % _heads.Count)];
            FrameLink.Send(head, frame, Self, _settings.ChunkBytes);
        }
    }

    private void CountSkipped()
    {
        var skipped = _reader!.Skipped;
        if (skipped > _skippedCounted)
        {
            PipelineMetrics.FramesSkipped.Add(skipped - _skippedCounted);
            _skippedCounted = skipped;
        }
    }

    private IngestStats Stats()
    {
        CountSkipped();
        return new IngestStats(
            _window.NextId, _skippedCounted, _window.Resent, _window.Replayed, _window.Failed, _window.DeliveredThrough,
            _sourceEnded, _window.Epoch, _plan, _events.ToList())
        {
            Plans = _plans.ToList(),
            FirstId = _window.FirstId,
            SlowPlans = _slowPlans.ToList(),
            FirstHop = _firstHop?.Text ?? Transfer.FirstHop.Raw,
            FirstHopBytes = _firstHopBytes,
            FirstHopRawBytes = _firstHopRawBytes,
            FirstHopFrames = _firstHopFrames,
            FirstHopEncodeMs = _firstHopEncodeTicks * 1000.0 / Stopwatch.Frequency,
        };
    }

    /// <summary>
    /// The live plan's results keep coming later than expected: said once per plan, on the monitor topic and a counter,
    /// and kept in the stats for a planner. The deadline has already adapted, so frames are not re-sent for it.
    /// </summary>
    private void ReportSlow(long epoch)
    {
        if (_plan is not { } plan || plan.Epoch != epoch || _slowPlans.Any(p => p.Epoch == epoch))
        {
            return;
        }

        var slow = new SlowPlan(epoch, _window.LatencyMsP95, _settings.MinDeadline.TotalMilliseconds, plan.Placements);
        if (_slowPlans.Count >= SlowPlansKept)
        {
            _slowPlans.RemoveAt(0);
        }

        _slowPlans.Add(slow);
        PipelineMetrics.PlansSlow.Add(1);
        var stages = string.Join(", ", plan.Placements.Select(p => $"stage {p.Index} on {p.Node} (layers {p.Layers})"));
        var text = $"plan epoch {epoch} is slower than planned: its last {InFlightWindow.LateBeforeSlow} results each took over "
            + $"{slow.ExpectedMs:0} ms (p95 {slow.LatencyMsP95:0} ms); a stage of {stages} cannot keep pace";
        Event(text);
        MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), "ingest", text));
    }

    private static InFlightWindow WindowOf(IngestSettings settings) =>
        new(settings.Window, settings.MinDeadline, settings.MaxAttempts, settings.FirstId, settings.MaxCrashes);

    private void Event(string text)
    {
        if (_events.Count >= EventsKept)
        {
            _events.RemoveRange(0, EventsKept / 4);
        }

        _events.Add((Stopwatch.GetTimestamp(), text));
        _log.Info("ingest: {0}", text);
    }

    private static long NowMicros() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;

    private sealed class Register
    {
        public static readonly Register Instance = new();
    }

    private sealed class CheckDeadlines
    {
        public static readonly CheckDeadlines Instance = new();
    }
}
