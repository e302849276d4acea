using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Stages;

/// <summary>
/// One pipeline stage: a standalone ONNX model holding the per-frame nodes at positions
/// [<see cref="From"/>, <see cref="To"/>) and every weight they use.
/// </summary>
/// <param name="Inputs">Tensors the stage model reads (a subset of the frame arriving at it).</param>
/// <param name="Outputs">Tensors the stage model writes that later stages or the sink need.</param>
/// <param name="Forwarded">Tensors of the arriving frame the stage does not produce but must pass on.</param>
public sealed record StageModel(
    int Index,
    int From,
    int To,
    ModelProto Model,
    IReadOnlyList<TensorInfo> Inputs,
    IReadOnlyList<TensorInfo> Outputs,
    IReadOnlyList<TensorInfo> Forwarded,
    long Flops,
    long ParameterBytes)
{
    public string FileName => $"stage-{Index:D2}.onnx";

    /// <summary>What leaves this stage per frame: its outputs and the forwarded tensors.</summary>
    public IEnumerable<TensorInfo> Emits => Outputs.Concat(Forwarded);
}
