using System.Buffers.Binary;
using System.Text;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// The frame layout: header, then per tensor its name, dtype, shape, how its bytes travel (raw, or zero-suppressed when
/// that is at least an eighth smaller, see <see cref="ZeroSuppression"/>) and the bytes, little-endian. Encoding writes
/// straight into the caller's buffer (one copy of the tensors); decoding gives back every tensor bit for bit.
/// </summary>
public static class FrameCodec
{
    private const int Raw = 0;
    private const int ZeroSuppressed = 1;

    /// <summary>The frame's encoded length: the unit in which links count bytes.</summary>
    public static int EncodedLength(Frame frame) => Measure(frame, out _);

    /// <summary>One exact-size array: <paramref name="prefix"/> free bytes (for a message header), then the encoded frame.</summary>
    public static byte[] Encode(Frame frame, int prefix = 0)
    {
        var buffer = new byte[prefix + Measure(frame, out var suppressed)];
        Write(frame, suppressed, buffer.AsSpan(prefix));
        return buffer;
    }

    /// <summary>Rebuilds the frame from exactly its encoded bytes; tensors get arrays of their own.</summary>
    public static Frame Decode(ReadOnlySpan<byte> encoded)
    {
        var r = new Reader(encoded);
        var id = r.Int64();
        var epoch = r.Int64();
        var capture = r.Int64();
        var attempt = r.Int32();
        var source = r.Text();
        var count = r.Int32();
        var tensors = new FrameTensor[count];
        for (var i = 0; i < count; i++)
        {
            var name = r.Text();
            var dtype = (TensorProto.Types.DataType)r.Int32();
            var shape = new long[r.Int32()];
            for (var d = 0; d < shape.Length; d++)
            {
                shape[d] = r.Int64();
            }

            var encoding = r.Int32();
            var rawLength = r.Int32();
            var data = encoding switch
            {
                Raw => r.Bytes(rawLength).ToArray(),
                ZeroSuppressed => ZeroSuppression.Decode(dtype, r.Bytes(r.Int32()), rawLength),
                _ => throw new InvalidDataException($"Tensor '{name}' has an unknown encoding {encoding}."),
            };
            tensors[i] = new FrameTensor(name, dtype, shape, data);
        }

        if (!r.AtEnd)
        {
            throw new InvalidDataException($"Frame {id} has bytes after its last tensor.");
        }

        return new Frame(id, source, epoch, capture, attempt, tensors);
    }

    private static void Write(Frame frame, int[] suppressed, Span<byte> destination)
    {
        var w = new Writer(destination);
        w.Int64(frame.FrameId);
        w.Int64(frame.Epoch);
        w.Int64(frame.CaptureUnixMicros);
        w.Int32(frame.Attempt);
        w.Text(frame.SourceId);
        w.Int32(frame.Tensors.Count);
        for (var i = 0; i < frame.Tensors.Count; i++)
        {
            var t = frame.Tensors[i];
            w.Text(t.Name);
            w.Int32((int)t.ElementType);
            w.Int32(t.Shape.Length);
            foreach (var d in t.Shape)
            {
                w.Int64(d);
            }

            if (suppressed[i] > 0)
            {
                w.Int32(ZeroSuppressed);
                w.Int32(t.Data.Length);
                w.Int32(suppressed[i]);
                ZeroSuppression.Encode(t.ElementType, t.Data, w.Take(suppressed[i]));
            }
            else
            {
                w.Int32(Raw);
                w.Int32(t.Data.Length);
                t.Data.CopyTo(w.Take(t.Data.Length));
            }
        }
    }

    /// <summary>The encoded size; <paramref name="suppressed"/> holds each tensor's zero-suppressed size, or -1 where it travels raw.</summary>
    private static int Measure(Frame frame, out int[] suppressed)
    {
        suppressed = new int[frame.Tensors.Count];
        var size = 8 + 8 + 8 + 4 + 4 + Encoding.UTF8.GetByteCount(frame.SourceId) + 4;
        for (var i = 0; i < frame.Tensors.Count; i++)
        {
            var t = frame.Tensors[i];
            suppressed[i] = ZeroSuppression.EncodedLength(t.ElementType, t.Data);
            size += 4 + Encoding.UTF8.GetByteCount(t.Name) + 4 + 4 + (8 * t.Shape.Length) + 4 + 4
                + (suppressed[i] > 0 ? 4 + suppressed[i] : t.Data.Length);
        }

        return size;
    }

    private ref struct Writer(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;
        private int _at;

        public void Int64(long v) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), v);

        public void Int32(int v) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), v);

        public void Text(string text)
        {
            var length = Encoding.UTF8.GetBytes(text, _buffer[(_at + 4)..]);
            Int32(length);
            _at += length;
        }

        public Span<byte> Take(int n)
        {
            var span = _buffer.Slice(_at, n);
            _at += n;
            return span;
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> buffer)
    {
        private readonly ReadOnlySpan<byte> _buffer = buffer;
        private int _at;

        public readonly bool AtEnd => _at == _buffer.Length;

        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8));

        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4));

        public string Text() => Encoding.UTF8.GetString(Bytes(Int32()));

        public ReadOnlySpan<byte> Bytes(int n)
        {
            var span = _buffer.Slice(_at, n);
            _at += n;
            return span;
        }
    }
}
