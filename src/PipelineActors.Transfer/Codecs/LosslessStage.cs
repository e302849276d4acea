using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using K4os.Compression.LZ4;
using ZstdSharp;

namespace PipelineActors.Transfer.Codecs;

/// <summary>The general-purpose compressor inside the lossless stage: LZ4 (fast) or zstd (smaller, slower).</summary>
public enum LosslessMethod
{
    Lz4,
    Zstd,
}

/// <summary>
/// The general lossless stage: LZ4 (or zstd, when asked for) over any bytes, where it pays. The encoder tries two inputs and keeps the smaller:
/// the bytes as they are, and a zero-elided form (a bitmap of the elements that are not all-zero bytes, then those
/// elements split into byte planes), because after a ReLU the zeros cluster in space (the bitmap squeezes well) and the
/// sign and exponent bytes of what is left repeat far more than whole elements do. Measured on a ResNet-18 cut
/// activation, the zero-elided form is about a fifth smaller than plain LZ4.
/// A block is a flag byte (raw, LZ4, zero-elided LZ4, zstd, zero-elided zstd), the length of the rest as int32, then the payload; the
/// zero-elided payload starts with the count of non-zero elements as int32.
/// </summary>
public static class LosslessStage
{
    /// <summary>Bytes a block adds in front of its payload.</summary>
    public const int PrefixBytes = 5;

    private const byte Raw = 0;
    private const byte Lz4 = 1;
    private const byte Lz4ZeroElided = 2;
    private const byte Zstd = 3;
    private const byte ZstdZeroElided = 4;

    /// <summary>zstd level 3 (its default): level 9 and above measured barely smaller on cut activations at several times the CPU.</summary>
    private const int ZstdLevel = 3;

    /// <summary>
    /// The most a zstd frame expands on decoding: a 128 KiB block can be an RLE block of 4 bytes, so 32768-fold, with room for
    /// the frame header.
    /// </summary>
    private const long ZstdMaxExpansion = 32768;

    /// <summary>The block for <paramref name="raw"/>: compressed where that saves at least an eighth, raw otherwise.</summary>
    /// <remarks>An eighth, as for zero suppression: a smaller saving is not worth the decoder's pass over the bytes.</remarks>
    public static byte[] Encode(ReadOnlySpan<byte> raw, int elementSize, LosslessMethod method = LosslessMethod.Lz4)
    {
        if (elementSize is < 1 or > 8 || raw.Length % elementSize != 0)
        {
            throw new ArgumentException($"{raw.Length} bytes are not whole elements of {elementSize} bytes.", nameof(elementSize));
        }

        if (raw.Length < 64)
        {
            return Block(Raw, [], raw);
        }

        var count = raw.Length / elementSize;
        var bitmapBytes = (count + 7) / 8;
        var elided = ArrayPool<byte>.Shared.Rent(bitmapBytes + raw.Length);
        var bound = method == LosslessMethod.Zstd
            ? (int)Compressor.GetCompressBound(bitmapBytes + raw.Length)
            : LZ4Codec.MaximumOutputSize(bitmapBytes + raw.Length);
        var packed = ArrayPool<byte>.Shared.Rent(bound);
        var (plainFlag, elidedFlag) = method == LosslessMethod.Zstd ? (Zstd, ZstdZeroElided) : (Lz4, Lz4ZeroElided);
        try
        {
            var worthIt = raw.Length - (raw.Length / 8);
            var plain = Compress(method, raw, packed);
            var best = plain > 0 && plain <= worthIt ? Block(plainFlag, [], packed.AsSpan(0, plain)) : null;

            var nonZero = Elide(raw, elided, elementSize, count);
            var length = Compress(method, elided.AsSpan(0, bitmapBytes + (nonZero * elementSize)), packed);
            if (length > 0 && length + 4 <= worthIt && (best is null || length + 4 < best.Length - PrefixBytes))
            {
                var header = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(header, nonZero);
                best = Block(elidedFlag, header, packed.AsSpan(0, length));
            }

            return best ?? Block(Raw, [], raw);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
            ArrayPool<byte>.Shared.Return(elided);
        }
    }

    /// <summary>
    /// Checks, before the caller allocates <paramref name="rawLength"/> bytes, that the block could hold them: a raw block
    /// must carry exactly that many, and LZ4 cannot expand its input more than 255-fold (a length byte covers 255 bytes),
    /// on top of the zero-elided form's at most 8 x element size.
    /// </summary>
    public static void CheckPlausible(ReadOnlySpan<byte> block, long rawLength, int elementSize, string what)
    {
        if (block.Length < PrefixBytes)
        {
            throw new TensorCodecException($"The {what} ends before its payload's {PrefixBytes}-byte prefix.");
        }

        var stored = block.Length - PrefixBytes;
        var expansion = block[0] is Zstd or ZstdZeroElided ? ZstdMaxExpansion : 256L;
        var plausible = block[0] == Raw ? stored == rawLength : (stored * expansion * 8 * elementSize) + 64 >= rawLength;
        if (!plausible)
        {
            throw new TensorCodecException(
                $"The {what} carries {stored} payload bytes, which cannot hold the {rawLength} bytes its header declares.");
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
                Inflate(LosslessMethod.Lz4, payload, destination, what);
                return;
            case Lz4ZeroElided:
                DecodeElided(LosslessMethod.Lz4, payload, destination, elementSize, what);
                return;
            case Zstd:
                Inflate(LosslessMethod.Zstd, payload, destination, what);
                return;
            case ZstdZeroElided:
                DecodeElided(LosslessMethod.Zstd, payload, destination, elementSize, what);
                return;
            default:
                throw new TensorCodecException($"The {what} has an unknown payload flag {flag}.");
        }
    }

