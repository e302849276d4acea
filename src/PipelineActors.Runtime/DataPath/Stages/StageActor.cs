using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Onnx.Graph;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.Onnx.Cost;
using PipelineActors.Transfer.Codecs;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Stages;

/// <summary>Stage to its worker agent: loaded and warmed up.</summary>
internal sealed record StageReady(int Parts, int Index, double WarmupMs) : INoSerializationVerificationNeeded;

/// <summary>Stage to its worker agent: could not load.</summary>
internal sealed record StageLoadFailed(int Parts, int Index, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Stage to its worker agent: it cannot go on (its session broke, or what it computes cannot be sent) and stops.</summary>
internal sealed record StageBroken(int Parts, int Index, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Stage to its worker agent: wired for an epoch (reported to a new supervisor).</summary>
internal sealed record StageWiredLocally(int Parts, int Index, long Epoch) : INoSerializationVerificationNeeded;

/// <summary>
/// Hosts one partition of the model. Runs on a pinned thread of its own (the stage dispatcher),
/// so a long inference never delays the cluster's heartbeats; receives frames (whole or in
/// chunks), runs them, and sends the result to a successor chosen by frame id.
/// </summary>
public sealed class StageActor : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly int _parts;
    private readonly StageSpec _spec;
    private readonly string _modelPath;
    private readonly int _threads;
    private readonly int _chunkBytes;
    private readonly NodeLimits _limits;
    private FrameAssembler _assembler;
    private PlannedInputs? _planned;
    private readonly LinkDelay? _delay;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly double[] _computeMs = new double[512];
    private readonly ModelCache? _cache;
    private IDisposable? _lease;
    private StageSession? _session;
    private CutCoding? _coding;
    private long _epoch = -1;
    private IReadOnlyList<IActorRef> _successors = [];
    private IActorRef _ingest = ActorRefs.Nobody;
    private long _frames;
    private long _dropped;
    private long _bytesIn;
    private long _bytesOut;
    private double _busyMs;
    private long _firstFrameAt;

    public StageActor(int parts, StageSpec spec, string modelPath, int intraOpThreads, int chunkBytes, TimeSpan linkDelay, ModelCache? cache = null)
    {
        _cache = cache;
        _parts = parts;
        _spec = spec;
        _modelPath = modelPath;
        _threads = intraOpThreads;
        _chunkBytes = chunkBytes;
        _delay = linkDelay > TimeSpan.Zero ? new LinkDelay(linkDelay) : null;

        // Built once: every chunk and frame records metrics under the same tags.
        _tags = [new("stage", spec.Index), new("parts", parts)];

        _limits = NodeLimits.Of(Context.System);
        _assembler = new FrameAssembler(_limits.Assembly(64));
        Receive<WireStage>(wire =>
        {
            if (!MessageGuard.FromSupervisorNode(Context.System, Sender))
            {
                MessageGuard.Refuse(_log, "wiring-not-from-supervisor",
                    $"stage {_spec.Index}/{_parts}: wiring for epoch {wire.Epoch} from {Sender.Path}, not the supervisor's node");
                return;
            }

            if (!_limits.EpochWithinStep(wire.Epoch, _epoch))
            {
                MessageGuard.Refuse(_log, "epoch-out-of-step", $"stage {_spec.Index}/{_parts}: wiring for epoch {wire.Epoch} after {_epoch}");
                return;
            }

            if (wire.Epoch >= _epoch)
            {
                _epoch = wire.Epoch;
                _successors = wire.Successors;
                _ingest = wire.Ingest;
                Context.Parent.Tell(new StageWiredLocally(_parts, _spec.Index, _epoch));
            }

            Sender.Tell(new StageWired(wire.JobId, wire.Epoch, _parts, _spec.Index));
        });
        Receive<Frame>(frame =>
        {
            // Bytes in and out are counted as they crossed the link (encoded, zero-suppressed), the unit FrameLink.Send returns.
            Received(FrameLink.Received(frame, Sender));
            Handle(frame);
        });
        Receive<FrameChunk>(chunk =>
        {
            Received(FrameLink.Received(chunk));
            // Before the assembler holds anything for it: a frame bigger than this stage's inputs need is never put together.
            // (The assembler's limits are the plan's too; asked first, the plan says why in its own words.)
            if (_planned?.ChunkRefusal(chunk) is { } oversized)
            {
                MessageGuard.Refuse(_log, "frame-past-plan", $"stage {_spec.Index}/{_parts}: {oversized}");
                Reject(chunk.FrameId, chunk.Epoch, chunk.Attempt, oversized);
                return;
            }

            if (_assembler.Refusal(chunk) is { } malformed)
            {
                MessageGuard.Refuse(_log, "malformed-chunk", $"stage {_spec.Index}/{_parts}: {malformed}");
                Reject(chunk.FrameId, chunk.Epoch, chunk.Attempt, malformed);
                return;
            }

            Frame? frame;
            try
            {
                frame = _assembler.Add(chunk, Sender);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Chunks that do not decode to a frame are the sender's fault, not the stage's: reject that attempt, keep serving.
                Reject(chunk.FrameId, chunk.Epoch, chunk.Attempt, $"its chunks do not decode to a frame: {FirstLine(e)}");
                return;
            }

            if (frame is not null)
            {
                Handle(frame);
            }
        });
        Receive<GetStageStats>(_ => Sender.Tell(Stats()));
        Receive<PublishReport>(_ =>
        {
            if (_epoch >= 0)
            {
                MonitorTopic.Publish(Context.System, new StageReport(MonitorTopic.Now(), Stats(), _assembler.Partial, Self));
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The stage's props; <paramref name="linkDelay"/> is added before each frame leaves for a remote actor.</summary>
    public static Props Props(int parts, StageSpec spec, string modelPath, int intraOpThreads, int chunkBytes, TimeSpan linkDelay = default) =>
        Akka.Actor.Props.Create(() => new StageActor(parts, spec, modelPath, intraOpThreads, chunkBytes, linkDelay))
            .WithDispatcher("pipeline.stage-dispatcher");

    /// <summary>A stage whose model comes from a node's cache, held there (never evicted) while the stage lives.</summary>
    public static Props Props(int parts, StageSpec spec, ModelCache cache, int intraOpThreads, int chunkBytes, TimeSpan linkDelay = default) =>
        Akka.Actor.Props.Create(() => new StageActor(parts, spec, cache.PathOf(spec.File.Sha256), intraOpThreads, chunkBytes, linkDelay, cache))
            .WithDispatcher("pipeline.stage-dispatcher");

    protected override void PreStart()
    {
        try
        {
            // Loaded from the bytes that were hashed, not from the path: the file cannot change between check and load.
            _lease = _cache?.Use(_spec.File.Sha256);
            _session = new StageSession(ModelCache.ReadVerified(_modelPath, _spec.File.Sha256), _threads);
            var session = _session;
            _coding = CutCoding.For(_spec, name => session.StaticInputShape(name) is { } shape ? DecodeLimits.For(shape) : DecodeLimits.Default);

            // The model is the plan's (its hash is in the spec), so what it declares is what the plan sends this stage.
            _planned = new PlannedInputs(_spec, _session.DeclaredInputs, _limits.Wire);
            _assembler = new FrameAssembler(_limits.Assembly(64) with { Wire = _planned.Wire });
            var warmup = _session.WarmUp(_session.WarmUpInputs());
            Context.Parent.Tell(new StageReady(_parts, _spec.Index, warmup));
            Timers.StartPeriodicTimer("report", PublishReport.Instance, TimeSpan.FromSeconds(1));
        }
        catch (Exception e)
        {
            Context.Parent.Tell(new StageLoadFailed(_parts, _spec.Index, FirstLine(e)));
            Context.Stop(Self);
        }
    }

    protected override void PostStop()
    {
        _session?.Dispose();
        _delay?.Dispose();
        _lease?.Dispose();
    }

    private void Received(long bytes)
    {
        _bytesIn += bytes;
        PipelineMetrics.StageBytesIn.Add(bytes, _tags);
    }

    private void Handle(Frame frame)
    {
        if (frame.Epoch < _epoch || _successors.Count == 0 || _session is null)
        {
            // A frame of an older plan: the ingest replays it under the new epoch.
            _dropped++;
            return;
        }

        if (frame.FrameId < 0 || frame.Attempt < 1)
        {
            Reject(frame.FrameId, frame.Epoch, frame.Attempt, $"frame id {frame.FrameId} attempt {frame.Attempt} is not a frame the ingest numbers");
            return;
        }

        if (_firstFrameAt == 0)
        {
            _firstFrameAt = Stopwatch.GetTimestamp();
        }

        IReadOnlyList<HostTensor> inputs;
        try
        {
            inputs = _coding?.Decode(frame.Tensors) ?? frame.Tensors;
        }
        catch (CutCodingException e)
        {
            // The sender's bytes or plan are wrong, not this stage: this attempt fails, the stage keeps serving.
            Reject(frame.FrameId, frame.Epoch, frame.Attempt, e.Message);
            return;
        }

        // Held to the plan before ONNX Runtime sees it: a whole frame was decoded within this node's limits only. Coded
        // cut tensors are checked as decoded (their own decode limits come from the same declared shapes).
        var decoded = ReferenceEquals(inputs, frame.Tensors) ? frame : frame with { Tensors = inputs };
        if (_planned?.Refusal(decoded) is { } offPlan)
        {
            MessageGuard.Refuse(_log, decoded.Bytes > _planned.FrameBytes ? "frame-past-plan" : "frame-off-plan",
                $"stage {_spec.Index}/{_parts}: {offPlan}");
            Reject(frame.FrameId, frame.Epoch, frame.Attempt, offPlan);
            return;
        }

        var start = Stopwatch.GetTimestamp();
        IReadOnlyList<HostTensor> produced;
        try
        {
            produced = _session.Run(inputs);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Warning("Stage {0}/{1} failed on frame {2}: {3}", _spec.Index, _parts, frame.FrameId, e.Message);
            Reject(frame.FrameId, frame.Epoch, frame.Attempt, FirstLine(e));
            if (_session.Broken)
            {
                Break($"its ONNX Runtime session could not recover after frame {frame.FrameId} failed ({FirstLine(e)})");
            }

            return;
        }

        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        _computeMs[_frames % _computeMs.Length] = elapsed;
        PipelineMetrics.StageFrames.Add(1, _tags);
        PipelineMetrics.StageCompute.Record(elapsed, _tags);
        _busyMs += elapsed;
        _frames++;

        var tensors = new List<HostTensor>(produced.Count + _spec.Forwarded.Count);
        try
        {
            tensors.AddRange(_coding?.Encode(produced) ?? produced);
        }
        catch (Exception e) when (e is ArgumentException or TensorCodecException)
        {
            // A tensor the plan's calibration does not fit (another channel count): this frame fails, the next may not.
            Reject(frame.FrameId, frame.Epoch, frame.Attempt, $"its cut tensors could not be encoded: {FirstLine(e)}");
            return;
        }

        // Forwarded tensors go on as they came: still encoded, where the stage that made them encoded them.
        foreach (var name in _spec.Forwarded)
        {
            var carried = frame.Tensors.FirstOrDefault(t => t.Name == name);
            if (carried is not null)
            {
                tensors.Add(carried);
            }
        }

        var next = frame with { Tensors = tensors };
        var target = _successors[(int)(frame.FrameId % _successors.Count)];
        long sent;
        try
        {
            sent = FrameLink.Send(target, next, Self, _chunkBytes, _delay);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A computed frame that cannot leave is the stage's fault (its settings, its link), so every frame would fail here.
            Reject(frame.FrameId, frame.Epoch, frame.Attempt, $"its result could not be sent on: {FirstLine(e)}");
            Break($"sending frame {frame.FrameId} on failed ({FirstLine(e)})");
            return;
        }

        _bytesOut += sent;
        PipelineMetrics.StageBytesOut.Add(sent, _tags);
    }

    /// <summary>Tells the ingest this attempt of a frame has no result here, so it re-sends or fails it at once instead of at its deadline.</summary>
    private void Reject(long frameId, long epoch, int attempt, string reason)
    {
        if (epoch < _epoch)
        {
            // An attempt of an older plan: the ingest replays it under the new epoch anyway.
            _dropped++;
            return;
        }

        _log.Warning("Stage {0}/{1} rejected frame {2} attempt {3}: {4}", _spec.Index, _parts, frameId, attempt, reason);
        _ingest.Tell(new FrameRejected(frameId, attempt, _spec.Index, reason));
    }

    /// <summary>The stage cannot go on: its worker agent stops it and leaves it out of its reports, so the supervisor places it again.</summary>
    private void Break(string reason)
    {
        _log.Error("Stage {0}/{1} cannot continue: {2}", _spec.Index, _parts, reason);
        Context.Parent.Tell(new StageBroken(_parts, _spec.Index, reason));
        Context.Stop(Self);
    }

    private static string FirstLine(Exception e) => e.Message.Split('\n')[0];

    private StageStats Stats()
    {
        var count = (int)Math.Min(_frames, _computeMs.Length);
        var samples = Percentiles.Sorted(_computeMs.AsSpan(0, count));
        double Percentile(double p) => Percentiles.At(samples, p);
        var wall = _firstFrameAt == 0 ? 0 : Stopwatch.GetElapsedTime(_firstFrameAt).TotalMilliseconds;
        return new StageStats(
            _parts,
            _spec.Index,
            NodeAddress.Of(Context.System),
            _frames,
            Percentile(0.5),
            Percentile(0.95),
            wall <= 0 ? 0 : Math.Min(1, _busyMs / wall),
            _bytesIn,
            _bytesOut,
            _dropped + _assembler.Dropped);
    }

    private sealed class PublishReport
    {
        public static readonly PublishReport Instance = new();
    }
}
