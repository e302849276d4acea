using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Onnx.Graph;

/// <summary>
/// The dtype and concrete shape of every tensor in a model for one input size, found by one
/// instrumented ONNX Runtime run (every node output made a graph output). A run rather than
/// our own shape inference: it is exact for every operator ONNX Runtime knows, including
/// Shape -> Gather -> Concat -> Reshape chains and control flow. Axes whose size depends on the frame's values
/// (after NonMaxSuppression, NonZero, ...) are marked (<see cref="TensorInfo.DataDependentAxes"/>, <see cref="DataDependentSizes"/>).
/// </summary>
public sealed class TensorShapes
{
    private readonly Dictionary<string, TensorInfo> _tensors;

    private TensorShapes(Dictionary<string, TensorInfo> tensors, IReadOnlyList<TensorInfo> inputs)
    {
        _tensors = tensors;
        InputSizes = inputs;
    }

    public IReadOnlyList<TensorInfo> InputSizes { get; }

    public TensorInfo this[string name] => _tensors.TryGetValue(name, out var info)
        ? info
        : throw new KeyNotFoundException($"No shape is known for tensor '{name}'.");

    public bool TryGet(string name, out TensorInfo info) => _tensors.TryGetValue(name, out info!);

    /// <summary>Runs the model once on a deterministic input of the given sizes and records every tensor's shape.</summary>
    public static TensorShapes Measure(ModelGraph graph, IReadOnlyList<TensorInfo> inputs)
    {
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var init in graph.Model.Graph.Initializer)
        {
            tensors[init.Name] = new TensorInfo(init.Name, (TensorProto.Types.DataType)init.DataType, init.Dims.ToArray());
        }

        foreach (var input in inputs)
        {
            tensors[input.Name] = input;
        }

        // Shallow clone: weight ByteStrings are immutable and shared, so this costs no weight copy.
        var instrumented = graph.Model.Clone();
        var existing = instrumented.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var wanted = graph.Model.Graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0 && !tensors.ContainsKey(o)).Distinct().ToList();
        foreach (var name in wanted.Where(n => !existing.Contains(n)))
        {
            instrumented.Graph.Output.Add(new ValueInfoProto { Name = name });
        }

        // Value infos can pin shapes to the declared input size; the run must follow the one given.
        instrumented.Graph.ValueInfo.Clear();
        var outputNames = instrumented.Graph.Output.Select(o => o.Name).ToList();

        // One calibration run with every core, the graph as written, and ONNX Runtime's default spinning.
        var settings = new OrtSessionSettings(Math.Max(1, Environment.ProcessorCount)) { AllowSpinning = true };
        OrtSession session;
        try
        {
            session = new OrtSession(instrumented.ToByteArray(), settings);
        }
        catch (OnnxRuntimeException e)
        {
            throw new PipelineInputException($"ONNX Runtime cannot load the model: {FirstLine(e.Message)}");
        }

        using (session)
        {
            Record(session, inputs, outputNames, tensors, seed: 17, zeroShare: true);

            // Sizes that follow the data: a second run on other values shows which axes changed.
            var dependent = DataDependentSizes.Tensors(graph);
            if (dependent.Any(tensors.ContainsKey))
            {
                var second = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
                Record(session, inputs, outputNames, second, seed: 1017, zeroShare: false);
                foreach (var (name, axes) in DataDependentSizes.Axes(graph, dependent, tensors, second))
                {
                    tensors[name] = tensors[name] with { DataDependentAxes = axes };
                }
            }
        }

        return new TensorShapes(tensors, inputs);
    }

    private static void Record(
        OrtSession session,
        IReadOnlyList<TensorInfo> inputs,
        List<string> outputNames,
        Dictionary<string, TensorInfo> tensors,
        int seed,
        bool zeroShare)
    {
        var inputValues = inputs.Select((t, i) => OrtTensors.Deterministic(t, seed + i)).ToList();
        try
        {
            using var results = session.Run(inputs.Select(i => i.Name).ToList(), inputValues, outputNames);
            for (var i = 0; i < outputNames.Count; i++)
            {
                var value = results[i];
                if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
                {
                    continue; // sequences and maps cannot cross a cut; the cut finder avoids them
                }

                var typeAndShape = value.GetTensorTypeAndShape();
                var type = (TensorProto.Types.DataType)typeAndShape.ElementDataType;
                tensors[outputNames[i]] = new TensorInfo(outputNames[i], type, typeAndShape.Shape)
                {
                    ZeroShare = zeroShare ? ZeroShareOf(type, value) : 0,
                };
            }
        }
        catch (OnnxRuntimeException e)
        {
            var sizes = string.Join(" ", inputs.Select(i => $"{i.Name}={string.Join(",", i.Shape)}"));
            throw new PipelineInputException($"The model cannot run with input size {sizes}: {FirstLine(e.Message)}");
        }
        finally
        {
            foreach (var v in inputValues)
            {
                v.Dispose();
            }
        }
    }

    /// <summary>
    /// Share of elements whose bits are all zero (what zero suppression on the wire skips): after a ReLU about half on
    /// this calibration input; an estimate for camera frames, which are what decides the real figure.
    /// </summary>
    private static double ZeroShareOf(TensorProto.Types.DataType type, OrtValue value)
    {
        var size = WireSize.SuppressibleElementBytes(type);
        if (size == 0)
        {
            return 0;
        }

        var bytes = value.GetTensorMutableRawData();
        var count = bytes.Length / size;
        if (count == 0)
        {
            return 0;
        }

        return (double)WireSize.CountZeros(type, bytes) / count;
    }

    private static string FirstLine(string message)
    {
        var line = message.Split('\n')[0].Trim();
        return line.EndsWith('.') ? line : line + ".";
    }
}
