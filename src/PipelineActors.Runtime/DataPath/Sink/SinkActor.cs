using Akka.Actor;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Onnx.Cost;

namespace PipelineActors.Runtime.DataPath.Sink;

/// <summary>Tells the sink which ingest to confirm frames to.</summary>
public sealed record AttachIngest(IActorRef Ingest) : INoSerializationVerificationNeeded;

/// <summary>
/// Ingest to sink, on the same node: a frame's first input tensor, to ride on its outcome for a
/// writer that draws results on the picture (<see cref="Ingest.IngestSettings.PixelsToSink"/>).
/// </summary>
public sealed record FramePixels(long FrameId, FrameTensor Pixels) : INoSerializationVerificationNeeded;

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
public sealed record SinkStats(long Delivered, long Failed, long DuplicatesDropped, long OutOfOrder, long NextExpected, int Buffered, IReadOnlyList<double> LatenciesMs, long FirstDeliveryTicks, long LastDeliveryTicks, IReadOnlyList<(long FrameId, long Ticks, long Epoch)> Deliveries)
{
    /// <summary>Latency p50, p95 and p99 of the most recent frames (up to 1,000), in milliseconds.</summary>
    public double[] RecentLatencyMs { get; init; } = [0, 0, 0];
}

/// <summary>
/// The end of the pipeline: puts results back in frame order, drops duplicates (a re-sent frame
/// may complete twice), tells the ingest each frame it holds (so the ingest stops re-sending it
/// and reuses its credit), and hands each frame's outcome to the result writer exactly once.
/// </summary>
public sealed class SinkActor : ReceiveActor
{
    private const int RecordLimit = 1 << 18;
    private readonly IResultWriter _writer;
    private readonly FrameAssembler _assembler = new(256);
    private readonly SortedDictionary<long, (Frame? Frame, string? Failed)> _buffer = [];
    private readonly Dictionary<long, FrameTensor> _pixels = [];
    private readonly List<double> _latencies = [];
    private readonly List<(long, long, long)> _deliveries = [];
    private IActorRef _ingest = ActorRefs.Nobody;
    private long _next;
    private long _delivered;
    private long _failed;
    private long _duplicates;
    private long _outOfOrder;
    private long _lastDelivered = -1;
    private long _firstTicks;
    private long _lastTicks;

    /// <param name="firstId">The first frame id to expect (a resumed job's, after the ids it issued before).</param>
    public SinkActor(IResultWriter writer, long firstId = 0)
    {
        _next = firstId;
        _writer = writer;
        Receive<AttachIngest>(a => _ingest = a.Ingest);
        Receive<Frame>(Accept);
        Receive<FramePixels>(pixels =>
        {
            // Kept only for frames not yet written; the ingest's window bounds how many those are.
            if (pixels.FrameId >= _next)
            {
                _pixels[pixels.FrameId] = pixels.Pixels;
            }
        });
        Receive<FrameChunk>(chunk =>
        {
            var frame = _assembler.Add(chunk, Sender);
            if (frame is not null)
            {
                Accept(frame);
            }
        });
        Receive<FrameFailed>(failed =>
        {
            if (failed.FrameId >= _next && !_buffer.ContainsKey(failed.FrameId))
            {
                _buffer[failed.FrameId] = (null, failed.Reason);
                Deliver();
            }

            // Confirm it like a result: the ingest frees a frame's place in the window only when
            // DeliveredThrough passes it, and would otherwise stall when every frame in flight
            // (or the last frame of the run) has failed.
            _ingest.Tell(new FrameReceived(failed.FrameId, _next - 1));
        });
        Receive<GetSinkCounters>(_ => Sender.Tell(new SinkStats(
            _delivered, _failed, _duplicates, _outOfOrder, _next, _buffer.Count, [], _firstTicks, _lastTicks, [])
        {
            RecentLatencyMs = RecentPercentiles(),
        }));
        Receive<GetSinkStats>(_ => Sender.Tell(new SinkStats(
            _delivered, _failed, _duplicates, _outOfOrder, _next, _buffer.Count, _latencies.ToList(), _firstTicks, _lastTicks, _deliveries.ToList())));
    }

    public static Props Props(IResultWriter writer, long firstId = 0) => Akka.Actor.Props.Create(() => new SinkActor(writer, firstId));

    protected override void PostStop() => _writer.Dispose();

    private void Accept(Frame frame)
    {
        if (frame.FrameId < _next || _buffer.ContainsKey(frame.FrameId))
        {
            _duplicates++;
            PipelineMetrics.DuplicatesDropped.Add(1);
            _ingest.Tell(new FrameReceived(frame.FrameId, _next - 1));
            return;
        }

        _buffer[frame.FrameId] = (frame, null);
        Deliver();
        _ingest.Tell(new FrameReceived(frame.FrameId, _next - 1));
    }

    private double[] RecentPercentiles()
    {
        var recent = Percentiles.Sorted(_latencies.Skip(Math.Max(0, _latencies.Count - 1000)));
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
        while (_buffer.Remove(_next, out var entry))
        {
            if (_next <= _lastDelivered)
            {
                _outOfOrder++; // cannot happen by construction; counted so a test would see it
            }

            _lastDelivered = _next;
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
            var ticks = System.Diagnostics.Stopwatch.GetTimestamp();
            _pixels.Remove(_next, out var pixels);
            if (entry.Frame is { } frame)
            {
                var latency = (now - frame.CaptureUnixMicros) / 1000.0;
                Keep(_latencies, latency);
                PipelineMetrics.Latency.Record(latency);
                PipelineMetrics.ResultsDelivered.Add(1);
                _writer.Write(new FrameOutcome(frame.FrameId, frame.SourceId, frame.CaptureUnixMicros, latency, frame.Tensors, null) { Pixels = pixels });
                _delivered++;
                Keep(_deliveries, (frame.FrameId, ticks, frame.Epoch));
                if (_firstTicks == 0)
                {
                    _firstTicks = ticks;
                }

                _lastTicks = ticks;
            }
            else
            {
                _writer.Write(new FrameOutcome(_next, string.Empty, 0, 0, [], entry.Failed) { Pixels = pixels });
                _failed++;
            }

            _next++;
        }
    }
}
