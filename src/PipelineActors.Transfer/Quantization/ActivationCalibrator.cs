using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Quantization;

/// <summary>
/// Runs real frames through the float model with the tensors to be quantised exposed as extra outputs, and keeps
/// whole-tensor statistics of each (activations are quantised per tensor: the int8 kernels take one input scale).
/// </summary>
public sealed class ActivationCalibrator : IDisposable
{
    /// <summary>A channel axis no tensor reaches, so that <see cref="TensorStatistics"/> keeps one channel: the whole tensor.</summary>
    private const int WholeTensor = 64;

    private readonly OrtSession _runner;
    private readonly Dictionary<string, TensorStatistics> _statistics = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _ranks = new(StringComparer.Ordinal);
    private readonly HashSet<string> _graphOutputs;

    public ActivationCalibrator(ModelProto model, IEnumerable<string> tensors, int intraOpThreads = 1)
    {
        var exposed = model.Clone();
        var graph = exposed.Graph;
        _graphOutputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = graph.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var tensor in tensors.Distinct())
        {
            _statistics[tensor] = new TensorStatistics(tensor, WholeTensor, 1);
            if (!inputs.Contains(tensor) && graph.Output.All(o => o.Name != tensor))
            {
                graph.Output.Add(new ValueInfoProto
                {
                    Name = tensor,
                    Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
                });
            }
        }

        _runner = new OrtSession(exposed.ToByteArray(), intraOpThreads);
    }

    /// <summary>Frames added so far.</summary>
    public long Frames { get; private set; }

    /// <summary>Runs one frame (tensors by name; extra ones are ignored) and returns the model's own outputs.</summary>
    public Dictionary<string, HostTensor> Add(IReadOnlyDictionary<string, HostTensor> frame)
    {
        var outputs = _runner.Run(frame);
        foreach (var (name, statistics) in _statistics)
        {
            var tensor = outputs.TryGetValue(name, out var output) ? output : frame[name];
            statistics.Add(MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan()), tensor.Shape);
            _ranks[name] = tensor.Shape.Length;
        }

        Frames++;
        return outputs.Where(o => _graphOutputs.Contains(o.Key)).ToDictionary(o => o.Key, o => o.Value, StringComparer.Ordinal);
    }

    /// <summary>The rank a tensor had in calibration, or null if it was not recorded.</summary>
    public int? Rank(string tensor) => _ranks.TryGetValue(tensor, out var rank) ? rank : null;

    public TensorStatistics Statistics(string tensor) => _statistics[tensor];

    /// <summary>Each tensor's uint8 scale and zero point from its calibrated range, clipped by <paramref name="method"/>.</summary>
    public Dictionary<string, ActivationScale> Scales(ClipMethod method) => _statistics.ToDictionary(
        s => s.Key,
        s =>
        {
            var (low, high) = Clipping.Range(s.Value.Channels[0], 8, method);
            return ActivationScale.For(low, high);
        },
        StringComparer.Ordinal);

    public void Dispose() => _runner.Dispose();
}
