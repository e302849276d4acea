using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Graph;

/// <summary>A node that does work per frame (depends on a graph input), with its effective inputs.</summary>
/// <param name="Inputs">Non-empty inputs plus outer-scope tensors its subgraphs read (If/Loop/Scan).</param>
public sealed record ComputeNode(NodeProto Proto, string Name, int FileIndex, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs)
{
    public string OpType => Proto.OpType;
}

/// <summary>
/// The structure of an ONNX graph as the partitioner sees it: which tensors are constants
/// (weights, and anything computed from weights alone), which nodes do per-frame work, and a
/// canonical order of those nodes that depends on the graph, not on the order the file lists them.
/// </summary>
public sealed class ModelGraph
{
    private static readonly HashSet<string> NonDeterministicOps = new(StringComparer.Ordinal)
    {
        "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    };

    private readonly Dictionary<string, NodeProto> _constantProducer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _producerPosition = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<int>> _consumerPositions = new(StringComparer.Ordinal);

    public ModelGraph(ModelProto model)
    {
        Model = model;
        var graph = model.Graph;

        Initializers = graph.Initializer.Select(t => t.Name)
            .Concat(graph.SparseInitializer.Select(s => s.Values?.Name ?? string.Empty))
            .Where(n => n.Length > 0)
            .ToHashSet(StringComparer.Ordinal);

        // IR < 4 lists initializers as graph inputs too; those are weights, not frame data.
        Inputs = graph.Input.Where(i => !Initializers.Contains(i.Name)).ToList();
        OutputNames = graph.Output.Select(o => o.Name).ToList();
        if (Inputs.Count == 0)
        {
            throw new PipelineInputException("The model has no graph inputs besides its weights, so there is no per-frame data to pipeline.");
        }

        var sorted = TopologicalFileOrder(graph);
        var constants = new HashSet<string>(Initializers, StringComparer.Ordinal);
        var constantNodes = new List<NodeProto>();
        var compute = new List<ComputeNode>();
        foreach (var (node, fileIndex) in sorted)
        {
            var inputs = EffectiveInputs(node);
            var isConstant = !NonDeterministicOps.Contains(node.OpType) && inputs.All(constants.Contains);
            if (isConstant)
            {
                constantNodes.Add(node);
                foreach (var output in node.Output.Where(o => o.Length > 0))
                {
                    constants.Add(output);
                    _constantProducer[output] = node;
                }
            }
            else
            {
                var name = string.IsNullOrEmpty(node.Name) ? $"{node.OpType}_{fileIndex}" : node.Name;
                compute.Add(new ComputeNode(node, name, fileIndex, inputs, node.Output.Where(o => o.Length > 0).ToList()));
            }
        }

        ConstantTensors = constants;
        ConstantNodes = constantNodes;
        Order = CanonicalOrder(compute, constants);
        for (var position = 0; position < Order.Count; position++)
        {
            foreach (var output in Order[position].Outputs)
            {
                _producerPosition[output] = position;
            }

            foreach (var input in Order[position].Inputs.Where(i => !constants.Contains(i)))
            {
                if (!_consumerPositions.TryGetValue(input, out var list))
                {
                    _consumerPositions[input] = list = [];
                }

                list.Add(position);
            }
        }
    }

    public ModelProto Model { get; }

    /// <summary>Names of initializers (dense and sparse).</summary>
    public IReadOnlySet<string> Initializers { get; }

    /// <summary>Graph inputs that carry per-frame data (initializers listed as inputs excluded).</summary>
    public IReadOnlyList<ValueInfoProto> Inputs { get; }

    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>Tensors that do not depend on any graph input: weights and what is computed from them alone.</summary>
    public IReadOnlySet<string> ConstantTensors { get; }

    /// <summary>Nodes whose outputs are constants, in a valid topological order.</summary>
    public IReadOnlyList<NodeProto> ConstantNodes { get; }

    /// <summary>Per-frame nodes in canonical order; cut position k splits this list after its first k nodes.</summary>
    public IReadOnlyList<ComputeNode> Order { get; }

    public bool IsInput(string tensor) => Inputs.Any(i => i.Name == tensor);

    /// <summary>The position in <see cref="Order"/> of the node producing a tensor, or -1 for a graph input.</summary>
    public int ProducerPosition(string tensor) => _producerPosition.TryGetValue(tensor, out var p) ? p : -1;

    public IReadOnlyList<int> ConsumerPositions(string tensor) =>
        _consumerPositions.TryGetValue(tensor, out var list) ? list : [];

    public NodeProto? ConstantProducer(string tensor) => _constantProducer.GetValueOrDefault(tensor);

    /// <summary>Every per-frame tensor: graph inputs and the outputs of per-frame nodes.</summary>
    public IEnumerable<string> FrameTensors() =>
        Inputs.Select(i => i.Name).Concat(Order.SelectMany(n => n.Outputs));

    /// <summary>Inputs of a node, including names its subgraphs read from the enclosing scope.</summary>
    public static IReadOnlyList<string> EffectiveInputs(NodeProto node)
    {
        var inputs = node.Input.Where(i => i.Length > 0).ToList();
        foreach (var attribute in node.Attribute)
        {
            var subgraphs = attribute.G is not null ? [attribute.G] : attribute.Graphs.ToList();
            foreach (var subgraph in subgraphs)
            {
                foreach (var name in OuterScopeNames(subgraph))
                {
                    if (!inputs.Contains(name))
                    {
                        inputs.Add(name);
                    }
                }
            }
        }

        return inputs;
    }

    private static List<string> OuterScopeNames(GraphProto subgraph)
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        defined.UnionWith(subgraph.Input.Select(i => i.Name));
        defined.UnionWith(subgraph.Initializer.Select(i => i.Name));
        var used = new List<string>();
        foreach (var node in subgraph.Node)
        {
            foreach (var input in EffectiveInputs(node))
            {
                if (!defined.Contains(input) && !used.Contains(input))
                {
                    used.Add(input);
                }
            }

            defined.UnionWith(node.Output);
        }

        foreach (var output in subgraph.Output.Select(o => o.Name))
        {
            if (!defined.Contains(output) && !used.Contains(output))
            {
                used.Add(output);
            }
        }

        return used;
    }

