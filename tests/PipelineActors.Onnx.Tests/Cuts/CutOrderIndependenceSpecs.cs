using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Cuts;

/// <summary>The cuts are a property of the graph: shuffling the file's node list changes none of them.</summary>
public class CutOrderIndependenceSpecs(ITestOutputHelper output)
{
    public static TheoryData<string> Names => ["resnet50", "googlenet"];

    [Theory]
    [MemberData(nameof(Names))]
    public void Shuffling_the_files_node_list_finds_the_same_cuts(string name)
    {
        var model = ModelZoo.Build(name);
        var expected = Describe(ModelAnalysis.Analyze(model));

        var shuffled = WithNodes(model, Shuffle(model.Graph.Node.ToList(), new Random(7)));
        Assert.Equal(expected, Describe(ModelAnalysis.Analyze(shuffled)));

        var hoisted = WithNodes(model, HoistConstantsAndInterleave(model.Graph));
        Assert.Equal(expected, Describe(ModelAnalysis.Analyze(hoisted)));
        output.WriteLine($"{name}: {expected.Count} cuts, the same in file order, shuffled and hoisted/interleaved");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Single_tensor_cuts_are_exactly_the_tensors_whose_ancestors_leave_only_through_them(string name)
    {
        var model = ModelZoo.Build(name);
        var analysis = ModelAnalysis.Analyze(model);
        var found = analysis.Cuts.Where(c => c.IsSingleTensor).Select(c => c.Cargo[0].Name).ToList();
        var bruteForce = SeparatingTensors(model.Graph);
        output.WriteLine($"{name}: {found.Count} single-tensor cuts, brute force {bruteForce.Count}");
        Assert.Equal(bruteForce.Order(StringComparer.Ordinal), found.Order(StringComparer.Ordinal));
    }

    private static List<string> Describe(ModelAnalysis analysis) =>
        [.. analysis.Cuts.Select(c => $"{c.Position} after {c.AfterNode}: {string.Join(" ", c.Cargo.Select(t => t.Name))} = {c.Bytes} bytes")];

    private static ModelProto WithNodes(ModelProto model, IEnumerable<NodeProto> nodes)
    {
        var copy = model.Clone();
        copy.Graph.Node.Clear();
        copy.Graph.Node.AddRange(nodes.Select(n => n.Clone()));
        return copy;
    }

    private static List<NodeProto> Shuffle(List<NodeProto> nodes, Random random)
    {
        for (var i = nodes.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (nodes[i], nodes[j]) = (nodes[j], nodes[i]);
        }

        return nodes;
    }

    /// <summary>Constant and Identity nodes first, then the rest breadth first, so parallel branches alternate node by node.</summary>
    private static List<NodeProto> HoistConstantsAndInterleave(GraphProto graph)
    {
        var hoisted = graph.Node.Where(n => n.OpType is "Constant" or "Identity").ToList();
        var rest = graph.Node.Where(n => n.OpType is not ("Constant" or "Identity")).ToList();
        var available = graph.Input.Select(i => i.Name).Concat(graph.Initializer.Select(i => i.Name)).Concat(hoisted.SelectMany(n => n.Output))
            .ToHashSet(StringComparer.Ordinal);
        var result = new List<NodeProto>(hoisted);
        while (rest.Count > 0)
        {
            // one wave: every node whose inputs exist now, so each branch advances one step per wave
            var wave = rest.Where(n => n.Input.All(i => i.Length == 0 || available.Contains(i))).ToList();
            Assert.NotEmpty(wave);
            foreach (var node in wave)
            {
                rest.Remove(node);
                result.Add(node);
            }

            available.UnionWith(wave.SelectMany(n => n.Output));
        }

        return result;
    }

    /// <summary>
    /// Brute force, independent of ModelGraph's order: a per-frame tensor t separates the model iff
    /// the set A of per-frame nodes it depends on (its producer included) is not the whole model and
    /// the only tensor leaving A and the graph inputs (to a node outside A, or as a graph output) is t.
    /// </summary>
    private static List<string> SeparatingTensors(GraphProto graph)
    {
        var constants = graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var frameNodes = new List<NodeProto>();
        var pending = graph.Node.ToList();
        bool progress;
        do
        {
            progress = false;
            foreach (var node in pending.ToList())
            {
                if (node.Input.Where(i => i.Length > 0).All(constants.Contains))
                {
                    constants.UnionWith(node.Output);
                    pending.Remove(node);
                    progress = true;
                }
            }
        }
        while (progress);
        frameNodes.AddRange(pending);

        var producer = frameNodes.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n, StringComparer.Ordinal);
        var outputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = graph.Input.Select(i => i.Name).Where(i => !constants.Contains(i)).ToHashSet(StringComparer.Ordinal);

        HashSet<NodeProto> Ancestors(NodeProto node)
        {
            var seen = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance) { node };
            var stack = new Stack<NodeProto>([node]);
            while (stack.TryPop(out var n))
            {
                foreach (var input in n.Input.Where(producer.ContainsKey))
                {
                    if (seen.Add(producer[input]))
                    {
                        stack.Push(producer[input]);
                    }
                }
            }

            return seen;
        }

        var result = new List<string>();
        foreach (var (tensor, node) in producer)
        {
            var upstream = Ancestors(node);
            if (upstream.Count == frameNodes.Count)
            {
                continue;
            }

            var inside = upstream.SelectMany(n => n.Output).Concat(inputs).ToHashSet(StringComparer.Ordinal);
            var leaving = inside.Where(t => outputs.Contains(t) || frameNodes.Any(n => !upstream.Contains(n) && n.Input.Contains(t))).ToList();
            if (leaving.Count == 1 && leaving[0] == tensor)
            {
                result.Add(tensor);
            }
        }

        return result;
    }
}
