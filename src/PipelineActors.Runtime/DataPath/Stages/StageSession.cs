using System.Diagnostics;
using System.Globalization;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Stages;

namespace PipelineActors.Runtime.DataPath.Stages;

/// <summary>
/// A stage's ONNX Runtime session: an <see cref="OrtSession"/> with optimisations on that runs each frame through buffers
/// kept between frames (<see cref="OrtSession.RunReusing"/>), plus what the stage reads from its model: the inputs it
/// declares and the shapes it was split for, to check frames against and to warm up on.
/// </summary>
public sealed class StageSession : IDisposable
{
    private readonly OrtSession _session;

    public StageSession(string modelPath, int intraOpThreads)
    {
        _session = new OrtSession(modelPath, new OrtSessionSettings(intraOpThreads, optimize: true));
    }

    /// <summary>A session over a model's bytes (already checked against its hash: what is checked is what is loaded).</summary>
    public StageSession(byte[] model, int intraOpThreads)
    {
        _session = new OrtSession(model, new OrtSessionSettings(intraOpThreads, optimize: true));
    }

    public IReadOnlyList<string> InputNames => _session.InputNames;

    public IReadOnlyList<string> OutputNames => _session.OutputNames;

    /// <summary>
    /// Each input as the model declares it: element type and dimensions, -1 where a dimension is dynamic. An input declared
    /// with no shape (a split of a model with dynamic sizes) has the rank of the shape the split was made for, every
    /// dimension dynamic; with no such shape either, its rank is unknown (null).
    /// </summary>
    public IReadOnlyList<DeclaredInput> DeclaredInputs => _session.InputNames
        .Select(name =>
        {
            var meta = _session.InputMetadata[name];
            var declared = meta.Dimensions;
            long[]? dimensions = declared.Length > 0 ? declared.Select(d => d > 0 ? (long)d : -1L).ToArray()
                : _session.CustomMetadata.TryGetValue(StageExtractor.InputShapeKeyPrefix + name, out var text) && PreparedShape(text) is { } shape
                    ? shape.Select(_ => -1L).ToArray()
                    : null;
            return new DeclaredInput(name, (TensorProto.Types.DataType)meta.ElementDataType, dimensions);
        })
        .ToList();

    /// <summary>Outputs written into buffers kept between frames (known after the first frame): the fast path.</summary>
    public IReadOnlyList<string> ReusedOutputs => _session.ReusedOutputs;

    /// <summary>The shape the model declares for input <paramref name="name"/> when every dimension is fixed; null otherwise.</summary>
    public long[]? StaticInputShape(string name) =>
        _session.InputMetadata.TryGetValue(name, out var meta) && meta.Dimensions.Length > 0 && meta.Dimensions.All(d => d > 0)
            ? meta.Dimensions.Select(d => (long)d).ToArray()
            : null;

    /// <summary>Runs a few frames of zeros-and-noise so the first real frame is not 2-4x slower; returns the warm-up time.</summary>
    public double WarmUp(IReadOnlyList<TensorInfo> inputs, int runs = 3)
    {
        var start = Stopwatch.GetTimestamp();
        var tensors = inputs.Select((info, i) => HostTensor.Deterministic(info, 11 + i)).ToList();
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
        var prepared = _session.CustomMetadata;
        return _session.InputNames.Select(name =>
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
    public bool Broken => _session.Broken;

    /// <summary>
    /// Runs the stage on the frame's tensors (matched by name) and returns new tensors it owns. A run that throws (a frame
    /// ONNX Runtime refuses) leaves nothing behind for the next frame (<see cref="OrtSession.RunReusing"/>).
    /// </summary>
    public IReadOnlyList<HostTensor> Run(IReadOnlyList<HostTensor> frame) => _session.RunReusing(frame);

    public void Dispose() => _session.Dispose();
}
