using Microsoft.ML.OnnxRuntime;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;

namespace PipelineActors.Onnx.Inference;

/// <summary>One ONNX Runtime session over a model, run on host tensors matched by name.</summary>
public sealed class ModelRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();

    public ModelRunner(byte[] model, int intraOpThreads = 1, bool optimize = false)
    {
        using var options = OrtSessionOptions.Create(intraOpThreads, optimize);
        _session = new InferenceSession(model, options);
        InputNames = _session.InputNames.ToList();
        OutputNames = _session.OutputNames.ToList();
    }

    public IReadOnlyList<string> InputNames { get; }

    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>Runs the model, reading its inputs from <paramref name="tensors"/> by name.</summary>
    public Dictionary<string, HostTensor> Run(IReadOnlyDictionary<string, HostTensor> tensors)
    {
        var inputs = new List<OrtValue>(InputNames.Count);
        try
        {
            foreach (var name in InputNames)
            {
                if (!tensors.TryGetValue(name, out var tensor))
                {
                    throw new InvalidOperationException($"No tensor named '{name}' is available for this model's input.");
                }

                inputs.Add(OrtTensors.FromBytes(tensor.Info, tensor.Data));
            }

            using var results = _session.Run(_runOptions, InputNames, inputs, OutputNames);
            var outputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            for (var i = 0; i < OutputNames.Count; i++)
            {
                var typeAndShape = results[i].GetTensorTypeAndShape();
                var info = new TensorInfo(OutputNames[i], (TensorProto.Types.DataType)typeAndShape.ElementDataType, typeAndShape.Shape);
                outputs[OutputNames[i]] = new HostTensor(info, OrtTensors.ToBytes(results[i]));
            }

            return outputs;
        }
        finally
        {
            foreach (var input in inputs)
            {
                input.Dispose();
            }
        }
    }

    public void Dispose()
    {
        _runOptions.Dispose();
        _session.Dispose();
    }
}
