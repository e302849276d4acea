using System.Buffers;
using System.Diagnostics;
using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;

namespace PipelineActors.Runtime.DataPath.Link;

/// <summary>How many partial frames an assembler keeps, from one sender and in all, for how long, and how large a frame may be.</summary>
/// <param name="MaxPartial">Partial frames in all; past it the oldest is dropped.</param>
/// <param name="PerSender">Partial frames from one sender; past it that sender's oldest is dropped (one peer cannot crowd out the rest).</param>
/// <param name="Timeout">A partial frame still missing chunks this long after its first is dropped (the ingest re-sends the frame).</param>
/// <param name="Wire">What a chunk may claim (the frame's length, its chunk count) and what its frame may decode to.</param>
public sealed record AssemblyLimits(int MaxPartial, int PerSender, TimeSpan Timeout, WireLimits Wire)
{
    /// <summary>The limits of <c>pipeline.limits</c> with a bound of <paramref name="maxPartial"/> partial frames in all.</summary>
    public static AssemblyLimits Default(int maxPartial = 64) => new(maxPartial, maxPartial, TimeSpan.FromSeconds(30), WireLimits.Default);
}

/// <summary>
/// Puts chunked frames back together: chunks are held as they arrive (slices of the messages Akka received), and when the
/// last one comes each is copied to its offset in one buffer for the whole encoded frame, so a frame costs one copy here
/// plus the decode, and a frame that never completes holds only the bytes its sender sent, never the length it claimed.
/// The buffer comes from <see cref="ArrayPool{T}"/> and goes back once the frame is decoded (the decoded tensors own
/// their arrays), so a frame of hundreds of KiB does not put a second large-object array per frame on the heap.
/// Akka keeps order per sender-receiver pair, but the assembler does not rely on it: chunks may come in any order,
/// duplicates are ignored, and a chunk of an older attempt than one this sender already started or finished is dropped.
/// Partial frames are bounded in all and per sender, the oldest dropped first, and one that waits longer than the timeout
/// for its missing chunks is dropped (the ingest re-sends what never completes). A chunk no sender could have cut
/// (<see cref="FrameSerializer.MalformedChunk"/>) is counted and ignored before anything is allocated for it; a frame whose
/// chunks all came but do not decode throws a <see cref="System.Runtime.Serialization.SerializationException"/>.
/// </summary>
public sealed class FrameAssembler
{
    private readonly Dictionary<(IActorRef Sender, long FrameId, long Epoch), PartialFrame> _partial = [];
    private readonly Dictionary<IActorRef, int> _partialBySender = [];

    // The newest attempt each recent frame completed with, so late duplicates and stale attempts cannot start it again.
    private readonly Dictionary<(IActorRef Sender, long FrameId, long Epoch), int> _completed = [];
    private readonly Queue<(IActorRef, long, long)> _completedOrder = new();
    private readonly AssemblyLimits _limits;
    private readonly Func<TimeSpan> _now;
    private long _started;
    private TimeSpan _nextSweep;

    /// <summary>An assembler that keeps at most <paramref name="maxPartial"/> partial frames, with the default limits otherwise.</summary>
    public FrameAssembler(int maxPartial = 64)
        : this(AssemblyLimits.Default(maxPartial))
    {
    }

    /// <param name="now">The clock partial frames age by (a monotonic one when not given).</param>
    public FrameAssembler(AssemblyLimits limits, Func<TimeSpan>? now = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limits.MaxPartial, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(limits.PerSender, 1);
        _limits = limits;
        var clock = Stopwatch.StartNew();
        _now = now ?? (() => clock.Elapsed);
    }

    public int Partial => _partial.Count;

    /// <summary>Partial frames dropped to keep the bounds (in all and per sender) or after waiting past the timeout.</summary>
    public long Dropped { get; private set; }

    /// <summary>Partial frames among <see cref="Dropped"/> that waited past the timeout for their missing chunks.</summary>
    public long Expired { get; private set; }

    /// <summary>Chunks ignored: duplicates, chunks of an older attempt, and chunks that contradict their frame's first chunk.</summary>
    public long Ignored { get; private set; }

    /// <summary>Chunks no sender could have cut (a count, index, offset or length that does not fit), ignored before any allocation.</summary>
    public long Malformed { get; private set; }

    /// <summary>Why a chunk cannot be part of any frame a sender could have cut (null when it can): one sentence for a rejection.</summary>
    public string? Refusal(FrameChunk chunk) => FrameSerializer.MalformedChunk(chunk, _limits.Wire);

    /// <summary>Adds a chunk; returns the frame when its last missing chunk arrives.</summary>
    public Frame? Add(FrameChunk chunk, IActorRef sender)
    {
        Sweep();
        if (Refusal(chunk) is not null)
        {
            Malformed++;
            return null;
        }

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
            Forget(key, partial);
            partial = null;
        }

