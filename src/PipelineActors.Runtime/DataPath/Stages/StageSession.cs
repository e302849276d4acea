using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Stages;

/// <summary>
/// One ONNX Runtime session over a stage model with its input and output buffers allocated once
/// and reused for every frame (re-allocated only if a frame's shapes change). Results are copied
/// into arrays the outgoing frame owns, so no frame ever points at a buffer the next inference
/// overwrites.
/// </summary>
public sealed class StageSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly OrtValue?[] _inputs;
    private readonly OrtValue?[] _outputs;
    private readonly TensorInfo?[] _inputInfo;

    public StageSession(string modelPath, int intraOpThreads)
    {
        using var options = OrtSessionOptions.Create(intraOpThreads, optimize: true);
        _session = new InferenceSession(modelPath, options);
        _inputNames = _session.InputNames.ToArray();
        _outputNames = _session.OutputNames.ToArray();
        _inputs = new OrtValue?[_inputNames.Length];
        _outputs = new OrtValue?[_outputNames.Length];
        _inputInfo = new TensorInfo?[_inputNames.Length];
    }

    public IReadOnlyList<string> InputNames => _inputNames;

    public IReadOnlyList<string> OutputNames => _outputNames;

    /// <summary>Runs a few frames of zeros-and-noise so the first real frame is not 2-4x slower; returns the warm-up time.</summary>
    public double WarmUp(IReadOnlyList<TensorInfo> inputs, int runs = 3)
    {
        var start = Stopwatch.GetTimestamp();
        var tensors = inputs.Select((info, i) => new FrameTensor(info.Name, info.ElementType, info.Shape, HostTensor.Deterministic(info, 11 + i).Data)).ToList();
        for (var i = 0; i < runs; i++)
        {
            Run(tensors);
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>Input shapes as the model declares them, dynamic dimensions as 1.</summary>
    public IReadOnlyList<TensorInfo> DeclaredInputs() => _inputNames.Select(name =>
    {
        var meta = _session.InputMetadata[name];
        var shape = meta.Dimensions.Select(d => d > 0 ? (long)d : 1L).ToArray();
        return new TensorInfo(name, (TensorProto.Types.DataType)meta.ElementDataType, shape);
    }).ToList();

    /// <summary>Runs the stage on the frame's tensors (matched by name) and returns new tensors it owns.</summary>
    public IReadOnlyList<FrameTensor> Run(IReadOnlyList<FrameTensor> frame)
    {
        var reshaped = false;
        for (var i = 0; i < _inputNames.Length; i++)
        {
            var tensor = Find(frame, _inputNames[i]);
            var info = _inputInfo[i];
            if (_inputs[i] is null || info is null || info.ElementType != tensor.ElementType || !info.Shape.AsSpan().SequenceEqual(tensor.Shape))
            {
                _inputs[i]?.Dispose();
                _inputs[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, (TensorElementType)tensor.ElementType, tensor.Shape);
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

        if (reshaped || _outputs[0] is null)
        {
            // Let ONNX Runtime allocate once to learn the output shapes, then reuse our own buffers.
            foreach (var o in _outputs)
            {
                o?.Dispose();
            }

            using var first = _session.Run(_runOptions, _inputNames, _inputs!, _outputNames);
            for (var i = 0; i < _outputNames.Length; i++)
            {
                var typeAndShape = first[i].GetTensorTypeAndShape();
                _outputs[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, typeAndShape.ElementDataType, typeAndShape.Shape);
                first[i].GetTensorMutableRawData().CopyTo(_outputs[i]!.GetTensorMutableRawData());
            }
        }
        else
        {
            _session.Run(_runOptions, _inputNames, _inputs!, _outputNames, _outputs!);
        }

        var result = new FrameTensor[_outputNames.Length];
        for (var i = 0; i < _outputNames.Length; i++)
        {
            var typeAndShape = _outputs[i]!.GetTensorTypeAndShape();
            result[i] = new FrameTensor(_outputNames[i], (TensorProto.Types.DataType)typeAndShape.ElementDataType, typeAndShape.Shape, _outputs[i]!.GetTensorMutableRawData().ToArray());
        }

        return result;
    }

    private static FrameTensor Find(IReadOnlyList<FrameTensor> frame, string name)
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
        foreach (var v in _inputs.Concat(_outputs))
        {
            v?.Dispose();
        }

        _runOptions.Dispose();
        _session.Dispose();
    }
}
