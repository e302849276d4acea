using System.Numerics;
using System.Runtime.InteropServices;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// Lossless zero suppression of tensor bytes on the wire: a bitmap with one bit per element (set where the element's
/// bits are not all zero) followed by the non-zero elements in order. Activations cut after a ReLU are largely exact
/// zeros (about half in a random-weight ResNet-50, more in trained networks), and every byte kept off the link saves
/// Akka.Remote's per-byte CPU on both ends on the cores that also run inference. The test is on bits, so -0.0, NaN
/// payloads and denormals come back exactly; only 2-, 4- and 8-byte elements qualify (for 1-byte pixels the bitmap
/// costs an eighth of the data).
/// </summary>
public static class ZeroSuppression
{
    /// <summary>
    /// Bytes the suppressed form of <paramref name="data"/> takes, or -1 where it travels raw (the rule is
    /// <see cref="WireSize.Suppressed"/>, which cut costs use too).
    /// </summary>
    public static int EncodedLength(TensorProto.Types.DataType elementType, byte[] data)
    {
        var size = WireSize.SuppressibleElementBytes(elementType);
        if (size == 0 || data.Length < WireSize.MinimumBytes)
        {
            return -1;
        }

        var zeros = WireSize.CountZeros(elementType, data);
        return (int)WireSize.Suppressed(elementType, data.Length, (data.Length / size) - zeros);
    }

    /// <summary>Writes the bitmap, then the non-zero elements, into <paramref name="destination"/> (<see cref="EncodedLength"/> bytes).</summary>
    public static void Encode(TensorProto.Types.DataType elementType, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        switch (WireSize.SuppressibleElementBytes(elementType))
        {
            case 2:
                Encode(MemoryMarshal.Cast<byte, ushort>(data), destination);
                break;
            case 4:
                Encode(MemoryMarshal.Cast<byte, uint>(data), destination);
                break;
            case 8:
                Encode(MemoryMarshal.Cast<byte, ulong>(data), destination);
                break;
            default:
                throw new ArgumentException($"{elementType} elements are not zero-suppressed.", nameof(elementType));
        }
    }

    /// <summary>Rebuilds <paramref name="rawLength"/> bytes from the bitmap and the non-zero elements.</summary>
    public static byte[] Decode(TensorProto.Types.DataType elementType, ReadOnlySpan<byte> encoded, int rawLength)
    {
        // Checked before allocating: a few packed bytes must not be able to ask for gigabytes of zeros.
        var size = WireSize.SuppressibleElementBytes(elementType);
        if (size == 0)
        {
            throw new InvalidDataException($"A zero-suppressed tensor of {elementType} elements cannot be decoded.");
        }

        if (rawLength < 0 || rawLength % size != 0)
        {
            throw new InvalidDataException($"A zero-suppressed tensor of {rawLength} bytes is not whole {size}-byte elements.");
        }

        var bitmapBytes = BitmapBytes(rawLength / size);
        var packedBytes = encoded.Length - bitmapBytes;
        if (packedBytes < 0 || packedBytes % size != 0 || packedBytes > rawLength)
        {
            throw new InvalidDataException(
                $"A zero-suppressed tensor of {rawLength} bytes cannot be {encoded.Length} bytes packed ({bitmapBytes} of them its bitmap).");
        }

        var raw = new byte[rawLength];
        switch (WireSize.SuppressibleElementBytes(elementType))
        {
            case 2:
                Decode(encoded, MemoryMarshal.Cast<byte, ushort>(raw.AsSpan()));
                break;
            case 4:
                Decode(encoded, MemoryMarshal.Cast<byte, uint>(raw.AsSpan()));
                break;
            case 8:
                Decode(encoded, MemoryMarshal.Cast<byte, ulong>(raw.AsSpan()));
                break;
            default:
                throw new InvalidDataException($"A zero-suppressed tensor of {elementType} elements cannot be decoded.");
        }

        return raw;
    }

    private static int BitmapBytes(int count) => (count + 7) / 8;

    private static void Encode<T>(ReadOnlySpan<T> values, Span<byte> destination)
        where T : unmanaged, IEquatable<T>
    {
        var bitmap = destination[..BitmapBytes(values.Length)];
        var packed = MemoryMarshal.Cast<byte, T>(destination[bitmap.Length..]);
        var k = 0;
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
            if (mask == 0xFF)
            {
                group.CopyTo(packed[k..]);
                k += 8;
                continue;
            }

            while (mask != 0)
            {
                packed[k++] = group[BitOperations.TrailingZeroCount(mask)];
                mask &= mask - 1;
            }
        }

        if (k != packed.Length)
        {
            throw new InvalidOperationException($"Zero suppression packed {k} elements into room for {packed.Length}.");
        }
    }

    private static void Decode<T>(ReadOnlySpan<byte> encoded, Span<T> values)
        where T : unmanaged
    {
        var bitmapBytes = BitmapBytes(values.Length);
        if (encoded.Length < bitmapBytes)
        {
            throw new InvalidDataException("A zero-suppressed tensor is shorter than its bitmap.");
        }

        var bitmap = encoded[..bitmapBytes];
        var packed = MemoryMarshal.Cast<byte, T>(encoded[bitmapBytes..]);
        var k = 0;
        for (var j = 0; j < bitmap.Length; j++)
        {
            uint mask = bitmap[j];
            if (mask == 0)
            {
                continue;
            }

            if (mask == 0xFF && (j * 8) + 8 <= values.Length)
            {
                packed.Slice(k, 8).CopyTo(values[(j * 8)..]);
                k += 8;
                continue;
            }

            while (mask != 0)
            {
                // A corrupt bitmap runs past the values or the packed elements: the span bounds check throws.
                values[(j * 8) + BitOperations.TrailingZeroCount(mask)] = packed[k++];
                mask &= mask - 1;
            }
        }

        if (k != packed.Length)
        {
            throw new InvalidDataException($"A zero-suppressed tensor carries {packed.Length} elements but its bitmap marks {k}.");
        }
    }
}
