using Akka.Actor;
using PipelineActors.Onnx.Cost;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.Hosting.Security;
using Akka.Event;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Sink;

/// <summary>Tells the sink which ingest to confirm frames to.</summary>
public sealed record AttachIngest(IActorRef Ingest) : INoSerializationVerificationNeeded;

/// <summary>
/// Ingest to sink, on the same node: a frame's first input tensor, to ride on its outcome for a
/// writer that draws results on the picture (<see cref="Ingest.IngestSettings.PixelsToSink"/>).
/// </summary>
public sealed record FramePixels(long FrameId, HostTensor Pixels) : INoSerializationVerificationNeeded;

/// <summary>Ask the sink for its counters.</summary>
public sealed class GetSinkStats
{
    public static readonly GetSinkStats Instance = new();

    private GetSinkStats()
    {
    }
}

/// <summary>Ask the sink for its counters only (cheap enough to poll every second).</summary>
public sealed class GetSinkCounters
{
    public static readonly GetSinkCounters Instance = new();

    private GetSinkCounters()
    {
    }
}

/// <summary>The sink's counters; latencies in milliseconds, capture to delivery, for the most recent frames (bounded).</summary>
public sealed record SinkStats(long Delivered, long Failed, long DuplicatesDropped, long OutOfOrder, long NextExpected, int Buffered,
    IReadOnlyList<double> LatenciesMs, long FirstDeliveryTicks, long LastDeliveryTicks, IReadOnlyList<(long FrameId, long Ticks,
        long Epoch)> Deliveries)
{
    /// <summary>Latency p50, p95 and p99 of the most recent frames (up to 1,000), in milliseconds.</summary>
    public double[] RecentLatencyMs { get; init; } = [0, 0, 0];

    /// <summary>Frames delivered in order whose outcome the writer (a decoder, a full disk, a destination) failed to write.</summary>
    public long FailedToWrite { get; init; }

    /// <summary>Times the sink actor was restarted; its state is kept across each (<see cref="SinkState"/>).</summary>
    public int Restarts { get; init; }
}

/// <summary>
/// Everything a sink knows, held outside the actor so that a restart (whatever its parent's strategy) carries on
/// where it stopped: the next id, buffered results, the ingest to confirm to, the counters. A sink restarted blank
/// would deliver a late duplicate twice and never confirm frames it had buffered, stalling the ingest's window (R3).
/// </summary>
public sealed class SinkState(long firstFrameId, long span)
{
    /// <summary>Made by the first incarnation with the node's limits (<c>pipeline.limits</c>); kept across restarts.</summary>
    internal FrameAssembler? Assembler { get; set; }
    internal ReorderBuffer<(Frame? Frame, string? Failed)> Buffer { get; } = new(firstFrameId, span);
    internal Dictionary<long, HostTensor> Pixels { get; } = [];
    internal List<double> Latencies { get; } = [];
    internal List<(long, long, long)> Deliveries { get; } = [];
    internal IActorRef Ingest { get; set; } = ActorRefs.Nobody;
    internal long Next => Buffer.Next;
    internal long Delivered { get; set; }
    internal long Failed { get; set; }
    internal long Duplicates { get; set; }
    internal long OutOfOrder { get; set; }
    internal long TooFarAhead { get; set; }
    internal long LastDelivered { get; set; } = firstFrameId - 1;
    internal long FirstTicks { get; set; }
    internal long LastTicks { get; set; }
    internal long FailedToWrite { get; set; }
    internal int Restarts { get; set; }
    internal long UnreportedWriteFailures { get; set; }
    internal long LastWriteFailureReportTicks { get; set; }
    internal bool Writing { get; set; } = true;
}

/// <summary>
/// The end of the pipeline: puts results back in frame order, drops duplicates (a re-sent frame
/// may complete twice), tells the ingest each frame it holds (so the ingest stops re-sending it
/// and reuses its credit), and hands each frame's outcome to the result writer exactly once.
/// A writer or decoder that throws costs that one frame (counted in <see cref="SinkStats.FailedToWrite"/>
/// and reported as an event), never the sink: the stream goes on, and writing resumes when the writer does.
/// </summary>
public sealed class SinkActor : ReceiveActor
{
    private const int RecordLimit = 1 << 18;
    private static readonly TimeSpan WriteFailureReportEvery = TimeSpan.FromSeconds(5);
    private readonly IResultWriter _writer;
    private readonly SinkState _state;
    private readonly string _eventSource;

