using System.Buffers;
using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;

namespace PipelineActors.Runtime.DataPath.Link;

/// <summary>
/// Puts chunked frames back together: the first chunk of a frame (whichever index arrives first) takes a buffer for the
/// whole encoded frame, and every chunk copies its payload to its offset, so a frame costs one copy here plus the decode.
/// The buffer comes from <see cref="ArrayPool{T}"/> and goes back once the frame is decoded (the decoded tensors own
/// their arrays), so a frame of hundreds of KiB does not put a second large-object array per frame on the heap.
/// Akka keeps order per sender-receiver pair, but the assembler does not rely on it: chunks may come in any order,
/// duplicates are ignored, and a chunk of an older attempt than one this sender already started or finished is dropped.
/// A bounded number of partial frames is kept, the oldest dropped first (the ingest re-sends what never completes).
/// </summary>
public sealed class FrameAssembler(int maxPartial = 64)
{
    private readonly Dictionary<(IActorRef Sender, long FrameId, long Epoch), PartialFrame> _partial = [];

    // The newest attempt each recent frame completed with, so late duplicates and stale attempts cannot start it again.
    private readonly Dictionary<(IActorRef Sender, long FrameId, long Epoch), int> _completed = [];
    private readonly Queue<(IActorRef, long, long)> _completedOrder = new();
    private long _started;

    public int Partial => _partial.Count;

    /// <summary>Partial frames evicted to keep the bound.</summary>
    public long Dropped { get; private set; }

    /// <summary>Chunks ignored: duplicates, chunks of an older attempt, and chunks that contradict their frame's first chunk.</summary>
    public long Ignored { get; private set; }

    /// <summary>Adds a chunk; returns the frame when its last missing chunk arrives.</summary>
    public Frame? Add(FrameChunk chunk, IActorRef sender)
    {
        var key = (sender, chunk.FrameId, chunk.Epoch);
        if (_completed.TryGetValue(key, out var done) && chunk.Attempt <= done)
        {
            Ignored++;
            return null;
        }

        if (_partial.TryGetValue(key, out var partial) && partial.Attempt != chunk.Attempt)
        {
            if (chunk.Attempt < partial.Attempt)
            {
                Ignored++;
                return null;
            }

            // A newer attempt supersedes the half-built older one: the sender gave up on it.
            _partial.Remove(key);
            partial.Release();
            partial = null;
        }

        if (!Fits(chunk))
        {
            Ignored++;
            return null;
        }

        if (partial is null)
        {
            if (chunk.Count == 1)
            {
                Complete(key, chunk.Attempt);
                return FrameCodec.Decode(chunk.Payload.Span);
            }

            partial = new PartialFrame(chunk, _started++);
            _partial[key] = partial;
            Evict();
        }

        if (!partial.Matches(chunk) || partial.Seen[chunk.Index])
        {
            Ignored++;
            return null;
        }

        chunk.Payload.Span.CopyTo(partial.Whole[chunk.Offset..]);
        partial.Seen[chunk.Index] = true;
        partial.Bytes += chunk.Payload.Length;
        if (--partial.Missing > 0)
        {
            return null;
        }

        _partial.Remove(key);
        Complete(key, chunk.Attempt);
        try
        {
            if (partial.Bytes != partial.Whole.Length)
            {
                // Chunks that overlap or leave a gap: not a frame this sender could have cut.
                Ignored++;
                return null;
            }

            return FrameCodec.Decode(partial.Whole);
        }
        finally
        {
            partial.Release();
        }
    }

    private static bool Fits(FrameChunk chunk) => Malformed(chunk) is null;

    /// <summary>Why a chunk cannot be part of any frame a sender could have cut (null when it can): one sentence for a rejection.</summary>
    public static string? Malformed(FrameChunk chunk) =>
        chunk.Count < 1 ? $"chunk {chunk.Index} of frame {chunk.FrameId} says the frame has {chunk.Count} chunks"
        : chunk.Index < 0 || chunk.Index >= chunk.Count ? $"chunk {chunk.Index} of frame {chunk.FrameId} is outside its {chunk.Count} chunks"
        : chunk.TotalBytes < 0 || chunk.Offset < 0 || chunk.Offset > chunk.TotalBytes - chunk.Payload.Length
            ? $"chunk {chunk.Index} of frame {chunk.FrameId} puts {chunk.Payload.Length} bytes at {chunk.Offset} of a {chunk.TotalBytes}-byte frame"
        : null;

    private void Complete((IActorRef, long, long) key, int attempt)
    {
        if (!_completed.TryAdd(key, attempt))
        {
            _completed[key] = attempt;
            return;
        }

        _completedOrder.Enqueue(key);
        while (_completedOrder.Count > 4 * maxPartial)
        {
            _completed.Remove(_completedOrder.Dequeue());
        }
    }

    private void Evict()
    {
        while (_partial.Count > maxPartial)
        {
            // Linear in the bound, and only when a frame beyond the bound starts.
            var oldest = _partial.MinBy(p => p.Value.Started);
            _partial.Remove(oldest.Key);
            oldest.Value.Release();
            Dropped++;
        }
    }

    private sealed class PartialFrame(FrameChunk first, long started)
    {
        private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(first.TotalBytes);

        public int Attempt { get; } = first.Attempt;

        public long Started { get; } = started;

        public int TotalBytes { get; } = first.TotalBytes;

        /// <summary>The encoded frame (a rented array may be longer than asked for).</summary>
        public Span<byte> Whole => _buffer.AsSpan(0, TotalBytes);

        public bool[] Seen { get; } = new bool[first.Count];

        public int Missing { get; set; } = first.Count;

        public long Bytes { get; set; }

        public bool Matches(FrameChunk chunk) => chunk.Count == Seen.Length && chunk.TotalBytes == TotalBytes;

        /// <summary>Returns the buffer to the pool; the frame is decoded or given up, and nothing else holds the array.</summary>
        public void Release()
        {
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
        }
    }
}
