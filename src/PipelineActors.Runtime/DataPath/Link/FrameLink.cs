using Akka.Actor;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Link;

/// <summary>
/// Sends frames between actors: whole to a local actor, in chunks of at most
/// <c>pipeline.chunk-bytes</c> to a remote one, so that no remote message is larger than a chunk
/// and cluster heartbeats on the same connection never wait behind a multi-megabyte tensor.
/// </summary>
public static class FrameLink
{
    /// <summary>
    /// Sends <paramref name="frame"/>; returns the bytes put on the link (0 for a local actor). With <paramref name="delay"/>,
    /// what goes to a remote actor waits that long first (an emulated link's latency); a local actor gets it at once.
    /// </summary>
    public static long Send(IActorRef target, Frame frame, IActorRef sender, int chunkBytes, LinkDelay? delay = null)
    {
        var local = target.Path.Address.HasLocalScope;
        if (local || frame.Bytes + 256 <= chunkBytes)
        {
            Deliver(target, [frame], sender, local ? null : delay);
            return local ? 0 : frame.Bytes;
        }

        var encoded = FrameCodec.Encode(frame);
        var count = (encoded.Length + chunkBytes - 1) / chunkBytes;
        var chunks = new object[count];
        for (var i = 0; i < count; i++)
        {
            var length = Math.Min(chunkBytes, encoded.Length - (i * chunkBytes));
            chunks[i] = new FrameChunk(frame.FrameId, frame.Epoch, frame.Attempt, i, count, encoded.AsSpan(i * chunkBytes, length).ToArray());
        }

        Deliver(target, chunks, sender, delay);
        return encoded.Length;
    }

    private static void Deliver(IActorRef target, IReadOnlyList<object> messages, IActorRef sender, LinkDelay? delay)
    {
        if (delay is not null)
        {
            delay.Send(target, messages, sender);
            return;
        }

        foreach (var message in messages)
        {
            target.Tell(message, sender);
        }
    }
}

/// <summary>
/// Puts chunked frames back together. Chunks from one sender arrive in order (Akka keeps order
/// per sender-receiver pair); a bounded number of partial frames is kept, the oldest dropped
/// first (the ingest re-sends what never completes).
/// </summary>
public sealed class FrameAssembler(int maxPartial = 64)
{
    private readonly Dictionary<(string Sender, long FrameId, long Epoch, int Attempt), byte[]?[]> _partial = [];
    private readonly Queue<(string, long, long, int)> _age = new();

    public int Partial => _partial.Count;

    public long Dropped { get; private set; }

    /// <summary>Adds a chunk; returns the frame when its last chunk arrives.</summary>
    public Frame? Add(FrameChunk chunk, IActorRef sender)
    {
        var key = (sender.Path.ToString(), chunk.FrameId, chunk.Epoch, chunk.Attempt);
        if (!_partial.TryGetValue(key, out var parts))
        {
            if (chunk.Count == 1)
            {
                return FrameCodec.Decode(chunk.Payload);
            }

            parts = new byte[]?[chunk.Count];
            _partial[key] = parts;
            _age.Enqueue(key);
            if (_age.Count > 4 * maxPartial)
            {
                // Completed frames leave their keys in the queue; keep it bounded.
                var live = _age.Where(_partial.ContainsKey).ToList();
                _age.Clear();
                live.ForEach(_age.Enqueue);
            }

            while (_partial.Count > maxPartial && _age.TryDequeue(out var oldest))
            {
                if (_partial.Remove(oldest))
                {
                    Dropped++;
                }
            }
        }

        if (chunk.Index < 0 || chunk.Index >= parts.Length)
        {
            return null;
        }

        parts[chunk.Index] = chunk.Payload;
        if (parts.Any(p => p is null))
        {
            return null;
        }

        _partial.Remove(key);
        var whole = new byte[parts.Sum(p => p!.Length)];
        var at = 0;
        foreach (var p in parts)
        {
            p!.CopyTo(whole, at);
            at += p!.Length;
        }

        return FrameCodec.Decode(whole);
    }
}
