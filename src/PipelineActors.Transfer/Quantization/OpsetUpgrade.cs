using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Transfer.Quantization;

/// <summary>
/// Raises a model's default-domain opset to 13, which per-axis DequantizeLinear needs, where that keeps every node's
/// meaning: each op the model uses must mean the same at 13 as at the model's opset, or have a known exact rewrite
/// (Clip, Slice, Squeeze and Unsqueeze moved attributes to inputs; Softmax over the last axis). Anything else is refused.
/// </summary>
public static class OpsetUpgrade
{
    /// <summary>The opset the QDQ rewrite writes: the first with per-axis DequantizeLinear.</summary>
    public const long Target = 13;

    /// <summary>
    /// For each op, the first opset from which its meaning (for the inputs and attributes a model at that opset can
    /// carry) is unchanged up to opset 13; later version bumps only added types. Ops not listed are refused.
    /// </summary>
    private static readonly Dictionary<string, long> SameMeaningSince = new(StringComparer.Ordinal)
    {
        ["Conv"] = 1, ["ConvTranspose"] = 1, ["MatMul"] = 1, ["Relu"] = 1, ["LeakyRelu"] = 1, ["Sigmoid"] = 1, ["Tanh"] = 1,
        ["HardSigmoid"] = 1, ["Elu"] = 1, ["Softplus"] = 1, ["MaxPool"] = 1, ["AveragePool"] = 1, ["GlobalAveragePool"] = 1,
        ["GlobalMaxPool"] = 1, ["Transpose"] = 1, ["Shape"] = 1, ["Gather"] = 1, ["Identity"] = 1, ["Constant"] = 1,
        ["Flatten"] = 1, ["LRN"] = 1, ["SpaceToDepth"] = 1, ["DepthToSpace"] = 1, ["ReduceMean"] = 1, ["ReduceMax"] = 1,
        ["ReduceMin"] = 1, ["ArgMax"] = 1, ["Exp"] = 6, ["Log"] = 6, ["Sqrt"] = 6, ["Neg"] = 6, ["Abs"] = 6, ["Floor"] = 6,
        ["Ceil"] = 6, ["Reciprocal"] = 6, ["Cast"] = 6, ["Tile"] = 6, ["InstanceNormalization"] = 6,
        // Opset 7 replaced the broadcast attribute with numpy broadcasting.
        ["Add"] = 7, ["Sub"] = 7, ["Mul"] = 7, ["Div"] = 7, ["Pow"] = 7, ["PRelu"] = 7, ["Gemm"] = 7, ["Equal"] = 7,
        ["Greater"] = 7, ["Less"] = 7, ["And"] = 7, ["Or"] = 7, ["Not"] = 7,
        ["Concat"] = 4, ["Reshape"] = 5, ["Sum"] = 8, ["Max"] = 8, ["Min"] = 8, ["Mean"] = 8, ["Expand"] = 8,
        ["BatchNormalization"] = 9, ["ConstantOfShape"] = 9, ["Where"] = 9, ["Erf"] = 9,
        // Resize 10 had no roi or sizes inputs; from 11 its inputs are those of 13.
        ["Resize"] = 11, ["Pad"] = 11, ["Range"] = 11, ["TopK"] = 11,
    };

    /// <summary>The model's default-domain opset.</summary>
    public static long Opset(ModelProto model) =>
        model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();

    /// <summary>The tensors whose rank <see cref="Upgrade"/> needs (the inputs of Softmax nodes below opset 13).</summary>
    public static IReadOnlyList<string> TensorsNeedingRank(ModelProto model) => Opset(model) >= Target
        ? []
        : [.. model.Graph.Node.Where(n => IsDefault(n) && n.OpType is "Softmax" or "LogSoftmax").Select(n => n.Input[0])];

