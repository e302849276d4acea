using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Cost;

/// <summary>Arithmetic work of one node for one frame. FLOPs count a multiply-add as two.</summary>
public readonly record struct NodeCost(long Flops, long Macs)
{
    public static NodeCost operator +(NodeCost a, NodeCost b) => new(a.Flops + b.Flops, a.Macs + b.Macs);
}

/// <summary>
/// The analytic cost model: FLOPs and MACs per node from the concrete tensor shapes. Convolutions
/// (grouped and depthwise), transposed convolutions, Gemm and MatMul dominate CNNs and are counted
/// exactly; pooling counts one operation per window element; element-wise and normalisation ops
/// count per output element; data movement (Reshape, Transpose, Concat, Gather...) counts nothing.
/// </summary>
public static class CostModel
{
    private static readonly HashSet<string> DataMovement = new(StringComparer.Ordinal)
    {
        "Reshape", "Transpose", "Concat", "Flatten", "Identity", "Shape", "Size", "Gather", "GatherElements", "GatherND",
        "Slice", "Squeeze", "Unsqueeze", "Cast", "CastLike", "Pad", "Split", "Expand", "Tile", "ConstantOfShape",
        "Dropout", "DepthToSpace", "SpaceToDepth", "Constant", "Range", "NonZero", "ScatterND", "ScatterElements",
    };

    private static readonly Dictionary<string, int> PerElement = new(StringComparer.Ordinal)
    {
        ["BatchNormalization"] = 2, ["InstanceNormalization"] = 5, ["LayerNormalization"] = 5, ["LRN"] = 5,
        ["Softmax"] = 3, ["LogSoftmax"] = 3, ["HardSwish"] = 3, ["HardSigmoid"] = 2, ["Gelu"] = 8, ["Mish"] = 5,
        ["Sigmoid"] = 4, ["Tanh"] = 4, ["Swish"] = 5, ["Resize"] = 4, ["Upsample"] = 4,
    };

    public static NodeCost Of(NodeProto node, TensorShapes shapes)
    {
        var outputs = node.Output.Where(o => o.Length > 0).Select(o => shapes.TryGet(o, out var t) ? t : null).ToList();
        var output = outputs.FirstOrDefault();
        TensorInfo? Input(int i) => i < node.Input.Count && node.Input[i].Length > 0 && shapes.TryGet(node.Input[i], out var t) ? t : null;
        var outElements = output?.ElementCount ?? 0;

        switch (node.OpType)
        {
            case "Conv":
            case "ConvInteger":
            case "QLinearConv":
            {
                var weight = Input(node.OpType == "QLinearConv" ? 3 : 1);
                if (output is null || weight is null || weight.Shape.Length < 2)
                {
                    return default;
                }

                // out elements x (input channels per group x kernel size); the weight's dims 1.. hold exactly that.
                var perOutput = weight.Shape.Skip(1).Aggregate(1L, (a, d) => a * d);
                var macs = outElements * perOutput;
                var bias = node.Input.Count > 2 && node.OpType == "Conv" && node.Input[2].Length > 0 ? outElements : 0;
                return new NodeCost(2 * macs + bias, macs);
            }

            case "ConvTranspose":
            {
                var input = Input(0);
                var weight = Input(1);
                if (input is null || weight is null || weight.Shape.Length < 2)
                {
                    return default;
                }

                // every input element scatters into (output channels per group x kernel) outputs,
                // which the weight's dims 1.. hold exactly
                var perInput = weight.Shape.Skip(1).Aggregate(1L, (a, d) => a * d);
                var macs = input.ElementCount * perInput;
                return new NodeCost(2 * macs, macs);
            }

            case "Gemm":
            {
                var a = Input(0);
                if (output is null || a is null || a.Shape.Length != 2)
                {
                    return default;
                }

                var k = Attribute(node, "transA", 0) == 1 ? a.Shape[0] : a.Shape[1];
                var macs = outElements * k;
                return new NodeCost(2 * macs + (node.Input.Count > 2 ? outElements : 0), macs);
            }

            case "MatMul":
            case "MatMulInteger":
            case "QLinearMatMul":
            {
                var a = Input(0);
                if (output is null || a is null || a.Shape.Length == 0)
                {
                    return default;
                }

                var macs = outElements * a.Shape[^1];
                return new NodeCost(2 * macs, macs);
            }

            case "MaxPool":
            case "AveragePool":
            case "LpPool":
            {
                var kernel = Ints(node, "kernel_shape");
                return new NodeCost(outElements * kernel.Aggregate(1L, (a, d) => a * d), 0);
            }

            case "GlobalAveragePool":
            case "GlobalMaxPool":
            case "GlobalLpPool":
            case "ReduceMean":
            case "ReduceSum":
            case "ReduceMax":
            case "ReduceMin":
            case "ReduceL2":
                return new NodeCost(Input(0)?.ElementCount ?? 0, 0);
        }

        if (DataMovement.Contains(node.OpType))
        {
            return default;
        }

        if (PerElement.TryGetValue(node.OpType, out var perElement))
        {
            return new NodeCost(outElements * perElement, 0);
        }

        // Element-wise arithmetic and activations: one operation per output element.
        return new NodeCost(outElements, 0);
    }

    public static long Attribute(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } attribute ? attribute.I : fallback;

    public static IReadOnlyList<long> Ints(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToList() ?? [];

    /// <summary>Bytes of weights a set of constant tensors holds (initializers and Constant nodes).</summary>
    public static long ParameterBytes(IEnumerable<TensorProto> tensors) =>
        tensors.Sum(t => (t.Dims.Aggregate(1L, (a, d) => a * d) * ElementTypes.BitsOf((TensorProto.Types.DataType)t.DataType) + 7) / 8);
}
