using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;

namespace PipelineActors.Runtime.DataPath.Link;

/// <summary>
/// Sends frames between actors: whole to a local actor, in chunks of at most <c>pipeline.chunk-bytes</c> to a remote
/// one, so that no remote message is larger than a chunk and cluster heartbeats on the same connection never wait
/// behind a multi-megabyte tensor. Both ends count a link's bytes in one unit: the encoded (zero-suppressed) frame.
/// </summary>
public static class FrameLink
{
    /// <summary>Room left in a chunk-sized message for the frame's names, shapes and the message header.</summary>
    public const int WholeFrameMargin = 256;

    /// <summary>
    /// Sends <paramref name="frame"/>; returns the encoded bytes put on the link (0 for a local actor). With <paramref name="delay"/>,
    /// what goes to a remote actor waits that long first (an emulated link's latency); a local actor gets it at once.
    /// </summary>
    public static long Send(IActorRef target, Frame frame, IActorRef sender, int chunkBytes, LinkDelay? delay = null)
    {
        if (target.Path.Address.HasLocalScope)
        {
            target.Tell(frame, sender);
            return 0;
        }

        if (frame.Bytes + WholeFrameMargin <= chunkBytes)
        {
            // Small enough to cross whole; the serializer encodes it, this only measures it.
            Deliver(target, [frame], sender, delay);
            return FrameCodec.EncodedLength(frame);
        }

        var chunks = Cut(frame, chunkBytes);
        Deliver(target, chunks, sender, delay);
        return chunks[0].TotalBytes;
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

    /// <summary>Encodes the frame once and cuts it into chunks that are slices of that one buffer (no copy per chunk).</summary>
    public static FrameChunk[] Cut(Frame frame, int chunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 1);
        var encoded = FrameCodec.Encode(frame);
        var count = (encoded.Length + chunkBytes - 1) / chunkBytes;
        var chunks = new FrameChunk[count];
        for (var i = 0; i < count; i++)
        {
            var offset = i * chunkBytes;
            var length = Math.Min(chunkBytes, encoded.Length - offset);
            chunks[i] = new FrameChunk(frame.FrameId, frame.Epoch, frame.Attempt, i, count, offset, encoded.Length, encoded.AsMemory(offset, length));
        }

        return chunks;
    }

    /// <summary>The encoded bytes a received message brought over a link: 0 from a local sender, in the unit <see cref="Send"/> returns.</summary>
    public static long Received(Frame frame, IActorRef sender) => sender.Path.Address.HasLocalScope ? 0 : FrameCodec.EncodedLength(frame);

    /// <inheritdoc cref="Received(Frame, IActorRef)"/>
    public static long Received(FrameChunk chunk) => chunk.Payload.Length;
}