    /// <summary>
    /// A copy of <paramref name="model"/> at opset 13 or later (unchanged if it is already there); <paramref name="rankOf"/>
    /// gives the rank of a tensor named by <see cref="TensorsNeedingRank"/> (null: only check the other ops, as a
    /// refusal before calibration). <paramref name="what"/> names the model.
    /// </summary>
    public static ModelProto Upgrade(ModelProto model, Func<string, int?>? rankOf, string what)
    {
        var from = Opset(model);
        if (from >= Target)
        {
            return model.Clone();
        }

        var upgraded = model.Clone();
        var graph = upgraded.Graph;
        foreach (var node in graph.Node.Where(IsDefault))
        {
            switch (node.OpType)
            {
                case "Clip" when from < 11:
                    AttributesToInputs(graph, node, FloatScalar, "min", "max");
                    break;
                case "Clip":
                    break;
                case "Slice" when from < 10:
                    AttributesToInputs(graph, node, Int64s, "starts", "ends", "axes");
                    break;
                case "Slice":
                    break;
                case "Squeeze" or "Unsqueeze":
                    AttributesToInputs(graph, node, Int64s, "axes");
                    break;
                case "Softmax" or "LogSoftmax" when rankOf is null:
                    break;
                case "Softmax" or "LogSoftmax":
                    LastAxisOnly(node, rankOf(node.Input[0]), what);
                    break;
                case "Split" when node.Attribute.All(a => a.Name != "split"):
                    break; // equal parts: the same at every opset from 2
                default:
                    if (!SameMeaningSince.TryGetValue(node.OpType, out var since) || since > from)
                    {
                        throw new PipelineInputException(
                            $"'{what}' uses {node.OpType} (node '{node.Name}') at opset {from}, whose meaning changes by opset {Target}, "
                            + $"which int8 weights per channel need; export the model at opset {Target} or later.");
                    }

                    break;
            }
        }

        foreach (var import in upgraded.OpsetImport.Where(o => o.Domain is "" or "ai.onnx"))
        {
            import.Version = Target;
        }

        upgraded.IrVersion = Math.Max(upgraded.IrVersion, 7); // opset 13 needs IR 7
        return upgraded;
    }

    private static bool IsDefault(NodeProto node) => node.Domain is "" or "ai.onnx";

    /// <summary>Moves attributes to inputs 1.. in order, as constant initializers; an absent one becomes an empty input.</summary>
    private static void AttributesToInputs(
        GraphProto graph, NodeProto node, Func<string, AttributeProto, TensorProto> constant, params string[] names)
    {
        var present = names.Select(n => node.Attribute.FirstOrDefault(a => a.Name == n)).ToList();
        if (present.All(a => a is null))
        {
            return;
        }

        var inputs = new List<string>();
        for (var i = 0; i < names.Length; i++)
        {
            if (present[i] is not { } attribute)
            {
                inputs.Add("");
                continue;
            }

            var tensor = constant($"{NodeName(graph, node)}.{names[i]}", attribute);
            graph.Initializer.Add(tensor);
            inputs.Add(tensor.Name);
            node.Attribute.Remove(attribute);
        }

        while (inputs.Count > 0 && inputs[^1].Length == 0)
        {
            inputs.RemoveAt(inputs.Count - 1);
        }

        var data = node.Input[0];
        node.Input.Clear();
        node.Input.Add(data);
        node.Input.AddRange(inputs);
    }

    private static string NodeName(GraphProto graph, NodeProto node) =>
        string.IsNullOrEmpty(node.Name) ? $"{node.OpType}_{graph.Node.IndexOf(node)}" : node.Name;

    private static TensorProto FloatScalar(string name, AttributeProto attribute)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.FloatData.Add(attribute.F);
        return tensor;
    }

    private static TensorProto Int64s(string name, AttributeProto attribute)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64, Dims = { attribute.Ints.Count } };
        tensor.Int64Data.AddRange(attribute.Ints);
        return tensor;
    }

    /// <summary>
    /// Before 13, Softmax flattens its input to 2-D at <c>axis</c> (default 1); from 13 it normalises along one axis
    /// (default -1). The two agree exactly when <c>axis</c> is the last axis, which is then written out explicitly.
    /// </summary>
    private static void LastAxisOnly(NodeProto node, int? rank, string what)
    {
        var attribute = node.Attribute.FirstOrDefault(a => a.Name == "axis");
        var axis = attribute?.I ?? 1;
        if (rank is not { } r || (axis != -1 && axis != r - 1))
        {
            var rankText = rank?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown";
            throw new PipelineInputException(
                $"'{what}' has a {node.OpType} (node '{node.Name}') over axes {axis}.. of a rank-{rankText} tensor, which opset {Target} "
                + $"(needed for int8 weights per channel) would compute differently; export the model at opset {Target} or later.");
        }

        if (attribute is null)
        {
            node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = axis });
        }
    }
}
