using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Sources;

/// <summary>
/// A moving test pattern shaped like the model's input (needs nothing installed). The pattern of
/// capture <c>n</c> is a pure function of <c>n</c>, so tests can recompute any frame's input.
/// </summary>
public sealed class SyntheticSource : IFrameSource
{
    private readonly IReadOnlyList<TensorInfo> _inputs;
    private readonly long? _count;
    private long _sequence;

    /// <param name="live">A camera (drops frames when the pipeline is full) rather than a clip played at its frame rate (never drops).</param>
    public SyntheticSource(IReadOnlyList<TensorInfo> inputs, double framesPerSecond, long? count = null, bool live = true)
    {
        _inputs = inputs;
        FramesPerSecond = framesPerSecond;
        _count = count;
        IsLive = live && framesPerSecond > 0;
    }

    public string Id => "synthetic";

    public bool IsLive { get; }

    public double FramesPerSecond { get; }

    public IReadOnlyList<HostTensor>? Read()
    {
        if (_count is { } limit && _sequence >= limit)
        {
            return null;
        }

        return Pattern(_inputs, _sequence++);
    }

    /// <summary>The tensors of capture <paramref name="sequence"/>: diagonal stripes that move one pixel per frame.</summary>
    public static IReadOnlyList<HostTensor> Pattern(IReadOnlyList<TensorInfo> inputs, long sequence) =>
        inputs.Select(info => new HostTensor(info.Name, info.ElementType, info.Shape, Fill(info, sequence))).ToList();

    private static byte[] Fill(TensorInfo info, long sequence)
    {
        // Pixels p(i) = ((column + row + 3 n) mod 64) * 4; a float input holds p / 255, the
        // value a first stage fed uint8 pixels computes, so both kinds of frame mean the same image.
        var count = (int)info.ElementCount;
        var width = info.Shape.Length > 0 ? (int)Math.Max(1, info.Shape[^1]) : 1;
        var bytes = new byte[info.Bytes];
        var shift = (int)((3 * sequence) & 63);
        switch (info.ElementType)
        {
            case TensorProto.Types.DataType.Float:
            {
                var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
                for (int i = 0, row = 0; i < count; row++)
                {
                    for (var column = 0; column < width && i < count; column++, i++)
                    {
                        floats[i] = (((column + row + shift) & 63) * 4) / 255f;
                    }
                }

                break;
            }

            case TensorProto.Types.DataType.Uint8:
                for (int i = 0, row = 0; i < count; row++)
                {
                    for (var column = 0; column < width && i < count; column++, i++)
                    {
                        bytes[i] = (byte)(((column + row + shift) & 63) * 4);
                    }
                }

                break;
            default:
                break; // zeros for other types
        }

        return bytes;
    }

    public void Dispose()
    {
    }
}