    /// <summary>Writes the bitmap and the non-zero elements' byte planes into <paramref name="elided"/>; returns how many are non-zero.</summary>
    private static int Elide(ReadOnlySpan<byte> raw, Span<byte> elided, int size, int count)
    {
        var bitmapBytes = (count + 7) / 8;
        var bitmap = elided[..bitmapBytes];
        var nonZero = size switch
        {
            1 => Mark(raw, bitmap),
            2 => Mark(MemoryMarshal.Cast<byte, ushort>(raw), bitmap),
            4 => Mark(MemoryMarshal.Cast<byte, uint>(raw), bitmap),
            8 => Mark(MemoryMarshal.Cast<byte, ulong>(raw), bitmap),
            _ => throw new ArgumentException($"Elements of {size} bytes are not elided.", nameof(size)),
        };

        var planes = elided.Slice(bitmapBytes, nonZero * size);
        var k = 0;
        for (var j = 0; j < bitmapBytes; j++)
        {
            uint mask = bitmap[j];
            while (mask != 0)
            {
                var i = (j * 8) + BitOperations.TrailingZeroCount(mask);
                for (var b = 0; b < size; b++)
                {
                    planes[(b * nonZero) + k] = raw[(i * size) + b];
                }

                k++;
                mask &= mask - 1;
            }
        }

        return nonZero;
    }

    private static int Mark<T>(ReadOnlySpan<T> values, Span<byte> bitmap)
        where T : unmanaged, IEquatable<T>
    {
        var nonZero = 0;
        for (var j = 0; j < bitmap.Length; j++)
        {
            var group = values.Slice(j * 8, Math.Min(8, values.Length - (j * 8)));
            uint mask = 0;
            for (var b = 0; b < group.Length; b++)
            {
                // Branch-free: activations are zero about as often as not, which a branch would mispredict.
                mask |= (group[b].Equals(default) ? 0u : 1u) << b;
            }

            bitmap[j] = (byte)mask;
            nonZero += BitOperations.PopCount(mask);
        }

        return nonZero;
    }

    private static void DecodeElided(LosslessMethod method, ReadOnlySpan<byte> payload, Span<byte> destination, int size, string what)
    {
        var count = destination.Length / size;
        if (payload.Length < 4)
        {
            throw new TensorCodecException($"The {what} ends before its count of non-zero elements.");
        }

        var nonZero = BinaryPrimitives.ReadInt32LittleEndian(payload);
        if (nonZero < 0 || nonZero > count)
        {
            throw new TensorCodecException($"The {what} declares {nonZero} non-zero elements of {count}.");
        }

        var bitmapBytes = (count + 7) / 8;
        var length = bitmapBytes + (nonZero * size);
        var elided = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Inflate(method, payload[4..], elided.AsSpan(0, length), what);
            var bitmap = elided.AsSpan(0, bitmapBytes);
            var marked = 0;
            foreach (var b in bitmap)
            {
                marked += BitOperations.PopCount(b);
            }

            // Bits past the last element would place values outside the tensor.
            var spare = (bitmapBytes * 8) - count;
            if (marked != nonZero || (spare > 0 && bitmap[^1] >> (8 - spare) != 0))
            {
                throw new TensorCodecException($"The {what}'s bitmap marks {marked} elements where {nonZero} are declared; the payload is corrupt.");
            }

            destination.Clear();
            var planes = elided.AsSpan(bitmapBytes, nonZero * size);
            var k = 0;
            for (var j = 0; j < bitmapBytes; j++)
            {
                uint mask = bitmap[j];
                while (mask != 0)
                {
                    var i = (j * 8) + BitOperations.TrailingZeroCount(mask);
                    for (var b = 0; b < size; b++)
                    {
                        destination[(i * size) + b] = planes[(b * nonZero) + k];
                    }

                    k++;
                    mask &= mask - 1;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(elided);
        }
    }

    private static int Compress(LosslessMethod method, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (method == LosslessMethod.Lz4)
        {
            return LZ4Codec.Encode(source, destination);
        }

        using var zstd = new Compressor(ZstdLevel);
        return zstd.Wrap(source, destination);
    }

    private static void Inflate(LosslessMethod method, ReadOnlySpan<byte> payload, Span<byte> destination, string what)
    {
        var name = method == LosslessMethod.Zstd ? "zstd" : "LZ4";
        int length;
        try
        {
            if (method == LosslessMethod.Lz4)
            {
                length = LZ4Codec.Decode(payload, destination);
            }
            else
            {
                using var zstd = new Decompressor();
                length = zstd.Unwrap(payload, destination);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new TensorCodecException($"The {what}'s {name} payload is corrupt.", e);
        }

        if (length != destination.Length)
        {
            throw new TensorCodecException($"The {what}'s {name} payload is corrupt or truncated (it gave {length} of {destination.Length} bytes).");
        }
    }

    private static byte[] Block(byte flag, ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        var block = new byte[PrefixBytes + header.Length + payload.Length];
        block[0] = flag;
        BinaryPrimitives.WriteInt32LittleEndian(block.AsSpan(1), header.Length + payload.Length);
        header.CopyTo(block.AsSpan(PrefixBytes));
        payload.CopyTo(block.AsSpan(PrefixBytes + header.Length));
        return block;
    }
}
