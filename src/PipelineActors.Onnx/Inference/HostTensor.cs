using System.Runtime.InteropServices;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Inference;

/// <summary>
/// A tensor in managed memory as raw little-endian bytes it owns, whatever its element type: a frame's tensor on the wire,
/// a model's input or output. Equal when name, type, shape and every byte agree.
/// </summary>
public sealed record HostTensor(string Name, TensorProto.Types.DataType ElementType, long[] Shape, byte[] Data)
{
    public HostTensor(TensorInfo info, byte[] data)
        : this(info.Name, info.ElementType, info.Shape, data)
    {
    }

    public TensorInfo Info => new(Name, ElementType, Shape);

    public bool Equals(HostTensor? other) =>
        other is not null && Name == other.Name && ElementType == other.ElementType && Shape.SequenceEqual(other.Shape)
        && Data.AsSpan().SequenceEqual(other.Data);

    public override int GetHashCode() => HashCode.Combine(Name, ElementType, Data.Length);

    /// <summary>The values as doubles, for comparisons; only numeric types.</summary>
    public double[] ToDoubles()
    {
        var span = Data.AsSpan();
        return ElementType switch
        {
            TensorProto.Types.DataType.Float => Array.ConvertAll(MemoryMarshal.Cast<byte, float>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Double => MemoryMarshal.Cast<byte, double>(span).ToArray(),
            TensorProto.Types.DataType.Float16 => Array.ConvertAll(MemoryMarshal.Cast<byte, Half>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Int64 => Array.ConvertAll(MemoryMarshal.Cast<byte, long>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Int32 => Array.ConvertAll(MemoryMarshal.Cast<byte, int>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => Array.ConvertAll(Data, v => (double)v),
            TensorProto.Types.DataType.Int8 => Array.ConvertAll(Data, v => (double)(sbyte)v),
            _ => throw new NotSupportedException($"Comparing {ElementTypes.NameOf(ElementType)} tensors is not supported."),
        };
    }

    /// <summary>max |a - b| / max |a|: the relative error of <paramref name="actual"/> against <paramref name="expected"/>.</summary>
    public static double RelativeDifference(HostTensor expected, HostTensor actual)
    {
        if (!expected.Shape.SequenceEqual(actual.Shape) || expected.ElementType != actual.ElementType)
        {
            return double.PositiveInfinity;
        }

        var a = expected.ToDoubles();
        var b = actual.ToDoubles();
        double maxDiff = 0, maxAbs = 0;
        for (var i = 0; i < a.Length; i++)
        {
            if (double.IsNaN(a[i]) != double.IsNaN(b[i]))
            {
                return double.PositiveInfinity;
            }

            maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - b[i]));
            maxAbs = Math.Max(maxAbs, Math.Abs(a[i]));
        }

        return maxDiff == 0 ? 0 : maxDiff / Math.Max(maxAbs, double.Epsilon);
    }

    /// <summary>A reproducible input (<see cref="OrtTensors.DeterministicBytes"/>), made in managed memory.</summary>
    public static HostTensor Deterministic(TensorInfo info, int seed) => new(info, OrtTensors.DeterministicBytes(info, seed));
}
