using System.Buffers.Binary;
using System.Runtime.Serialization;
using System.Text;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Inference;

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

    /// <summary>Rebuilds the frame from exactly its encoded bytes, within <see cref="WireLimits.Default"/>.</summary>
    public static Frame Decode(ReadOnlySpan<byte> encoded) => Decode(encoded, WireLimits.Default);

    /// <summary>
    /// Rebuilds the frame from exactly its encoded bytes; tensors get arrays of their own. Every length and count is checked
    /// against what is left of <paramref name="encoded"/> and against <paramref name="limits"/> before anything is allocated
    /// for it (a tensor's bytes must also match its shape), and whatever is wrong is a <see cref="SerializationException"/>.
    /// </summary>
    public static Frame Decode(ReadOnlySpan<byte> encoded, WireLimits limits)
    {
        try
        {
            return Read(encoded, limits);
        }
        catch (Exception e) when (e is not SerializationException and not OutOfMemoryException)
        {
            // A corrupt zero-suppression bitmap, say: the sender's fault, refused like any other malformed frame.
            throw new SerializationException($"A frame does not decode: {e.Message}", e);
        }
    }

    private static Frame Read(ReadOnlySpan<byte> encoded, WireLimits limits)
    {
        var r = new Reader(encoded, limits);
        var id = r.Int64();
        var epoch = r.Int64();
        var capture = r.Int64();
        var attempt = r.Int32();
        var source = r.Text();
        var count = r.Count(limits.Tensors, "A frame's tensor count");
        var tensors = new HostTensor[count];
        long decoded = 0;
        for (var i = 0; i < count; i++)
        {
            var name = r.Text();
            var dtype = (TensorProto.Types.DataType)r.Int32();
            if (!Enum.IsDefined(dtype) || dtype == TensorProto.Types.DataType.Undefined)
            {
                throw new SerializationException($"Tensor '{name}' of frame {id} has element type {(int)dtype}, not an ONNX type.");
            }

            var shape = new long[r.Count(limits.TensorRank, $"The rank of tensor '{name}'")];
            long elements = 1;
            for (var d = 0; d < shape.Length; d++)
            {
                shape[d] = r.Int64();
                if (shape[d] < 0 || (shape[d] > 0 && elements > limits.FrameBytes / shape[d]))
                {
                    throw new SerializationException($"Tensor '{name}' of frame {id} has dimension {shape[d]}: negative or past the frame limit.");
                }

                elements *= shape[d];
            }

            var encoding = r.Int32();
            var rawLength = r.Count(limits.FrameBytes - decoded, $"The length of tensor '{name}'");
            var bits = ElementTypes.BitsOf(dtype);
            if (bits > 0 && rawLength != ((elements * bits) + 7) / 8)
            {
                throw new SerializationException(
                    $"Tensor '{name}' of frame {id} carries {rawLength} bytes, not the {((elements * bits) + 7) / 8} its shape "
                        + $"[{string.Join(",", shape)}] takes.");
            }

            decoded += rawLength;
            var data = encoding switch
            {
                Raw => r.Bytes(rawLength).ToArray(),
                ZeroSuppressed => ZeroSuppression.Decode(dtype, r.Bytes(r.Count(rawLength, $"The packed length of tensor '{name}'")), rawLength),
                _ => throw new SerializationException($"Tensor '{name}' has an unknown encoding {encoding}."),
            };
            tensors[i] = new HostTensor(name, dtype, shape, data);
        }

        if (!r.AtEnd)
        {
            throw new SerializationException($"Frame {id} has bytes after its last tensor.");
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

    private ref struct Reader(ReadOnlySpan<byte> buffer, WireLimits limits)
    {
        private readonly ReadOnlySpan<byte> _buffer = buffer;
        private readonly WireLimits _limits = limits;
        private int _at;

        public readonly bool AtEnd => _at == _buffer.Length;

        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8));

        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4));

        public string Text() => Encoding.UTF8.GetString(Bytes(Count(_limits.StringBytes, "A string's length")));

        /// <summary>A count read from the frame, refused when negative or past <paramref name="limit"/>.</summary>
        public int Count(long limit, string what) => (int)WireLimits.Check(Int32(), limit, what);

        public ReadOnlySpan<byte> Bytes(int n)
        {
            if (n < 0 || n > _buffer.Length - _at)
            {
                throw new SerializationException($"A frame field of {n} bytes runs past the {_buffer.Length - _at} bytes left.");
            }

            var span = _buffer.Slice(_at, n);
            _at += n;
            return span;
        }
    }
}
