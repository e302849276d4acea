using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Inference;

/// <summary>
/// How an <see cref="OrtSession"/> is made. Threads are set explicitly (one intra-op pool of <see cref="IntraOpThreads"/>,
/// sequential execution); an idle pool does not spin unless <see cref="AllowSpinning"/>, since nodes share cores with
/// other nodes and with Akka's threads.
/// </summary>
public sealed record OrtSessionSettings(int IntraOpThreads = 1, GraphOptimizationLevel Optimization = GraphOptimizationLevel.ORT_DISABLE_ALL)
{
    /// <summary>Optimisations all on (as a stage runs) or all off (the graph exactly as written).</summary>
    public OrtSessionSettings(int intraOpThreads, bool optimize)
        : this(intraOpThreads, optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL)
    {
    }

    /// <summary>Leaves ONNX Runtime's default (spinning) on: for a one-off run that has the machine to itself.</summary>
    public bool AllowSpinning { get; init; }

    /// <summary>Where ONNX Runtime's profiler writes (profiling on); null: profiling off.</summary>
    public string? ProfilePrefix { get; init; }

    /// <summary>Where ONNX Runtime saves the model as optimised when the session opens; null: not saved.</summary>
    public string? OptimizedModelPath { get; init; }
}

/// <summary>
/// The one way this code opens ONNX Runtime: a session over a model, made with <see cref="OrtSessionSettings"/>, fed and
/// read as <see cref="HostTensor"/>s. <see cref="Run(IReadOnlyDictionary{string, HostTensor})"/> lets ONNX Runtime
/// allocate each run and may be called from several threads at once; <see cref="RunReusing"/> keeps its input and output
/// buffers from frame to frame (a stage's hot path) and takes one caller at a time.
/// </summary>
public sealed class OrtSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private ReusedBuffers? _reused;

    public OrtSession(byte[] model, int intraOpThreads = 1, bool optimize = false)
        : this(model, new OrtSessionSettings(intraOpThreads, optimize))
    {
    }

    public OrtSession(byte[] model, OrtSessionSettings settings)
        : this(settings, options => new InferenceSession(model, options))
    {
    }

    public OrtSession(string modelPath, OrtSessionSettings settings)
        : this(settings, options => new InferenceSession(modelPath, options))
    {
    }

    private OrtSession(OrtSessionSettings settings, Func<SessionOptions, InferenceSession> open)
    {
        using var options = Options(settings);
        try
        {
            _session = open(options);
        }
        catch
        {
            _runOptions.Dispose();
            throw;
        }

        _inputNames = [.. _session.InputNames];
        _outputNames = [.. _session.OutputNames];
    }

    public IReadOnlyList<string> InputNames => _inputNames;

    public IReadOnlyList<string> OutputNames => _outputNames;

    public IReadOnlyDictionary<string, NodeMetadata> InputMetadata => _session.InputMetadata;

    public IReadOnlyDictionary<string, NodeMetadata> OutputMetadata => _session.OutputMetadata;

    /// <summary>The model's metadata properties (a stage model carries the shapes it was split for there).</summary>
    public IReadOnlyDictionary<string, string> CustomMetadata => _session.ModelMetadata.CustomMetadataMap;

    /// <summary>
    /// True once a failed <see cref="RunReusing"/> left buffers it could not reset: the session takes no more frames that
    /// way, and the stage that holds it must be replaced.
    /// </summary>
    public bool Broken => _reused?.Broken ?? false;

    /// <summary>Outputs <see cref="RunReusing"/> writes into buffers kept between frames (known after the first frame).</summary>
    public IReadOnlyList<string> ReusedOutputs => _reused?.ReusedOutputs ?? [];

    /// <summary>Runs the model, reading its inputs from <paramref name="tensors"/> by name; ONNX Runtime allocates the outputs.</summary>
    public Dictionary<string, HostTensor> Run(IReadOnlyDictionary<string, HostTensor> tensors)
    {
        var inputs = new List<OrtValue>(_inputNames.Length);
        try
        {
            foreach (var name in _inputNames)
            {
                if (!tensors.TryGetValue(name, out var tensor))
                {
                    throw new InvalidOperationException($"No tensor named '{name}' is available for this model's input.");
                }

                inputs.Add(OrtTensors.FromBytes(tensor.Info, tensor.Data));
            }

            using var results = _session.Run(_runOptions, _inputNames, inputs, _outputNames);
            var outputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            for (var i = 0; i < _outputNames.Length; i++)
            {
                outputs[_outputNames[i]] = ToHost(_outputNames[i], results[i]);
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

    /// <summary>Runs the model on runtime values the caller owns; the caller disposes the results.</summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(
        IReadOnlyCollection<string> inputNames, IReadOnlyCollection<OrtValue> inputs, IReadOnlyCollection<string> outputNames) =>
        _session.Run(_runOptions, inputNames, inputs, outputNames);

    /// <summary>
    /// Runs the model on the frame's tensors (matched by name) through input and output buffers kept from the last frame
    /// (bound anew only when a frame's shapes change), and returns new tensors that own their bytes. An output the model
    /// declares with a symbolic or unknown dimension (a detector's boxes after NonMaxSuppression) may change size with
    /// every frame, so ONNX Runtime allocates it per run instead: a reused buffer of the wrong size is refused ("Shape
    /// mismatch attempting to re-use buffer"). A run that throws (a frame ONNX Runtime refuses) leaves nothing behind for
    /// the next frame: the shapes and buffers learnt so far are dropped, and the next frame binds its inputs and outputs anew.
    /// </summary>
    public IReadOnlyList<HostTensor> RunReusing(IReadOnlyList<HostTensor> frame)
    {
        _reused ??= new ReusedBuffers(_session, _inputNames, _outputNames);
        return _reused.Run(_runOptions, frame);
    }

    /// <summary>Stops the profiler (<see cref="OrtSessionSettings.ProfilePrefix"/>) and returns the file it wrote.</summary>
    public string EndProfiling() => _session.EndProfiling();

    public void Dispose()
    {
        _reused?.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }

    private static SessionOptions Options(OrtSessionSettings settings)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = settings.Optimization,
            IntraOpNumThreads = settings.IntraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };

        if (!settings.AllowSpinning)
        {
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            options.AddSessionConfigEntry("session.inter_op.allow_spinning", "0");
        }

        if (settings.OptimizedModelPath is { } optimized)
        {
            options.OptimizedModelFilePath = optimized;
        }

        if (settings.ProfilePrefix is { } prefix)
        {
            // The prefix must be set before profiling is switched on, which is when the runtime reads it.
            options.ProfileOutputPathPrefix = prefix;
            options.EnableProfiling = true;
        }

        return options;
    }

    private static HostTensor ToHost(string name, OrtValue value)
    {
        var typeAndShape = value.GetTensorTypeAndShape();
        return new HostTensor(name, (TensorProto.Types.DataType)typeAndShape.ElementDataType, typeAndShape.Shape, OrtTensors.ToBytes(value));
    }

    /// <summary>
    /// The input and output buffers <see cref="RunReusing"/> keeps between frames, bound once to the session; results are
    /// copied into arrays the outgoing tensors own, so no tensor ever points at a buffer the next run overwrites.
    /// </summary>
    private sealed class ReusedBuffers : IDisposable
    {
        private readonly InferenceSession _session;
        private readonly OrtIoBinding _binding;
        private readonly string[] _inputNames;
        private readonly string[] _outputNames;
        private readonly int[][] _declaredOutputShapes;
        private readonly bool[] _reused;
        private readonly OrtValue?[] _inputs;
        private readonly OrtValue?[] _outputs;
        private readonly TensorInfo?[] _inputInfo;
        private bool _outputsBound;

        public ReusedBuffers(InferenceSession session, string[] inputNames, string[] outputNames)
        {
            _session = session;
            _binding = session.CreateIoBinding();
            _inputNames = inputNames;
            _outputNames = outputNames;
            _declaredOutputShapes = [.. outputNames.Select(n => session.OutputMetadata[n].Dimensions)];
            _reused = new bool[outputNames.Length];
            _inputs = new OrtValue?[inputNames.Length];
            _outputs = new OrtValue?[outputNames.Length];
            _inputInfo = new TensorInfo?[inputNames.Length];
        }

        public bool Broken { get; private set; }

        public IReadOnlyList<string> ReusedOutputs => _outputNames.Where((_, i) => _reused[i]).ToList();

        public HostTensor[] Run(RunOptions runOptions, IReadOnlyList<HostTensor> frame)
        {
            if (Broken)
            {
                throw new InvalidOperationException("The stage session could not recover from an earlier failed run; the stage must be replaced.");
            }

            try
            {
                return RunBound(runOptions, frame);
            }
            catch
            {
                Forget();
                throw;
            }
        }

        /// <summary>
        /// Forgets every shape and output buffer a failed run may have left half-replaced (a disposed output still bound,
        /// an input of the refused shape recorded as current), so no later run hands ONNX Runtime a buffer that is gone.
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

        private HostTensor[] RunBound(RunOptions runOptions, IReadOnlyList<HostTensor> frame)
        {
            var reshaped = false;
            for (var i = 0; i < _inputNames.Length; i++)
            {
                var tensor = Find(frame, _inputNames[i]);
                var info = _inputInfo[i];
                if (_inputs[i] is null || info is null || info.ElementType != tensor.ElementType || !info.Shape.AsSpan().SequenceEqual(tensor.Shape))
                {
                    var old = _inputs[i];
                    var type = (TensorElementType)tensor.ElementType;
                    _inputs[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, type, tensor.Shape);
                    _binding.BindInput(_inputNames[i], _inputs[i]);
                    old?.Dispose();
                    _inputInfo[i] = tensor.Info;
                    reshaped = true;
                }

                var target = _inputs[i]!.GetTensorMutableRawData();
                if (target.Length != tensor.Data.Length)
                {
                    throw new InvalidOperationException(
                        $"Tensor '{tensor.Name}' has {tensor.Data.Length} bytes; its shape {tensor.Info.ShapeText} needs {target.Length}.");
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

                _session.RunWithBinding(runOptions, _binding);
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

            _session.RunWithBinding(runOptions, _binding);
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
                result[i] = ToHost(_outputNames[i], values[i]);
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
        }
    }
}