        if (partial is null)
        {
            if (chunk.Count == 1)
            {
                Complete(key, chunk.Attempt);
                return FrameCodec.Decode(chunk.Payload.Span, _limits.Wire);
            }

            partial = new PartialFrame(chunk, _started++, _now());
            _partial[key] = partial;
            _partialBySender[sender] = _partialBySender.GetValueOrDefault(sender) + 1;
            Evict(sender);
        }

        if (!partial.Matches(chunk) || !partial.Take(chunk))
        {
            Ignored++;
            return null;
        }

        if (partial.Missing > 0)
        {
            return null;
        }

        Forget(key, partial: null);
        Complete(key, chunk.Attempt);
        if (partial.Bytes != partial.TotalBytes)
        {
            // Chunks that overlap or leave a gap: not a frame this sender could have cut.
            Ignored++;
            return null;
        }

        // The whole frame is put together only now, from the payloads held: a frame's buffer is taken once all its
        // bytes are here, so a peer that claims a large frame and sends one chunk holds no more than that chunk.
        var buffer = ArrayPool<byte>.Shared.Rent(partial.TotalBytes);
        try
        {
            var whole = buffer.AsSpan(0, partial.TotalBytes);
            partial.CopyTo(whole);
            return FrameCodec.Decode(whole, _limits.Wire);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            partial.Release();
        }
    }

    private void Complete((IActorRef, long, long) key, int attempt)
    {
        if (!_completed.TryAdd(key, attempt))
        {
            _completed[key] = attempt;
            return;
        }

        _completedOrder.Enqueue(key);
        while (_completedOrder.Count > 4 * _limits.MaxPartial)
        {
            _completed.Remove(_completedOrder.Dequeue());
        }
    }

    /// <summary>Drops partial frames that have waited past the timeout; cheap between sweeps (a clock read).</summary>
    public void Sweep()
    {
        var now = _now();
        if (now < _nextSweep)
        {
            return;
        }

        _nextSweep = now + (_limits.Timeout / 8);
        foreach (var (key, partial) in _partial.Where(p => now - p.Value.StartedAt > _limits.Timeout).ToList())
        {
            Forget(key, partial);
            Dropped++;
            Expired++;
        }
    }

    private void Evict(IActorRef sender)
    {
        while (_partialBySender.GetValueOrDefault(sender) > _limits.PerSender)
        {
            // Linear in the bound, and only when a frame beyond it starts.
            var oldest = _partial.Where(p => p.Key.Sender.Equals(sender)).MinBy(p => p.Value.Started);
            Forget(oldest.Key, oldest.Value);
            Dropped++;
        }

        while (_partial.Count > _limits.MaxPartial)
        {
            var oldest = _partial.MinBy(p => p.Value.Started);
            Forget(oldest.Key, oldest.Value);
            Dropped++;
        }
    }

    /// <summary>Removes a partial frame from the books; with <paramref name="partial"/>, its buffer goes back to the pool too.</summary>
    private void Forget((IActorRef Sender, long FrameId, long Epoch) key, PartialFrame? partial)
    {
        _partial.Remove(key);
        partial?.Release();
        var left = _partialBySender.GetValueOrDefault(key.Sender) - 1;
        if (left > 0)
        {
            _partialBySender[key.Sender] = left;
        }
        else
        {
            _partialBySender.Remove(key.Sender);
        }
    }

    /// <summary>
    /// The chunks of one frame received so far, held as they came (each a slice of the message Akka received, nothing
    /// copied), so what a partial frame costs is what its sender actually sent.
    /// </summary>
    private sealed class PartialFrame(FrameChunk first, long started, TimeSpan startedAt)
    {
        private readonly Dictionary<int, (int Offset, ReadOnlyMemory<byte> Payload)> _chunks = [];

        public int Attempt { get; } = first.Attempt;

        public long Started { get; } = started;

        public TimeSpan StartedAt { get; } = startedAt;

        public int TotalBytes { get; } = first.TotalBytes;

        public int Count { get; } = first.Count;

        public int Missing => Count - _chunks.Count;

        public long Bytes { get; private set; }

        public bool Matches(FrameChunk chunk) => chunk.Count == Count && chunk.TotalBytes == TotalBytes;

        /// <summary>Keeps the chunk; false for a duplicate index or one that would bring more bytes than the frame has.</summary>
        public bool Take(FrameChunk chunk)
        {
            if (Bytes + chunk.Payload.Length > TotalBytes || !_chunks.TryAdd(chunk.Index, (chunk.Offset, chunk.Payload)))
            {
                return false;
            }

            Bytes += chunk.Payload.Length;
            return true;
        }

        public void CopyTo(Span<byte> whole)
        {
            foreach (var (offset, payload) in _chunks.Values)
            {
                payload.Span.CopyTo(whole[offset..]);
            }
        }

        /// <summary>Lets go of the chunks (the arrays they are slices of become garbage).</summary>
        public void Release() => _chunks.Clear();
    }
}
