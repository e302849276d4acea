using System.Buffers;
using System.Buffers.Binary;
using K4os.Compression.LZ4;

namespace PipelineActors.Transfer.Codecs;

/// <summary>
/// The general lossless stage: LZ4 over any bytes, where it pays. Multi-byte elements are first split into byte planes
/// (byte 0 of every element, then byte 1, ...) because the sign and exponent bytes of activations repeat far more than
/// whole elements do. The block is a flag byte (raw, LZ4, LZ4 over planes), the stored length as int32, the bytes.
/// </summary>
public static class LosslessStage
{
    /// <summary>Bytes a block adds in front of its payload.</summary>
    public const int PrefixBytes = 5;

    private const byte Raw = 0;
    private const byte Lz4 = 1;
    private const byte Lz4Planes = 2;

    /// <summary>The block for <paramref name="raw"/>: compressed where that saves at least an eighth, raw otherwise.</summary>
    /// <remarks>An eighth, as for zero suppression: a smaller saving is not worth the decoder's pass over the bytes.</remarks>
    public static byte[] Encode(ReadOnlySpan<byte> raw, int elementSize)
    {
        if (elementSize is < 1 or > 8 || raw.Length % elementSize != 0)
        {
            throw new ArgumentException($"{raw.Length} bytes are not whole elements of {elementSize} bytes.", nameof(elementSize));
        }

        if (raw.Length >= 64)
        {
            var planes = elementSize > 1 ? ArrayPool<byte>.Shared.Rent(raw.Length) : null;
            var packed = ArrayPool<byte>.Shared.Rent(LZ4Codec.MaximumOutputSize(raw.Length));
            try
            {
                var input = raw;
                if (planes is not null)
                {
                    Split(raw, planes.AsSpan(0, raw.Length), elementSize);
                    input = planes.AsSpan(0, raw.Length);
                }

                var length = LZ4Codec.Encode(input, packed);
                if (length > 0 && length <= raw.Length - (raw.Length / 8))
                {
                    return Block(planes is null ? Lz4 : Lz4Planes, packed.AsSpan(0, length));
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(packed);
                if (planes is not null)
                {
                    ArrayPool<byte>.Shared.Return(planes);
                }
            }
        }

        return Block(Raw, raw);
    }

    /// <summary>
    /// Checks, before the caller allocates <paramref name="rawLength"/> bytes, that the block could hold them: a raw block
    /// must carry exactly that many, and LZ4 cannot expand its input more than 255-fold (a length byte covers 255 bytes).
    /// </summary>
    public static void CheckPlausible(ReadOnlySpan<byte> block, long rawLength, string what)
    {
        if (block.Length < PrefixBytes)
        {
            throw new TensorCodecException($"The {what} ends before its payload's {PrefixBytes}-byte prefix.");
        }

        var stored = block.Length - PrefixBytes;
        var plausible = block[0] == Raw ? stored == rawLength : (stored * 256L) + 64 >= rawLength;
        if (!plausible)
        {
            throw new TensorCodecException($"The {what} carries {stored} payload bytes, which cannot hold the {rawLength} bytes its header declares.");
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> (whose length the caller knows from the tensor header) from a block that must
    /// span all of <paramref name="block"/>; any mismatch is a <see cref="TensorCodecException"/> naming <paramref name="what"/>.
    /// </summary>
    public static void Decode(ReadOnlySpan<byte> block, Span<byte> destination, int elementSize, string what)
    {
        if (block.Length < PrefixBytes)
        {
            throw new TensorCodecException($"The {what} ends before its payload's {PrefixBytes}-byte prefix.");
        }

        var flag = block[0];
        var stored = BinaryPrimitives.ReadInt32LittleEndian(block[1..]);
        if (stored < 0 || stored != block.Length - PrefixBytes)
        {
            throw new TensorCodecException($"The {what} declares a {stored}-byte payload but {block.Length - PrefixBytes} bytes follow.");
        }

        var payload = block[PrefixBytes..];
        switch (flag)
        {
            case Raw:
                if (stored != destination.Length)
                {
                    throw new TensorCodecException($"The {what} carries {stored} raw bytes where its header needs {destination.Length}.");
                }

                payload.CopyTo(destination);
                return;
            case Lz4:
                Inflate(payload, destination, what);
                return;
            case Lz4Planes when elementSize > 1:
                var planes = ArrayPool<byte>.Shared.Rent(destination.Length);
                try
                {
                    Inflate(payload, planes.AsSpan(0, destination.Length), what);
                    Join(planes.AsSpan(0, destination.Length), destination, elementSize);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(planes);
                }

                return;
            default:
                throw new TensorCodecException($"The {what} has an unknown payload flag {flag}.");
        }
    }

    private static void Inflate(ReadOnlySpan<byte> payload, Span<byte> destination, string what)
    {
        int length;
        try
        {
            length = LZ4Codec.Decode(payload, destination);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new TensorCodecException($"The {what}'s LZ4 payload is corrupt.", e);
        }

        if (length != destination.Length)
        {
            throw new TensorCodecException($"The {what}'s LZ4 payload is corrupt or truncated (it gave {length} of {destination.Length} bytes).");
        }
    }

    private static byte[] Block(byte flag, ReadOnlySpan<byte> payload)
    {
        var block = new byte[PrefixBytes + payload.Length];
        block[0] = flag;
        BinaryPrimitives.WriteInt32LittleEndian(block.AsSpan(1), payload.Length);
        payload.CopyTo(block.AsSpan(PrefixBytes));
        return block;
    }

    private static void Split(ReadOnlySpan<byte> raw, Span<byte> planes, int size)
    {
        var n = raw.Length / size;
        for (var b = 0; b < size; b++)
        {
            var plane = planes.Slice(b * n, n);
            for (var i = 0; i < n; i++)
            {
                plane[i] = raw[(i * size) + b];
            }
        }
    }

    private static void Join(ReadOnlySpan<byte> planes, Span<byte> raw, int size)
    {
        var n = raw.Length / size;
        for (var b = 0; b < size; b++)
        {
            var plane = planes.Slice(b * n, n);
            for (var i = 0; i < n; i++)
            {
                raw[(i * size) + b] = plane[i];
            }
        }
    }
}
