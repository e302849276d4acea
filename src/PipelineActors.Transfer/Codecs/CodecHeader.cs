using System.Buffers.Binary;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Transfer.Codecs;

/// <summary>The codec ids written into every header; a value never changes meaning once shipped.</summary>
internal enum CodecId : byte
{
    Lz4 = 1,
    Fp16 = 2,
    Int8 = 3,
    Int4 = 4,
    Jpeg = 5,
}

/// <summary>
/// The header every encoded tensor starts with: codec id, version, element type (ONNX numbering), rank, the dims and
/// the element count as little-endian int64, then an FNV-1a checksum of those bytes. The count is redundant with the
/// dims on purpose: a decoder checks one against the other, and the checksum catches any single corrupted byte.
/// </summary>
internal static class CodecHeader
{
    public const byte Version = 1;

    private const int FixedBytes = 4 + 8 + 4;

    public static int Size(int rank) => FixedBytes + (8 * rank);

    /// <summary>Checks a shape against the values an encoder was given and returns the element count.</summary>
    public static long CheckShape(ReadOnlySpan<long> shape, int valueCount)
    {
        if (shape.Length > byte.MaxValue)
        {
            throw new ArgumentException($"A tensor of rank {shape.Length} cannot be encoded; the most is {byte.MaxValue}.", nameof(shape));
        }

        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"A tensor with a negative dimension ({d}) cannot be encoded.", nameof(shape));
            }

            count = checked(count * d);
        }

        if (count != valueCount)
        {
            throw new ArgumentException(
                $"The shape [{string.Join(",", shape.ToArray())}] holds {count} elements but {valueCount} values were given.",
                nameof(shape));
        }

        return count;
    }

    public static int Write(
        Span<byte> destination, CodecId id, ReadOnlySpan<long> shape, TensorProto.Types.DataType elementType = TensorProto.Types.DataType.Float)
    {
        destination[0] = (byte)id;
        destination[1] = Version;
        destination[2] = (byte)elementType;
        destination[3] = (byte)shape.Length;
        long count = 1;
        for (var i = 0; i < shape.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(destination[(4 + (8 * i))..], shape[i]);
            count *= shape[i];
        }

        var end = 4 + (8 * shape.Length);
        BinaryPrimitives.WriteInt64LittleEndian(destination[end..], count);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[(end + 8)..], Checksum(destination[..(end + 8)]));
        return end + 12;
    }

    /// <summary>Reads and checks a header; returns the shape, the element count and where the body starts.</summary>
    public static (long[] Shape, long Count, int BodyOffset) Read(
        ReadOnlySpan<byte> source, CodecId expected, string codec, DecodeLimits limits,
        TensorProto.Types.DataType elementType = TensorProto.Types.DataType.Float)
    {
        if (source.Length < FixedBytes)
        {
            throw new TensorCodecException(
                $"The {codec} tensor is {source.Length} bytes long, shorter than the smallest header ({FixedBytes} bytes).");
        }

        if (source[0] != (byte)expected)
        {
            throw new TensorCodecException($"The buffer holds a tensor of codec id {source[0]}, not a {codec} tensor (id {(byte)expected}).");
        }

        if (source[1] != Version)
        {
            throw new TensorCodecException($"The {codec} tensor has format version {source[1]}; this build reads version {Version}.");
        }

        if (source[2] != (byte)elementType)
        {
            throw new TensorCodecException(
                $"The {codec} tensor declares element type {source[2]}; only "
                + $"{(elementType == TensorProto.Types.DataType.Float ? "float32" : "uint8")} ({(int)elementType}) is encoded.");
        }

        int rank = source[3];
        if (rank > limits.MaxRank)
        {
            throw new TensorCodecException($"The {codec} tensor declares rank {rank}, above the limit of {limits.MaxRank}.");
        }

        var size = Size(rank);
        if (source.Length < size)
        {
            throw new TensorCodecException($"The {codec} tensor is {source.Length} bytes long, shorter than its rank-{rank} header ({size} bytes).");
        }

        var stored = BinaryPrimitives.ReadUInt32LittleEndian(source[(size - 4)..]);
        if (stored != Checksum(source[..(size - 4)]))
        {
            throw new TensorCodecException($"The {codec} tensor's header fails its checksum; the buffer is corrupt.");
        }

        var shape = new long[rank];
        long count = 1;
        for (var i = 0; i < rank; i++)
        {
            shape[i] = BinaryPrimitives.ReadInt64LittleEndian(source[(4 + (8 * i))..]);
            if (shape[i] < 0)
            {
                throw new TensorCodecException($"The {codec} tensor declares a negative dimension ({shape[i]}).");
            }

            if (shape[i] > limits.MaxElements)
            {
                throw new TensorCodecException(
                    $"The {codec} tensor declares dimension {shape[i]}, above the limit of {limits.MaxElements} elements.");
            }

            // Both factors are at most MaxElements, so the product is checked before it can overflow.
            count = shape[i] == 0 || count <= limits.MaxElements / shape[i] ? count * shape[i] : long.MaxValue;
        }

        var declared = BinaryPrimitives.ReadInt64LittleEndian(source[(size - 12)..]);
        if (count > limits.MaxElements || declared > limits.MaxElements)
        {
            throw new TensorCodecException($"The {codec} tensor declares more elements than the limit of {limits.MaxElements}.");
        }

        if (count > int.MaxValue / sizeof(float))
        {
            throw new TensorCodecException($"The {codec} tensor declares {count} elements, more than one buffer can hold.");
        }

        if (declared != count)
        {
            throw new TensorCodecException($"The {codec} tensor declares {declared} elements but its dims hold {count}.");
        }

        return (shape, count, size);
    }

    /// <summary>32-bit FNV-1a: every step is a bijection of the state, so changing any one byte changes the result.</summary>
    public static uint Checksum(ReadOnlySpan<byte> bytes)
    {
        var hash = 2166136261u;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return hash;
    }
}
