using System.Runtime.InteropServices;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Graph;

/// <summary>A named tensor with its element type and concrete shape for one input size.</summary>
public sealed record TensorInfo(string Name, TensorProto.Types.DataType ElementType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * Math.Max(d, 0));

    /// <summary>Bytes per frame; sub-byte types round up, strings count as unknown (0).</summary>
    public long Bytes => (ElementCount * ElementTypes.BitsOf(ElementType) + 7) / 8;

    /// <summary>
    /// Share of elements whose bits were all zero in the calibration run (<see cref="TensorShapes"/>); 0 when not
    /// measured. Not part of equality: it describes one input, not the tensor.
    /// </summary>
    public double ZeroShare { get; init; }

    /// <summary>
    /// Axes whose size depends on the frame's values, not only on the input size (after NonMaxSuppression, NonZero, ...;
    /// see <see cref="DataDependentSizes"/>): stage models declare them symbolic. Not part of equality either.
    /// </summary>
    public IReadOnlyList<int> DataDependentAxes { get; init; } = [];

    /// <summary>Whether the tensor's size can change from frame to frame.</summary>
    public bool HasDataDependentSize => DataDependentAxes.Count > 0;

    /// <summary>Bytes per frame expected on a link, where zero suppression applies (<see cref="WireSize"/>).</summary>
    public long WireBytes => WireSize.Expected(ElementType, Bytes, ZeroShare);

    public string ShapeText => "[" + string.Join(",", Shape) + "]";

    public string TypeName => ElementTypes.NameOf(ElementType);

    public override string ToString() => $"{Name}:{TypeName}{ShapeText}";

    public bool Equals(TensorInfo? other) =>
        other is not null && Name == other.Name && ElementType == other.ElementType && Shape.SequenceEqual(other.Shape);

    public override int GetHashCode() => HashCode.Combine(Name, ElementType, Shape.Length);
}

/// <summary>
/// The rule for zero-suppressed tensors on the wire (a bitmap of one bit per element, then the non-zero elements), kept
/// here so that cut costs and the wire format agree: only 2-, 4- and 8-byte elements qualify, a tensor under 1 KiB
/// travels raw, and suppression is used only where it saves at least an eighth.
/// </summary>
public static class WireSize
{
    public const int MinimumBytes = 1024;

    /// <summary>2, 4 or 8 for element types that can be zero-suppressed; 0 for the rest.</summary>
    public static int SuppressibleElementBytes(TensorProto.Types.DataType type) => ElementTypes.BitsOf(type) switch
    {
        16 => 2,
        32 => 4,
        64 => 8,
        _ => 0,
    };

    /// <summary>Elements of a suppressible type whose bits are all zero (-0.0 and NaN are not zero).</summary>
    public static int CountZeros(TensorProto.Types.DataType type, ReadOnlySpan<byte> data) => SuppressibleElementBytes(type) switch
    {
        2 => MemoryMarshal.Cast<byte, ushort>(data).Count((ushort)0),
        4 => MemoryMarshal.Cast<byte, uint>(data).Count(0u),
        8 => MemoryMarshal.Cast<byte, ulong>(data).Count(0ul),
        _ => throw new ArgumentException($"{type} elements are not zero-suppressed.", nameof(type)),
    };

    /// <summary>The suppressed size of <paramref name="rawBytes"/> holding <paramref name="nonZero"/> non-zero elements, or -1 where it
    /// travels raw.</summary>
    public static long Suppressed(TensorProto.Types.DataType type, long rawBytes, long nonZero)
    {
        var size = SuppressibleElementBytes(type);
        if (size == 0 || rawBytes < MinimumBytes || rawBytes % size != 0)
        {
            return -1;
        }

        var encoded = ((rawBytes / size) + 7) / 8 + (nonZero * size);
        return encoded <= rawBytes - (rawBytes / 8) ? encoded : -1;
    }

    /// <summary>Expected bytes on the wire for a tensor whose elements are zero <paramref name="zeroShare"/> of the time.</summary>
    public static long Expected(TensorProto.Types.DataType type, long rawBytes, double zeroShare)
    {
        var size = SuppressibleElementBytes(type);
        if (size == 0)
        {
            return rawBytes;
        }

        var suppressed = Suppressed(type, rawBytes, (long)Math.Round(rawBytes / size * (1 - zeroShare)));
        return suppressed < 0 ? rawBytes : suppressed;
    }
}

/// <summary>Facts about ONNX element types (TensorProto.DataType, which ONNX Runtime numbers the same way).</summary>
public static class ElementTypes
{
    public static int BitsOf(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => 32,
        TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Bool => 8,
        TensorProto.Types.DataType.Uint16 or TensorProto.Types.DataType.Int16 => 16,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 => 16,
        TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 32,
        TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64 or TensorProto.Types.DataType.Double => 64,
        TensorProto.Types.DataType.Complex64 => 64,
        TensorProto.Types.DataType.Complex128 => 128,
        TensorProto.Types.DataType.Float8E4M3Fn or TensorProto.Types.DataType.Float8E4M3Fnuz
            or TensorProto.Types.DataType.Float8E5M2 or TensorProto.Types.DataType.Float8E5M2Fnuz => 8,
        TensorProto.Types.DataType.Uint4 or TensorProto.Types.DataType.Int4 or TensorProto.Types.DataType.Float4E2M1 => 4,
        _ => 0,
    };

    public static string NameOf(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => "float32",
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        TensorProto.Types.DataType.Double => "float64",
        TensorProto.Types.DataType.Uint8 => "uint8",
        TensorProto.Types.DataType.Int8 => "int8",
        TensorProto.Types.DataType.Uint16 => "uint16",
        TensorProto.Types.DataType.Int16 => "int16",
        TensorProto.Types.DataType.Int32 => "int32",
        TensorProto.Types.DataType.Uint32 => "uint32",
        TensorProto.Types.DataType.Int64 => "int64",
        TensorProto.Types.DataType.Uint64 => "uint64",
        TensorProto.Types.DataType.Bool => "bool",
        TensorProto.Types.DataType.String => "string",
        _ => type.ToString().ToLowerInvariant(),
    };

    /// <summary>Parses the names <see cref="NameOf"/> writes (used by manifests).</summary>
    public static TensorProto.Types.DataType Parse(string name)
    {
        foreach (var value in Enum.GetValues<TensorProto.Types.DataType>())
        {
            if (NameOf(value) == name)
            {
                return value;
            }
        }

        throw new PipelineInputException($"'{name}' is not an ONNX element type name.");
    }
}
