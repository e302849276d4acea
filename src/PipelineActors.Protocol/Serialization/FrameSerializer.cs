using System.Buffers.Binary;
using System.Text;
using Akka.Actor;
using Akka.Serialization;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// The hot path's wire format: every <see cref="IFrameMessage"/>, written with <see cref="BinaryPrimitives"/> into one
/// exact-size array. A frame costs one copy of its tensors each way here (encode, decode); a chunk costs one copy of its
/// payload when written and none when read (the payload is a slice of the array Akka hands in, which nothing else keeps).
/// Akka falls back to JSON silently for unbound types, so a test checks the binding of every message type.
/// </summary>
public sealed class FrameSerializer : SerializerWithStringManifest
{
    public const int Id = 431;

    /// <summary>Version, frame id, epoch, attempt, index, count, offset, total bytes, payload length.</summary>
    public const int ChunkHeaderBytes = WireFormat.HeaderBytes + 8 + 8 + 4 + 4 + 4 + 4 + 4 + 4;

    private const string FrameManifest = "F";
    private const string ChunkManifest = "FC";
    private const string ReceivedManifest = "FR";
    private const string RejectedManifest = "FJ";
    private const string FailedManifest = "FF";

    private readonly WireLimits _limits;

    public FrameSerializer(ExtendedActorSystem system)
        : base(system)
    {
        _limits = WireLimits.From(system.Settings.Config);
    }

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        FrameChunk => ChunkManifest,
        Frame => FrameManifest,
        FrameReceived => ReceivedManifest,
        FrameRejected => RejectedManifest,
        FrameFailed => FailedManifest,
        _ => throw new ArgumentException($"FrameSerializer cannot serialize {o.GetType()}.", nameof(o)),
    };

    public override byte[] ToBinary(object obj)
    {
        // Most frequent first: a large frame is many chunks.
        switch (obj)
        {
            case FrameChunk chunk:
                return WriteChunk(chunk);
            case Frame frame:
                var encoded = FrameCodec.Encode(frame, WireFormat.HeaderBytes);
                encoded[0] = WireFormat.Version;
                return encoded;
            case FrameReceived m:
                var bytes = new byte[WireFormat.HeaderBytes + 16];
                bytes[0] = WireFormat.Version;
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(1), m.FrameId);
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(9), m.DeliveredThrough);
                return bytes;
            case FrameRejected m:
                return Written(w =>
                {
                    w.Write(m.FrameId);
                    w.Write(m.Attempt);
                    w.Write(m.StageIndex);
                    w.Write(m.Reason);
                });
            case FrameFailed m:
                return Written(w =>
                {
                    w.Write(m.FrameId);
                    w.Write(m.Reason);
                });
            default:
                throw new ArgumentException($"FrameSerializer cannot serialize {obj.GetType()}.", nameof(obj));
        }
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!WireFormat.IsCurrent(bytes))
        {
            return WireVersionGuard.For(system).Refuse(bytes, manifest);
        }

        switch (manifest)
        {
            case ChunkManifest:
                return ReadChunk(bytes, _limits);
            case FrameManifest:
                try
                {
                    return FrameCodec.Decode(bytes.AsSpan(WireFormat.HeaderBytes), _limits);
                }
                catch (System.Runtime.Serialization.SerializationException e)
                {
                    throw WireFields.Malformed(nameof(FrameSerializer), manifest, bytes.Length, e);
                }

            case ReceivedManifest:
                if (bytes.Length != WireFormat.HeaderBytes + 16)
                {
                    throw WireFields.Malformed(nameof(FrameSerializer), manifest, bytes.Length,
                        new InvalidDataException("a confirmation is 17 bytes"));
                }

                var body = bytes.AsSpan(WireFormat.HeaderBytes);
                return new FrameReceived(BinaryPrimitives.ReadInt64LittleEndian(body), BinaryPrimitives.ReadInt64LittleEndian(body[8..]));
        }

        return WireFields.Read(bytes, manifest, _limits, nameof(FrameSerializer), r => manifest switch
        {
            RejectedManifest => new FrameRejected(r.ReadInt64(), r.ReadInt32(), r.ReadInt32(), r.ReadString()),
            FailedManifest => new FrameFailed(r.ReadInt64(), r.ReadString()),
            _ => throw new System.Runtime.Serialization.SerializationException($"FrameSerializer does not know manifest '{manifest}'."),
        });
    }

    private static byte[] WriteChunk(FrameChunk chunk)
    {
        // Header and payload in one exact-size array: the payload's only copy on this side.
        var buffer = new byte[ChunkHeaderBytes + chunk.Payload.Length];
        var header = buffer.AsSpan();
        header[0] = WireFormat.Version;
        BinaryPrimitives.WriteInt64LittleEndian(header[1..], chunk.FrameId);
        BinaryPrimitives.WriteInt64LittleEndian(header[9..], chunk.Epoch);
        BinaryPrimitives.WriteInt32LittleEndian(header[17..], chunk.Attempt);
        BinaryPrimitives.WriteInt32LittleEndian(header[21..], chunk.Index);
        BinaryPrimitives.WriteInt32LittleEndian(header[25..], chunk.Count);
        BinaryPrimitives.WriteInt32LittleEndian(header[29..], chunk.Offset);
        BinaryPrimitives.WriteInt32LittleEndian(header[33..], chunk.TotalBytes);
        BinaryPrimitives.WriteInt32LittleEndian(header[37..], chunk.Payload.Length);
        chunk.Payload.Span.CopyTo(header[ChunkHeaderBytes..]);
        return buffer;
    }

    private static FrameChunk ReadChunk(byte[] bytes, WireLimits limits)
    {
        if (bytes.Length < ChunkHeaderBytes)
        {
            throw WireFields.Malformed(nameof(FrameSerializer), ChunkManifest, bytes.Length,
                new InvalidDataException("shorter than a chunk's header"));
        }

        var header = bytes.AsSpan();
        var length = BinaryPrimitives.ReadInt32LittleEndian(header[37..]);
        if (length < 0 || ChunkHeaderBytes + length != bytes.Length)
        {
            throw new System.Runtime.Serialization.SerializationException(
                $"A frame chunk of {bytes.Length} bytes declares a payload of {length} bytes.");
        }

        var chunk = new FrameChunk(
            BinaryPrimitives.ReadInt64LittleEndian(header[1..]),
            BinaryPrimitives.ReadInt64LittleEndian(header[9..]),
            BinaryPrimitives.ReadInt32LittleEndian(header[17..]),
            BinaryPrimitives.ReadInt32LittleEndian(header[21..]),
            BinaryPrimitives.ReadInt32LittleEndian(header[25..]),
            BinaryPrimitives.ReadInt32LittleEndian(header[29..]),
            BinaryPrimitives.ReadInt32LittleEndian(header[33..]),
            new ReadOnlyMemory<byte>(bytes, ChunkHeaderBytes, length));
        return MalformedChunk(chunk, limits) is { } why
            ? throw WireFields.Malformed(nameof(FrameSerializer), ChunkManifest, bytes.Length, new InvalidDataException(why))
            : chunk;
    }

    /// <summary>
    /// Why a chunk cannot be part of any frame a sender within <paramref name="limits"/> could have cut (null when it can),
    /// in one sentence: its count, index, offset and length against each other (every chunk carries at least a byte), and
    /// the frame's length against the limit.
    /// </summary>
    public static string? MalformedChunk(FrameChunk chunk, WireLimits limits) =>
        chunk.Count < 1 ? $"chunk {chunk.Index} of frame {chunk.FrameId} says the frame has {chunk.Count} chunks"
        : chunk.Index < 0 || chunk.Index >= chunk.Count ? $"chunk {chunk.Index} of frame {chunk.FrameId} is outside its {chunk.Count} chunks"
        : chunk.Payload.Length < 1 || chunk.TotalBytes < 0 || chunk.Offset < 0 || chunk.Offset > chunk.TotalBytes - chunk.Payload.Length
            ? $"chunk {chunk.Index} of frame {chunk.FrameId} puts {chunk.Payload.Length} bytes at {chunk.Offset} of a {chunk.TotalBytes}-byte frame"
        : chunk.TotalBytes > limits.FrameBytes
            ? $"chunk {chunk.Index} of frame {chunk.FrameId} belongs to a {chunk.TotalBytes}-byte frame, past this node's limit of "
                + $"{limits.FrameBytes}"
        : chunk.Count > chunk.TotalBytes
            ? $"frame {chunk.FrameId} of {chunk.TotalBytes} bytes cannot be {chunk.Count} chunks of a byte or more"
        : null;

    /// <summary>A rare message through a <see cref="BinaryWriter"/>, after the version byte.</summary>
    private static byte[] Written(Action<BinaryWriter> write)
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(WireFormat.Version);
        write(w);
        w.Flush();
        return stream.ToArray();
    }
}
