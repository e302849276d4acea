using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx;

namespace PipelineActors.Onnx.Inference;

/// <summary>Moves tensors of any ONNX element type between byte buffers and ONNX Runtime values.</summary>
public static class OrtTensors
{
    /// <summary>A tensor in a runtime-owned buffer filled with the given bytes.</summary>
    public static OrtValue FromBytes(TensorInfo info, ReadOnlySpan<byte> bytes)
    {
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, (TensorElementType)info.ElementType, info.Shape);
        bytes.CopyTo(value.GetTensorMutableRawData());
        return value;
    }

    public static byte[] ToBytes(OrtValue value) => value.GetTensorMutableRawData().ToArray();

    /// <summary>A reproducible input in a runtime-owned buffer (<see cref="DeterministicBytes"/>).</summary>
    public static OrtValue Deterministic(TensorInfo info, int seed) => FromBytes(info, DeterministicBytes(info, seed));

    /// <summary>A reproducible input's bytes: values in [0,1) for floats, 0..255 for bytes, zeros otherwise.</summary>
    public static byte[] DeterministicBytes(TensorInfo info, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[info.Bytes];
        switch (info.ElementType)
        {
            case Proto.TensorProto.Types.DataType.Float:
                var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
                for (var i = 0; i < floats.Length; i++)
                {
                    floats[i] = random.NextSingle();
                }

                break;
            case Proto.TensorProto.Types.DataType.Uint8:
            case Proto.TensorProto.Types.DataType.Int8:
                random.NextBytes(bytes);
                break;
            default:
                break; // zeros are valid for every other type (ids, masks, flags)
        }

        return bytes;
    }
}
