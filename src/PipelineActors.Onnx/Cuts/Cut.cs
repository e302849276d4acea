using PipelineActors.Onnx.Graph;

namespace PipelineActors.Onnx.Cuts;

/// <summary>
/// A place to cut the model: the first <see cref="Position"/> per-frame nodes (in canonical
/// order) go upstream, the rest downstream, and <see cref="Cargo"/> crosses the link per frame.
/// </summary>
/// <param name="Position">Number of per-frame nodes upstream (1 .. node count - 1).</param>
/// <param name="AfterNode">Name of the last upstream node.</param>
/// <param name="Cargo">Tensors produced upstream (or graph inputs) that downstream needs, and graph outputs finished early.</param>
/// <param name="FlopsBefore">FLOPs of the upstream nodes per frame.</param>
/// <param name="TotalFlops">FLOPs of the whole model per frame.</param>
/// <param name="ReceptiveRows">Rows of the model input one row of the (single, spatial) cargo tensor depends on; null when not spatial.</param>
public sealed record Cut(int Position, string AfterNode, IReadOnlyList<TensorInfo> Cargo, long FlopsBefore, long TotalFlops, int? ReceptiveRows)
{
    public long Bytes => Cargo.Sum(t => t.Bytes);

    /// <summary>Bytes per frame expected on the link: zero suppression shrinks sparse cargo (a ReLU's output) losslessly.</summary>
    public long WireBytes => Cargo.Sum(t => t.WireBytes);

    public bool IsSingleTensor => Cargo.Count == 1;

    public double FlopsShare => TotalFlops == 0 ? 0 : (double)FlopsBefore / TotalFlops;

    public long FlopsAfter => TotalFlops - FlopsBefore;
}
