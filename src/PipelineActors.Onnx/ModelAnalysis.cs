using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Onnx;

/// <summary>
/// Everything the partitioner knows about one model at one input size: its graph structure,
/// every tensor's shape, each node's cost, and every place it can be cut.
/// </summary>
public sealed class ModelAnalysis
{
    private readonly long[] _flopsPrefix;
    private readonly List<(string Tensor, int Born, int LastUse)> _lifetimes;
    private readonly Dictionary<int, Cut> _cutsByPosition;

    private ModelAnalysis(ModelGraph graph, TensorShapes shapes, string? sourceSha256)
    {
        Graph = graph;
        Shapes = shapes;
        SourceSha256 = sourceSha256;
        NodeCosts = graph.Order.Select(n => CostModel.Of(n.Proto, shapes)).ToArray();
        _flopsPrefix = new long[NodeCosts.Count + 1];
        for (var i = 0; i < NodeCosts.Count; i++)
        {
            _flopsPrefix[i + 1] = _flopsPrefix[i] + NodeCosts[i].Flops;
        }
        // Each per-frame tensor lives from its producer to its last reader (graph outputs to the end),
        // so the cargo at any position is one pass over these, not a search of every consumer.
        var outputs = graph.OutputNames.ToHashSet(StringComparer.Ordinal);
        _lifetimes = graph.FrameTensors().Distinct(StringComparer.Ordinal)
            .Select(t => (t, graph.ProducerPosition(t), outputs.Contains(t) ? int.MaxValue : graph.ConsumerPositions(t).DefaultIfEmpty(-1).Max()))
            .ToList();
        Cuts = FindCuts();
        _cutsByPosition = Cuts.ToDictionary(c => c.Position);
    }

    public ModelGraph Graph { get; }

    public TensorShapes Shapes { get; }

    public string? SourceSha256 { get; }

    /// <summary>Cost of each per-frame node, indexed like <see cref="ModelGraph.Order"/>.</summary>
    public IReadOnlyList<NodeCost> NodeCosts { get; }

    /// <summary>Every legal cut, by position.</summary>
    public IReadOnlyList<Cut> Cuts { get; }

    public long TotalFlops => _flopsPrefix[^1];

    public long TotalMacs => NodeCosts.Sum(c => c.Macs);

    public int NodeCount => Graph.Order.Count;

    public static ModelAnalysis Analyze(OnnxModelFile file, IReadOnlyDictionary<string, long[]>? inputSizes = null) =>
        Analyze(file.Model, inputSizes, file.Sha256);

    public static ModelAnalysis Analyze(ModelProto model, IReadOnlyDictionary<string, long[]>? inputSizes = null, string? sourceSha256 = null)
    {
        var graph = new ModelGraph(model);
        if (graph.Order.Count < 2)
        {
            throw new PipelineInputException("The model has fewer than two per-frame nodes, so it cannot be cut.");
        }

        var inputs = InputSizes.Resolve(graph, inputSizes);
        var shapes = TensorShapes.Measure(graph, inputs);
        return new ModelAnalysis(graph, shapes, sourceSha256);
    }

    /// <summary>FLOPs of the per-frame nodes at positions [from, to).</summary>
    public long FlopsBetween(int from, int to) => _flopsPrefix[to] - _flopsPrefix[from];

    /// <summary>The cut at a position, or a clear error naming the valid range.</summary>
    public Cut CutAt(int position)
    {
        if (!_cutsByPosition.TryGetValue(position, out var cut))
        {
            throw new PipelineInputException(position < 1 || position >= NodeCount
                ? $"There is no cut {position}: cut positions run from 1 to {NodeCount - 1} (see 'pipeline inspect')."
                : $"There is no cut {position}: a tensor that crosses it cannot be carried between stages (see 'pipeline inspect' for "
                    + $"the cuts there are).");
        }

        return cut;
    }

    /// <summary>
    /// Per-frame tensors crossing a boundary after the first <paramref name="position"/> nodes:
    /// produced upstream (or graph inputs) and read downstream, plus graph outputs finished upstream.
    /// </summary>
    public IReadOnlyList<string> CargoNames(int position)
    {
        var result = new List<string>();
        foreach (var (tensor, born, lastUse) in _lifetimes)
        {
            if (born < position && lastUse >= position)
            {
                result.Add(tensor);
            }
        }

        return result;
    }

    private List<Cut> FindCuts()
    {
        var cuts = new List<Cut>();
        for (var position = 1; position < Graph.Order.Count; position++)
        {
            var names = CargoNames(position);
            var cargo = new List<TensorInfo>(names.Count);
            foreach (var name in names)
            {
                // Only tensors with a known type and a byte size can travel in a frame.
                if (!Shapes.TryGet(name, out var info) || ElementTypes.BitsOf(info.ElementType) == 0)
                {
                    cargo = null;
                    break;
                }

                cargo.Add(info);
            }

            if (cargo is null || cargo.Count == 0)
            {
                continue;
            }

            var rows = cargo.Count == 1 ? ReceptiveField.RowsOfInputPerRow(Graph, Shapes, cargo[0].Name) : null;
            cuts.Add(new Cut(position, Graph.Order[position - 1].Name, cargo, _flopsPrefix[position], TotalFlops, rows));
        }

        return cuts;
    }
}