    /// <summary>Kahn's algorithm over the file's nodes; ONNX requires topological order but not every exporter delivers it.</summary>
    private static List<(NodeProto Node, int FileIndex)> TopologicalFileOrder(GraphProto graph)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < graph.Node.Count; i++)
        {
            foreach (var output in graph.Node[i].Output.Where(o => o.Length > 0))
            {
                if (!producer.TryAdd(output, i))
                {
                    throw new PipelineInputException($"The model is not valid ONNX: tensor '{output}' is produced by more than one node.");
                }
            }
        }

        var pending = new int[graph.Node.Count];
        var dependents = new List<int>[graph.Node.Count];
        for (var i = 0; i < graph.Node.Count; i++)
        {
            dependents[i] = [];
        }

        for (var i = 0; i < graph.Node.Count; i++)
        {
            foreach (var input in EffectiveInputs(graph.Node[i]).Distinct())
            {
                if (producer.TryGetValue(input, out var p) && p != i)
                {
                    pending[i]++;
                    dependents[p].Add(i);
                }
            }
        }

        var ready = new PriorityQueue<int, int>();
        for (var i = 0; i < pending.Length; i++)
        {
            if (pending[i] == 0)
            {
                ready.Enqueue(i, i);
            }
        }

        var result = new List<(NodeProto, int)>(graph.Node.Count);
        while (ready.TryDequeue(out var i, out _))
        {
            result.Add((graph.Node[i], i));
            foreach (var d in dependents[i])
            {
                if (--pending[d] == 0)
                {
                    ready.Enqueue(d, d);
                }
            }
        }

        if (result.Count != graph.Node.Count)
        {
            throw new PipelineInputException("The model is not valid ONNX: its graph has a cycle.");
        }

        return result;
    }

    /// <summary>
    /// Orders per-frame nodes depth first: among ready nodes, the one whose inputs were produced
    /// most recently goes next, so a branch is finished before another starts and the set of
    /// live tensors at each position stays small. Ties break on the first output's name, so the
    /// order is a property of the graph, not of the file's node order.
    /// </summary>
    private static List<ComputeNode> CanonicalOrder(List<ComputeNode> nodes, HashSet<string> constants)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < nodes.Count; i++)
        {
            foreach (var output in nodes[i].Outputs)
            {
                producer[output] = i;
            }
        }

        var pending = new int[nodes.Count];
        var dependents = new List<int>[nodes.Count];
        for (var i = 0; i < nodes.Count; i++)
        {
            dependents[i] = [];
        }

        for (var i = 0; i < nodes.Count; i++)
        {
            foreach (var input in nodes[i].Inputs.Where(x => !constants.Contains(x)).Distinct())
            {
                if (producer.TryGetValue(input, out var p) && p != i)
                {
                    pending[i]++;
                    dependents[p].Add(i);
                }
            }
        }

        var emittedAt = new Dictionary<string, int>(StringComparer.Ordinal);
        var ready = new List<int>();
        for (var i = 0; i < nodes.Count; i++)
        {
            if (pending[i] == 0)
            {
                ready.Add(i);
            }
        }

        var order = new List<ComputeNode>(nodes.Count);
        while (ready.Count > 0)
        {
            var best = -1;
            var bestRecency = int.MinValue;
            string? bestKey = null;
            foreach (var candidate in ready)
            {
                var recency = nodes[candidate].Inputs.Select(x => emittedAt.TryGetValue(x, out var at) ? at : -1).DefaultIfEmpty(-1).Max();
                var key = SortKey(nodes[candidate]);
                if (recency > bestRecency || (recency == bestRecency && string.CompareOrdinal(key, bestKey) < 0))
                {
                    best = candidate;
                    bestRecency = recency;
                    bestKey = key;
                }
            }

            ready.Remove(best);
            foreach (var output in nodes[best].Outputs)
            {
                emittedAt[output] = order.Count;
            }

            order.Add(nodes[best]);
            foreach (var d in dependents[best])
            {
                if (--pending[d] == 0)
                {
                    ready.Add(d);
                }
            }
        }

        return order;
    }

    private static string SortKey(ComputeNode node) =>
        node.Outputs.Count > 0 ? node.Outputs[0] : node.Name;
}