    public SinkActor(IResultWriter writer, SinkState state, string? jobName = null)
    {
        _writer = writer;
        _state = state;
        _eventSource = jobName is null ? "sink" : $"sink {jobName}";
        _state.Assembler ??= new FrameAssembler(NodeLimits.Of(Context.System).Assembly(256));
        Receive<AttachIngest>(a => _state.Ingest = a.Ingest);
        Receive<Frame>(Accept);
        Receive<FramePixels>(pixels =>
        {
            // Kept only for frames not yet written; the ingest's window bounds how many those are.
            if (pixels.FrameId >= _state.Next)
            {
                _state.Pixels[pixels.FrameId] = pixels.Pixels;
            }
        });
        Receive<FrameChunk>(chunk =>
        {
            Frame? frame;
            try
            {
                if (_state.Assembler!.Refusal(chunk) is { } malformed)
                {
                    MessageGuard.Refuse(Context.GetLogger(), "malformed-chunk", $"{_eventSource}: {malformed}");
                }

                frame = _state.Assembler.Add(chunk, Sender);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A malformed chunk is dropped here; the ingest re-sends the frame after its deadline.
                Report($"dropped a malformed result chunk of frame {chunk.FrameId} ({e.Message.TrimEnd('.')})");
                return;
            }

            if (frame is not null)
            {
                Accept(frame);
            }
        });
        Receive<FrameFailed>(failed =>
        {
            // Only the job's ingest gives up on a frame, and it runs on this node: a peer cannot discard results.
            if (!MessageGuard.FromThisNode(Sender))
            {
                MessageGuard.Refuse(Context.GetLogger(), "failure-not-from-ingest",
                    $"{_eventSource}: frame {failed.FrameId} failed by {Sender.Path}");
                return;
            }

            if (Hold(failed.FrameId, (null, failed.Reason)) == ReorderOffer.Held)
            {
                Deliver();
            }

            // Confirm it like a result: the ingest frees a frame's place in the window only when
            // DeliveredThrough passes it, and would otherwise stall when every frame in flight
            // (or the last frame of the run) has failed.
            _state.Ingest.Tell(new FrameReceived(failed.FrameId, _state.Next - 1));
        });
        Receive<GetSinkCounters>(_ => Sender.Tell(new SinkStats(
            _state.Delivered, _state.Failed, _state.Duplicates, _state.OutOfOrder, _state.Next, _state.Buffer.Count, [],
            _state.FirstTicks, _state.LastTicks, [])
        {
            RecentLatencyMs = RecentPercentiles(),
            FailedToWrite = _state.FailedToWrite,
            Restarts = _state.Restarts,
        }));
        Receive<GetSinkStats>(_ => Sender.Tell(new SinkStats(
            _state.Delivered, _state.Failed, _state.Duplicates, _state.OutOfOrder, _state.Next, _state.Buffer.Count, _state.Latencies.ToList(),
            _state.FirstTicks, _state.LastTicks, _state.Deliveries.ToList())
        {
            FailedToWrite = _state.FailedToWrite,
            Restarts = _state.Restarts,
        }));
    }

    /// <summary>A sink whose first frame is <paramref name="firstFrameId"/> (a resumed job's, after the last id its results hold).</summary>
    /// <param name="window">The ingest's window: no honest frame runs further ahead of the next id than this.</param>
    public static Props Props(IResultWriter writer, long firstFrameId = 0, string? jobName = null, int window = 256)
    {
        // One state for every incarnation of this actor: the factory runs again on a restart and gets the same object.
        // The span is a few windows wide: a re-sent frame of an older epoch may still be in flight behind new ones.
        var state = new SinkState(firstFrameId, Math.Max(256L, 4L * window));
        return Akka.Actor.Props.Create(() => new SinkActor(writer, state, jobName));
    }

    // Akka's default would call PostStop and dispose the writer the next incarnation still needs.
    protected override void PreRestart(Exception reason, object message)
    {
    }

    protected override void PostRestart(Exception reason)
    {
        _state.Restarts++;
        Report($"the sink restarted after {reason.GetType().Name}: {reason.Message.TrimEnd('.')}; "
            + $"it kept its state and goes on from frame {_state.Next}");
    }

    protected override void PostStop() => _writer.Dispose();

