using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Graph;

/// <summary>
/// Finds the tensor dimensions whose size depends on the frame's values, not only on the input size: what follows
/// NonZero, NonMaxSuppression, Unique, Compress, a TopK with a computed k, or a Reshape/Slice/Expand/... whose shape
/// argument is computed from the data. A stage must declare those dimensions symbolic and must not reuse a buffer
/// for them, or ONNX Runtime refuses the next frame whose size differs.
/// </summary>
/// <remarks>
/// Two passes over the canonical order. The first follows two facts per tensor: whether its values depend on the
/// frame (graph inputs do; weights do not; a Shape's values only when its input's size does), and whether its size
/// does (seeded by the operators above, passed on to every consumer). The second picks the axes of each such tensor:
/// the axis the operator's definition names for the seeds, and for the others every axis whose size differs between
/// two calibration runs or equals the size of a data-dependent axis of an input (a Gather or an elementwise op keeps
/// it); where neither finds one, every axis, since a symbolic dimension that never changes costs only the fast path.
/// </remarks>
public static class DataDependentSizes
{
    /// <summary>Operators whose output size is decided by input values, whatever the inputs' sizes.</summary>
    private static readonly HashSet<string> SizeFromValues = new(StringComparer.Ordinal) { "NonZero", "NonMaxSuppression", "Unique", "Compress" };

    /// <summary>Operators whose output size follows the values of the inputs at these positions (shapes, k, starts, pads).</summary>
    private static readonly Dictionary<string, int[]> SizeArguments = new(StringComparer.Ordinal)
    {
        ["TopK"] = [1],
        ["Reshape"] = [1],
        ["Expand"] = [1],
        ["Tile"] = [1],
        ["Slice"] = [1, 2, 3, 4],
        ["Range"] = [0, 1, 2],
        ["ConstantOfShape"] = [0],
        ["Pad"] = [1, 3],
        ["Resize"] = [2, 3],
        ["Upsample"] = [1],
        ["OneHot"] = [1],
        ["Split"] = [1],
        ["CenterCropPad"] = [1],
        ["If"] = [0],
        ["Loop"] = [0, 1],
    };

    /// <summary>Tensors whose size may change with the frame's values (before any axis is picked).</summary>
    public static IReadOnlySet<string> Tensors(ModelGraph graph)
    {
        var valueDependent = graph.Inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var sizeDependent = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Order)
        {
            // A Shape's or Size's own size depends only on its input's rank.
            var sized = node.OpType is not ("Shape" or "Size")
                && (node.Inputs.Any(sizeDependent.Contains) || DecidesSize(node.Proto, valueDependent));
            var valued = node.OpType is "Shape" or "Size"
                ? node.Inputs.Count > 0 && sizeDependent.Contains(node.Inputs[0])
                : node.Inputs.Any(valueDependent.Contains) || sized;
            foreach (var output in node.Outputs.Where(o => o.Length > 0))
            {
                if (sized)
                {
                    sizeDependent.Add(output);
                }

                if (valued)
                {
                    valueDependent.Add(output);
                }
            }
        }

        return sizeDependent;
    }

    /// <summary>
    /// The data-dependent axes of every tensor whose size may change with the frame, from the graph and two calibration
    /// runs (<paramref name="first"/>, <paramref name="second"/>) on different values of the same input size.
    /// </summary>
    public static Dictionary<string, int[]> Axes(
        ModelGraph graph,
        IReadOnlySet<string> tensors,
        IReadOnlyDictionary<string, TensorInfo> first,
        IReadOnlyDictionary<string, TensorInfo> second)
    {
        var axes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var node in graph.Order)
        {
            for (var o = 0; o < node.Outputs.Count; o++)
            {
                var name = node.Outputs[o];
                if (!tensors.Contains(name) || !first.TryGetValue(name, out var info))
                {
                    continue;
                }

                var picked = new SortedSet<int>(SeedAxes(node.Proto, info.Shape.Length));
                if (second.TryGetValue(name, out var other) && other.Shape.Length == info.Shape.Length)
                {
                    picked.UnionWith(Enumerable.Range(0, info.Shape.Length).Where(a => info.Shape[a] != other.Shape[a]));
                }

                if (picked.Count == 0)
                {
                    var inputSizes = node.Inputs
                        .Where(axes.ContainsKey)
                        .SelectMany(i => axes[i].Where(a => a < first[i].Shape.Length).Select(a => first[i].Shape[a]))
                        .ToHashSet();
                    picked.UnionWith(Enumerable.Range(0, info.Shape.Length).Where(a => inputSizes.Contains(info.Shape[a])));
                }

                if (picked.Count == 0)
                {
                    picked.UnionWith(Enumerable.Range(0, info.Shape.Length));
                }

                if (picked.Count > 0)
                {
                    axes[name] = picked.ToArray();
                }
            }
        }

        return axes;
    }

    private static bool DecidesSize(NodeProto node, HashSet<string> valueDependent)
    {
        if (SizeFromValues.Contains(node.OpType))
        {
            return node.Input.Any(valueDependent.Contains);
        }

        if (node.OpType is "Loop" or "If")
        {
            // A computed condition or trip count may give another size, even from branches that read no per-frame input.
            return SizeArguments[node.OpType].Any(i => i < node.Input.Count && valueDependent.Contains(node.Input[i]));
        }

        return SizeArguments.TryGetValue(node.OpType, out var arguments)
            && arguments.Any(i => i < node.Input.Count && node.Input[i].Length > 0 && valueDependent.Contains(node.Input[i]));
    }

    /// <summary>The axes an operator's definition says its values decide, or none where it says nothing simple.</summary>
    private static IEnumerable<int> SeedAxes(NodeProto node, int rank)
    {
        int Axis(long fallback)
        {
            var attribute = node.Attribute.FirstOrDefault(a => a.Name == "axis");
            var axis = attribute is null ? fallback : attribute.I;
            return (int)(axis < 0 ? axis + rank : axis);
        }

        return node.OpType switch
        {
            "NonZero" when rank == 2 => [1],
            "NonMaxSuppression" when rank == 2 => [0],
            "Unique" => rank == 1 ? [0] : node.Attribute.Any(a => a.Name == "axis") ? [Axis(0)] : [],
            "Compress" => rank == 1 ? [0] : [Axis(0)],
            "TopK" when rank > 0 => [Axis(-1)],
            _ => [],
        };
    }
}
