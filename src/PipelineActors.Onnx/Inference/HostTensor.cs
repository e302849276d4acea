using System.Runtime.InteropServices;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;

namespace PipelineActors.Onnx.Inference;

/// <summary>A tensor held in managed memory as raw little-endian bytes, whatever its element type.</summary>
public sealed record HostTensor(TensorInfo Info, byte[] Data)
{
    /// <summary>The values as doubles, for comparisons; only numeric types.</summary>
    public double[] ToDoubles()
    {
        var span = Data.AsSpan();
        return Info.ElementType switch
        {
            TensorProto.Types.DataType.Float => Array.ConvertAll(MemoryMarshal.Cast<byte, float>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Double => MemoryMarshal.Cast<byte, double>(span).ToArray(),
            TensorProto.Types.DataType.Float16 => Array.ConvertAll(MemoryMarshal.Cast<byte, Half>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Int64 => Array.ConvertAll(MemoryMarshal.Cast<byte, long>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Int32 => Array.ConvertAll(MemoryMarshal.Cast<byte, int>(span).ToArray(), v => (double)v),
            TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => Array.ConvertAll(Data, v => (double)v),
            TensorProto.Types.DataType.Int8 => Array.ConvertAll(Data, v => (double)(sbyte)v),
            _ => throw new NotSupportedException($"Comparing {Info.TypeName} tensors is not supported."),
        };
    }

    /// <summary>max |a - b| / max |a|: the relative error of <paramref name="actual"/> against <paramref name="expected"/>.</summary>
    public static double RelativeDifference(HostTensor expected, HostTensor actual)
    {
        if (!expected.Info.Shape.SequenceEqual(actual.Info.Shape) || expected.Info.ElementType != actual.Info.ElementType)
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

    public static HostTensor Deterministic(TensorInfo info, int seed)
    {
        using var value = OrtTensors.Deterministic(info, seed);
        return new HostTensor(info, OrtTensors.ToBytes(value));
    }
}