    private void Accept(Frame frame)
    {
        switch (Hold(frame.FrameId, (frame, null)))
        {
            case ReorderOffer.Duplicate:
                _state.Duplicates++;
                PipelineMetrics.DuplicatesDropped.Add(1);
                break;
            case ReorderOffer.Held:
                Deliver();
                break;
            case ReorderOffer.TooFarAhead:
                return; // never confirmed: the id was not the ingest's to send
        }

        _state.Ingest.Tell(new FrameReceived(frame.FrameId, _state.Next - 1));
    }

    private ReorderOffer Hold(long frameId, (Frame? Frame, string? Failed) entry)
    {
        var offer = _state.Buffer.Offer(frameId, entry);
        if (offer == ReorderOffer.TooFarAhead)
        {
            _state.TooFarAhead++;
            if (_state.TooFarAhead == 1 || _state.TooFarAhead % 1000 == 0)
            {
                Report($"dropped frame {frameId}: {frameId - _state.Next} ids ahead of the next ({_state.Next}), further than any window "
                    + $"({_state.TooFarAhead} dropped so in all)");
            }
        }

        return offer;
    }

    private double[] RecentPercentiles()
    {
        var recent = Percentiles.Sorted(_state.Latencies.Skip(Math.Max(0, _state.Latencies.Count - 1000)));
        return [Percentiles.At(recent, 0.50), Percentiles.At(recent, 0.95), Percentiles.At(recent, 0.99)];
    }

    /// <summary>Keeps the most recent records only: a sink that runs for days must not grow without bound.</summary>
    private static void Keep<T>(List<T> records, T record)
    {
        if (records.Count >= RecordLimit)
        {
            records.RemoveRange(0, RecordLimit / 4);
        }

        records.Add(record);
    }

    private void Deliver()
    {
        while (_state.Buffer.TryTake(out var next, out var entry))
        {
            if (next <= _state.LastDelivered)
            {
                _state.OutOfOrder++; // cannot happen by construction; counted so a test would see it
            }

            _state.LastDelivered = next;
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
            var ticks = System.Diagnostics.Stopwatch.GetTimestamp();
            _state.Pixels.Remove(next, out var pixels);
            if (entry.Frame is { } frame)
            {
                var latency = (now - frame.CaptureUnixMicros) / 1000.0;
                Keep(_state.Latencies, latency);
                PipelineMetrics.Latency.Record(latency);
                PipelineMetrics.ResultsDelivered.Add(1);
                Write(new FrameOutcome(frame.FrameId, frame.SourceId, frame.CaptureUnixMicros, latency, frame.Tensors, null) { Pixels = pixels });
                _state.Delivered++;
                Keep(_state.Deliveries, (frame.FrameId, ticks, frame.Epoch));
                if (_state.FirstTicks == 0)
                {
                    _state.FirstTicks = ticks;
                }

                _state.LastTicks = ticks;
            }
            else
            {
                Write(new FrameOutcome(next, string.Empty, 0, 0, [], entry.Failed) { Pixels = pixels });
                _state.Failed++;
            }
        }
    }

    /// <summary>One frame to the writer; its failure is that frame's alone, counted and reported (at most every few seconds).</summary>
    private void Write(FrameOutcome outcome)
    {
        try
        {
            _writer.Write(outcome);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _state.FailedToWrite++;
            _state.UnreportedWriteFailures++;
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            if (_state.Writing || System.Diagnostics.Stopwatch.GetElapsedTime(_state.LastWriteFailureReportTicks, now) >= WriteFailureReportEvery)
            {
                Report(_state.UnreportedWriteFailures == 1
                    ? $"frame {outcome.FrameId} was not written: {e.Message.TrimEnd('.')}"
                    : $"{_state.UnreportedWriteFailures} frames were not written, the last {outcome.FrameId}: {e.Message.TrimEnd('.')}");
                _state.UnreportedWriteFailures = 0;
                _state.LastWriteFailureReportTicks = now;
            }

            _state.Writing = false;
            return;
        }

        if (!_state.Writing)
        {
            _state.Writing = true;
            Report($"results are written again from frame {outcome.FrameId} ({_state.FailedToWrite} frames not written in all)");
            _state.UnreportedWriteFailures = 0;
        }
    }

    private void Report(string text) => MonitorTopic.Publish(Context.System, new PipelineEvent(MonitorTopic.Now(), _eventSource, text));
}
