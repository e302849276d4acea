using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Stages;

/// <summary>
/// One ONNX Runtime session over a stage model with its input and output buffers allocated once and reused for every
/// frame (re-allocated only if a frame's shapes change). An output the model declares with a symbolic or unknown
/// dimension (a detector's boxes after NonMaxSuppression) may change size with every frame, so ONNX Runtime allocates
/// it per run instead: a reused buffer of the wrong size is refused ("Shape mismatch attempting to re-use buffer").
/// Results are copied into arrays the outgoing frame owns, so no frame ever points at a buffer the next inference
/// overwrites.
/// </summary>
public sealed class StageSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly OrtIoBinding _binding;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly int[][] _declaredOutputShapes;
    private readonly bool[] _reused;
    private readonly OrtValue?[] _inputs;
    private readonly OrtValue?[] _outputs;
    private readonly TensorInfo?[] _inputInfo;
    private bool _outputsBound;

    public StageSession(string modelPath, int intraOpThreads)
        : this(intraOpThreads, options => new InferenceSession(modelPath, options))
    {
    }

    /// <summary>A session over a model's bytes (already checked against its hash: what is checked is what is loaded).</summary>
    public StageSession(byte[] model, int intraOpThreads)
        : this(intraOpThreads, options => new InferenceSession(model, options))
    {
    }

    private StageSession(int intraOpThreads, Func<SessionOptions, InferenceSession> open)
    {
        using var options = OrtSessionOptions.Create(intraOpThreads, optimize: true);
        _session = open(options);
        _binding = _session.CreateIoBinding();
        _inputNames = _session.InputNames.ToArray();
        _outputNames = _session.OutputNames.ToArray();
        _declaredOutputShapes = _outputNames.Select(n => _session.OutputMetadata[n].Dimensions).ToArray();
        _reused = new bool[_outputNames.Length];
        _inputs = new OrtValue?[_inputNames.Length];
        _outputs = new OrtValue?[_outputNames.Length];
        _inputInfo = new TensorInfo?[_inputNames.Length];
    }

    public IReadOnlyList<string> InputNames => _inputNames;

    public IReadOnlyList<string> OutputNames => _outputNames;

    /// <summary>
    /// Each input as the model declares it: element type and dimensions, -1 where a dimension is dynamic. An input declared
    /// with no shape (a split of a model with dynamic sizes) has the rank of the shape the split was made for, every
    /// dimension dynamic; with no such shape either, its rank is unknown (null).
    /// </summary>
    public IReadOnlyList<DeclaredInput> DeclaredInputs => _inputNames
        .Select(name =>
        {
            var meta = _session.InputMetadata[name];
            var declared = meta.Dimensions;
            long[]? dimensions = declared.Length > 0 ? declared.Select(d => d > 0 ? (long)d : -1L).ToArray()
                : _session.ModelMetadata.CustomMetadataMap.TryGetValue(StageExtractor.InputShapeKeyPrefix + name, out var text) && PreparedShape(text) is { } shape
                    ? shape.Select(_ => -1L).ToArray()
                    : null;
            return new DeclaredInput(name, (TensorProto.Types.DataType)meta.ElementDataType, dimensions);
        })
        .ToList();

    /// <summary>Outputs written into buffers kept between frames (known after the first frame): the fast path.</summary>
    public IReadOnlyList<string> ReusedOutputs => _outputNames.Where((_, i) => _reused[i]).ToList();

    /// <summary>The shape the model declares for input <paramref name="name"/> when every dimension is fixed; null otherwise.</summary>
    public long[]? StaticInputShape(string name) =>
        _session.InputMetadata.TryGetValue(name, out var meta) && meta.Dimensions.Length > 0 && meta.Dimensions.All(d => d > 0)
            ? meta.Dimensions.Select(d => (long)d).ToArray()
            : null;

    /// <summary>Runs a few frames of zeros-and-noise so the first real frame is not 2-4x slower; returns the warm-up time.</summary>
    public double WarmUp(IReadOnlyList<TensorInfo> inputs, int runs = 3)
    {
        var start = Stopwatch.GetTimestamp();
        var tensors = inputs.Select((info, i) => new HostTensor(info.Name, info.ElementType, info.Shape, HostTensor.Deterministic(info, 11 + i).Data)).ToList();
        for (var i = 0; i < runs; i++)
        {
            Run(tensors);
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>
    /// The shapes to warm up on: each input's shape as the model declares it; where it declares a dynamic or no shape
    /// (a split of a model with dynamic sizes), the shape the split was made for (<see cref="StageExtractor.InputShapeKeyPrefix"/>),
    /// else dynamic dimensions as 1.
    /// </summary>
    public IReadOnlyList<TensorInfo> WarmUpInputs()
    {
        var prepared = _session.ModelMetadata.CustomMetadataMap;
        return _inputNames.Select(name =>
        {
            var meta = _session.InputMetadata[name];
            var type = (TensorProto.Types.DataType)meta.ElementDataType;
            var declared = meta.Dimensions;
            if (prepared.TryGetValue(StageExtractor.InputShapeKeyPrefix + name, out var text) && PreparedShape(text) is { } shape
                && (declared.Length == 0 || (declared.Length == shape.Length && declared.Where((d, i) => d > 0 && d != shape[i]).Any() is false)))
            {
                return new TensorInfo(name, type, shape);
            }

            return new TensorInfo(name, type, declared.Select(d => d > 0 ? (long)d : 1L).ToArray());
        }).ToList();
    }

    private static long[]? PreparedShape(string text)
    {
        var dims = text.Split(',');
        var shape = new long[dims.Length];
        for (var i = 0; i < dims.Length; i++)
        {
            if (!long.TryParse(dims[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]) || shape[i] <= 0)
            {
                return null;
            }
        }

        return shape;
    }

    /// <summary>
    /// True once a failed run left the session in a state it could not reset: it can take no more frames, and the stage
    /// that holds it must be replaced.
    /// </summary>
    public bool Broken { get; private set; }

    /// <summary>
    /// Runs the stage on the frame's tensors (matched by name) and returns new tensors it owns. A run that throws (a frame
    /// ONNX Runtime refuses) leaves nothing behind for the next frame: the shapes and buffers learnt so far are dropped,
    /// and the next frame binds its inputs and outputs anew.
    /// </summary>
    public IReadOnlyList<HostTensor> Run(IReadOnlyList<HostTensor> frame)
    {
        if (Broken)
        {
            throw new InvalidOperationException("The stage session could not recover from an earlier failed run; the stage must be replaced.");
        }

        try
        {
            return RunBound(frame);
        }
        catch
        {
            Forget();
            throw;
        }
    }

    /// <summary>
    /// Forgets every shape and output buffer a failed run may have left half-replaced (a disposed output still bound, an
    /// input of the refused shape recorded as current), so no later run hands ONNX Runtime a buffer that is gone.
    /// </summary>
    private void Forget()
    {
        try
        {
            _outputsBound = false;
            Array.Clear(_inputInfo);
            Array.Clear(_reused);
            _binding.ClearBoundOutputs();
            for (var i = 0; i < _outputs.Length; i++)
            {
                _outputs[i]?.Dispose();
                _outputs[i] = null;
            }
        }
        catch (OnnxRuntimeException)
        {
            Broken = true;
        }
    }

    private HostTensor[] RunBound(IReadOnlyList<HostTensor> frame)
    {
        var reshaped = false;
        for (var i = 0; i < _inputNames.Length; i++)
        {
            var tensor = Find(frame, _inputNames[i]);
            var info = _inputInfo[i];
            if (_inputs[i] is null || info is null || info.ElementType != tensor.ElementType || !info.Shape.AsSpan().SequenceEqual(tensor.Shape))
            {
                var old = _inputs[i];
                _inputs[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, (TensorElementType)tensor.ElementType, tensor.Shape);
                _binding.BindInput(_inputNames[i], _inputs[i]);
                old?.Dispose();
                _inputInfo[i] = tensor.Info;
                reshaped = true;
            }

            var target = _inputs[i]!.GetTensorMutableRawData();
            if (target.Length != tensor.Data.Length)
            {
                throw new InvalidOperationException($"Tensor '{tensor.Name}' has {tensor.Data.Length} bytes; its shape {tensor.Info.ShapeText} needs {target.Length}.");
            }

            tensor.Data.CopyTo(target);
        }

        if (!reshaped && _outputsBound)
        {
            for (var i = 0; i < _outputNames.Length; i++)
            {
                if (!_reused[i])
                {
                    // A binding keeps what ONNX Runtime allocated last run and would offer it again as a buffer to reuse.
                    _binding.BindOutputToDevice(_outputNames[i], OrtMemoryInfo.DefaultInstance);
                }
            }

            _session.RunWithBinding(_runOptions, _binding);
            return Collect();
        }

        // Let ONNX Runtime allocate every output once to learn the shapes, then bind buffers of our own for the outputs
        // whose declared shape is fixed; the others stay with ONNX Runtime, which allocates them at their size each run.
        for (var i = 0; i < _outputNames.Length; i++)
        {
            _binding.BindOutputToDevice(_outputNames[i], OrtMemoryInfo.DefaultInstance);
            _outputs[i]?.Dispose();
            _outputs[i] = null;
        }

        _session.RunWithBinding(_runOptions, _binding);
        var result = Collect();
        for (var i = 0; i < _outputNames.Length; i++)
        {
            var declared = _declaredOutputShapes[i];
            _reused[i] = declared.Length == result[i].Shape.Length && declared.All(d => d > 0);
            if (_reused[i])
            {
                var type = (TensorElementType)result[i].ElementType;
                _outputs[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, type, result[i].Shape);
                _binding.BindOutput(_outputNames[i], _outputs[i]);
            }
        }

        _outputsBound = true;
        return result;
    }

    private HostTensor[] Collect()
    {
        using var values = _binding.GetOutputValues();
        var result = new HostTensor[_outputNames.Length];
        for (var i = 0; i < _outputNames.Length; i++)
        {
            var typeAndShape = values[i].GetTensorTypeAndShape();
            var type = (TensorProto.Types.DataType)typeAndShape.ElementDataType;
            result[i] = new HostTensor(_outputNames[i], type, typeAndShape.Shape, values[i].GetTensorMutableRawData().ToArray());
        }

        return result;
    }

    private static HostTensor Find(IReadOnlyList<HostTensor> frame, string name)
    {
        for (var i = 0; i < frame.Count; i++)
        {
            if (frame[i].Name == name)
            {
                return frame[i];
            }
        }

        throw new InvalidOperationException($"The frame carries no tensor '{name}' (it has {string.Join(", ", frame.Select(t => t.Name))}).");
    }

    public void Dispose()
    {
        _binding.Dispose();
        foreach (var v in _inputs.Concat(_outputs))
        {
            v?.Dispose();
        }

        _runOptions.Dispose();
        _session.Dispose();
    }
}
