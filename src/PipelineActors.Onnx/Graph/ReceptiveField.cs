using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Graph;

/// <summary>An inclusive range of rows along one axis of a tensor.</summary>
public readonly record struct RowRange(int Axis, long First, long Last)
{
    public long Count => Last - First + 1;

    public RowRange Union(RowRange other) => new(Axis, Math.Min(First, other.First), Math.Max(Last, other.Last));
}

/// <summary>
/// Which rows of an upstream tensor a band of rows of a downstream tensor depends on, through
/// convolutions, poolings, transposed convolutions, resizes, paddings, transposes and element-wise
/// ops (the halo a row-wise split of a feature map across devices needs, as in EdgeDI and
/// DeepThings). Ops that mix all rows (Gemm, global pooling, reshapes) make the answer "all rows",
/// which is null here.
/// </summary>
public static class ReceptiveField
{
    private static readonly HashSet<string> RowPreserving = new(StringComparer.Ordinal)
    {
        "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Mish",
        "BatchNormalization", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Abs", "Neg", "Max", "Min", "Sum",
        "Identity", "Cast", "Dropout", "Softplus", "Softsign", "Erf", "Gelu", "Where", "Equal", "Greater", "Less",
        "QuantizeLinear", "DequantizeLinear", "Sign", "Floor", "Ceil", "Round", "Reciprocal", "Not", "And", "Or",
    };

    /// <summary>
    /// Rows of <paramref name="source"/> needed to compute rows <paramref name="first"/>..<paramref name="last"/>
    /// of <paramref name="target"/> (rows on axis 2 of an NCHW tensor). Null if some path mixes all rows.
    /// </summary>
    public static RowRange? InputRows(ModelGraph graph, TensorShapes shapes, string target, long first, long last, string source)
    {
        if (!shapes.TryGet(target, out var targetInfo) || targetInfo.Shape.Length != 4)
        {
            return null;
        }

        var needed = new Dictionary<string, RowRange?>(StringComparer.Ordinal) { [target] = new RowRange(2, first, last) };
        var sourcePosition = graph.ProducerPosition(source);
        var targetPosition = graph.ProducerPosition(target);
        for (var position = targetPosition; position > sourcePosition && position >= 0; position--)
        {
            var node = graph.Order[position];
            RowRange? outRange = null;
            var touched = false;
            foreach (var output in node.Outputs)
            {
                if (needed.TryGetValue(output, out var r))
                {
                    if (r is null)
                    {
                        return null;
                    }

                    outRange = outRange is null ? r : outRange.Value.Union(r.Value);
                    touched = true;
                }
            }

            if (!touched)
            {
                continue;
            }

            foreach (var (input, range) in Backward(graph, node.Proto, shapes, outRange!.Value))
            {
                if (graph.ConstantTensors.Contains(input))
                {
                    continue;
                }

                if (range is null)
                {
                    return null;
                }

                needed[input] = needed.TryGetValue(input, out var existing)
                    ? (existing is null ? null : existing.Value.Union(range.Value))
                    : range;
            }
        }

        return needed.TryGetValue(source, out var result) ? result : null;
    }

    /// <summary>How many rows of the model's first input one middle row of a 4-D tensor depends on.</summary>
    public static int? RowsOfInputPerRow(ModelGraph graph, TensorShapes shapes, string tensor)
    {
        if (!shapes.TryGet(tensor, out var info) || info.Shape.Length != 4 || graph.Inputs.Count != 1)
        {
            return null;
        }

        var middle = info.Shape[2] / 2;
        var range = InputRows(graph, shapes, tensor, middle, middle, graph.Inputs[0].Name);
        return range is null ? null : (int)range.Value.Count;
    }

    private static IEnumerable<(string Input, RowRange? Range)> Backward(ModelGraph graph, NodeProto node, TensorShapes shapes, RowRange output)
    {
        var inputs = node.Input.Where(i => i.Length > 0).ToList();
        var axis = output.Axis;
        switch (node.OpType)
        {
            case "Conv":
            case "MaxPool":
            case "AveragePool":
            case "LpPool":
            {
                if (axis < 2 || !shapes.TryGet(inputs[0], out var inInfo) || inInfo.Shape.Length <= axis)
                {
                    yield return (inputs[0], null);
                    yield break;
                }

                var spatial = axis - 2;
                var kernel = CostModel.Ints(node, "kernel_shape");
                long k;
                if (kernel.Count > spatial)
                {
                    k = kernel[spatial];
                }
                else if (node.OpType == "Conv" && inputs.Count > 1 && shapes.TryGet(inputs[1], out var w) && w.Shape.Length > axis)
                {
                    k = w.Shape[axis];
                }
                else
                {
                    yield return (inputs[0], null);
                    yield break;
                }

                var strides = CostModel.Ints(node, "strides");
                var dilations = CostModel.Ints(node, "dilations");
                var s = strides.Count > spatial ? strides[spatial] : 1;
                var d = dilations.Count > spatial ? dilations[spatial] : 1;
                var padBegin = PadBegin(node, spatial, inInfo.Shape[axis], shapes.TryGet(node.Output[0], out var o) ? o.Shape[axis] : 0, k, s, d);
                yield return (inputs[0], WindowRows(axis, output, inInfo.Shape[axis], k, s, d, padBegin));
                yield break;
            }

            case "ConvTranspose":
            {
                if (axis < 2 || !shapes.TryGet(inputs[0], out var inInfo) || !shapes.TryGet(inputs[1], out var w) || w.Shape.Length <= axis)
                {
                    yield return (inputs[0], null);
                    yield break;
                }

                var spatial = axis - 2;
                var k = w.Shape[axis];
                var strides = CostModel.Ints(node, "strides");
                var dilations = CostModel.Ints(node, "dilations");
                var pads = CostModel.Ints(node, "pads");
                var s = strides.Count > spatial ? strides[spatial] : 1;
                var d = dilations.Count > spatial ? dilations[spatial] : 1;
                var p = pads.Count > spatial ? pads[spatial] : 0;

                // output row o = i*s - p + j*d for j in [0, k): solve for i.
                var first = FloorDiv(output.First + p - ((k - 1) * d) + s - 1, s);
                var last = FloorDiv(output.Last + p, s);
                yield return (inputs[0], Clamp(axis, first, last, inInfo.Shape[axis]));
                yield break;
            }

            case "Resize":
            case "Upsample":
            {
                if (!shapes.TryGet(inputs[0], out var inInfo) || !shapes.TryGet(node.Output[0], out var outInfo) || outInfo.Shape[axis] == 0)
                {
                    yield return (inputs[0], null);
                    yield break;
                }

                var inRows = inInfo.Shape[axis];
                var outRows = outInfo.Shape[axis];
                var sampled = ResizeRows(graph, node, axis, output, inRows, outRows);
                if (sampled is not null)
                {
                    yield return (inputs[0], sampled);
                    yield break;
                }

                // Modes not modelled exactly: the nearest source rows plus one on each side for interpolation.
                var first = (output.First * inRows / outRows) - 1;
                var last = (((output.Last + 1) * inRows) + outRows - 1) / outRows;
                yield return (inputs[0], Clamp(axis, first, last, inRows));
                yield break;
            }

            case "Pad":
            {
                var pads = CostModel.Ints(node, "pads");
                var inRank = shapes.TryGet(inputs[0], out var inInfo) ? inInfo.Shape.Length : 0;
                if (pads.Count == 0 || inRank == 0)
                {
                    yield return (inputs[0], null); // opset 11+ pads are an input; treat as unknown
                    yield break;
                }

                yield return (inputs[0], Clamp(axis, output.First - pads[axis], output.Last - pads[axis], inInfo.Shape[axis]));
                yield break;
            }

            case "Transpose":
            {
                var perm = CostModel.Ints(node, "perm");
                if (perm.Count <= axis)
                {
                    yield return (inputs[0], null);
                    yield break;
                }

                yield return (inputs[0], output with { Axis = (int)perm[axis] });
                yield break;
            }

            case "Concat":
            {
                var concatAxis = CostModel.Attribute(node, "axis", 0);
                foreach (var input in inputs)
                {
                    yield return (input, concatAxis == axis ? null : output);
                }

                yield break;
            }
        }

        if (RowPreserving.Contains(node.OpType))
        {
            shapes.TryGet(node.Output[0], out var outInfo);
            foreach (var input in inputs)
            {
                // A broadcast operand with one row (a per-channel scale) does not depend on rows.
                if (shapes.TryGet(input, out var inInfo) && outInfo is not null && inInfo.Shape.Length == outInfo.Shape.Length)
                {
                    yield return (input, inInfo.Shape[axis] == 1 ? new RowRange(axis, 0, 0) : output);
                }
                else if (inInfo is not null && inInfo.Shape.Length < (outInfo?.Shape.Length ?? 0) - axis)
                {
                    // A broadcast operand without the row axis (constants were skipped already) is a
                    // per-frame value such as a dynamic quantization scale: it may depend on every row.
                    yield return (input, null);
                }
                else
                {
                    yield return (input, null);
                }
            }

            yield break;
        }

        foreach (var input in inputs)
        {
            yield return (input, null);
        }
    }

    /// <summary>
    /// Input rows a sliding window (kernel k, stride s, dilation d) reads for output rows [First, Last]:
    /// from the first tap that lands on a real row to the last one. With dilation, a window that
    /// starts in the padding skips rows, so its first real tap is not simply row 0.
    /// </summary>
    private static RowRange WindowRows(int axis, RowRange output, long rows, long k, long s, long d, long padBegin)
    {
        long? first = null;
        for (var o = output.First; o <= output.Last; o++)
        {
            var start = (o * s) - padBegin;
            var tap = start < 0 ? start + (CeilDiv(-start, d) * d) : start;
            if (tap <= start + ((k - 1) * d) && tap < rows)
            {
                first = Math.Min(first ?? tap, tap);
            }

            if (start >= 0)
            {
                break; // later windows start later
            }
        }

        long? last = null;
        for (var o = output.Last; o >= output.First; o--)
        {
            var start = (o * s) - padBegin;
            var end = start + ((k - 1) * d);
            var tap = end > rows - 1 ? end - (CeilDiv(end - (rows - 1), d) * d) : end;
            if (tap >= start && tap >= 0)
            {
                last = Math.Max(last ?? tap, tap);
            }

            if (end <= rows - 1)
            {
                break; // earlier windows end earlier
            }
        }

        return first is null || last is null
            ? Clamp(axis, (output.First * s) - padBegin, (output.Last * s) - padBegin + ((k - 1) * d), rows)
            : new RowRange(axis, first.Value, last.Value);
    }

    /// <summary>
    /// Input rows Resize (or Upsample) samples for output rows [First, Last], computed the way ONNX
    /// Runtime maps coordinates (in float): nearest reads one row, linear two (one when the
    /// coordinate is whole), cubic four. Null for modes not modelled here.
    /// </summary>
    private static RowRange? ResizeRows(ModelGraph graph, NodeProto node, int axis, RowRange output, long inRows, long outRows)
    {
        var opset = graph.Model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(13).Max();
        var isUpsample = node.OpType == "Upsample" || opset < 11;
        var mode = StringAttribute(node, "mode") ?? "nearest";
        var coordinates = isUpsample ? "asymmetric" : StringAttribute(node, "coordinate_transformation_mode") ?? "half_pixel";
        var nearestMode = isUpsample ? "simple" : StringAttribute(node, "nearest_mode") ?? "round_prefer_floor";

        // ONNX Runtime maps with the given scale when there is one, else with out / in.
        var scalesName = node.OpType == "Resize" && opset >= 11 ? (node.Input.Count > 2 ? node.Input[2] : "")
            : (node.Input.Count > 1 ? node.Input[1] : "");
        var scales = scalesName.Length > 0 ? ConstantFloats(graph, scalesName) : null;
        var scale = scales is not null && scales.Count > axis ? scales[axis] : (float)outRows / inRows;
        if (node.OpType == "Upsample" && node.Attribute.FirstOrDefault(a => a.Name == "scales") is { } attribute && attribute.Floats.Count > axis)
        {
            scale = attribute.Floats[axis];
        }

        float? Source(long o)
        {
            float x = o;
            return coordinates switch
            {
                "half_pixel" => ((x + 0.5f) / scale) - 0.5f,
                "pytorch_half_pixel" => outRows > 1 ? ((x + 0.5f) / scale) - 0.5f : 0f,
                "align_corners" => outRows == 1 ? 0f : x * (inRows - 1) / (outRows - 1),
                "asymmetric" => x / scale,
                "tf_half_pixel_for_nearest" => (x + 0.5f) / scale,
                _ => null,
            };
        }

        (long First, long Last)? Sampled(long o)
        {
            if (Source(o) is not { } x)
            {
                return null;
            }

            switch (mode)
            {
                case "nearest":
                {
                    var floor = (long)MathF.Floor(x);
                    var tie = x == floor + 0.5f;
                    long row = nearestMode switch
                    {
                        "round_prefer_floor" => tie ? floor : (long)MathF.Round(x, MidpointRounding.AwayFromZero),
                        "round_prefer_ceil" => tie ? floor + 1 : (long)MathF.Round(x, MidpointRounding.AwayFromZero),
                        "floor" => floor,
                        "ceil" => (long)MathF.Ceiling(x),
                        "simple" => scale < 1 ? (long)MathF.Ceiling(x) : (long)x,
                        _ => long.MinValue,
                    };
                    if (row == long.MinValue)
                    {
                        return null;
                    }

                    row = Math.Clamp(row, 0, inRows - 1);
                    return (row, row);
                }

                case "linear":
                {
                    x = Math.Clamp(x, 0f, inRows - 1);
                    var low = (long)MathF.Floor(x);
                    return (low, x > low ? Math.Min(low + 1, inRows - 1) : low);
                }

                case "cubic":
                {
                    var low = (long)MathF.Floor(x);
                    return (Math.Clamp(low - 1, 0, inRows - 1), Math.Clamp(low + 2, 0, inRows - 1));
                }

                default:
                    return null;
            }
        }

        // The mapping is monotone, so the band's ends come from its end rows.
        var top = Sampled(output.First);
        var bottom = Sampled(output.Last);
        return top is null || bottom is null ? null : new RowRange(axis, top.Value.First, bottom.Value.Last);
    }

    private static string? StringAttribute(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name)?.S.ToStringUtf8();

    /// <summary>The values of a float constant (an initializer or a Constant node's value), or null.</summary>
    private static List<float>? ConstantFloats(ModelGraph graph, string name)
    {
        var tensor = graph.Model.Graph.Initializer.FirstOrDefault(t => t.Name == name);
        if (tensor is null && graph.ConstantProducer(name) is { OpType: "Constant" } constant)
        {
            tensor = constant.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
        }

        if (tensor is null || tensor.DataType != (int)TensorProto.Types.DataType.Float)
        {
            return null;
        }

        if (tensor.FloatData.Count > 0)
        {
            return [.. tensor.FloatData];
        }

        var raw = tensor.RawData.Span;
        var values = new List<float>(raw.Length / 4);
        for (var i = 0; i + 4 <= raw.Length; i += 4)
        {
            values.Add(System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(raw[i..]));
        }

        return values;
    }

    private static long CeilDiv(long a, long b) => (a + b - 1) / b;

    private static long PadBegin(NodeProto node, int spatial, long inRows, long outRows, long k, long s, long d)
    {
        var autoPad = node.Attribute.FirstOrDefault(a => a.Name == "auto_pad")?.S.ToStringUtf8() ?? "NOTSET";
        if (autoPad is "SAME_UPPER" or "SAME_LOWER")
        {
            var total = Math.Max(0, ((outRows - 1) * s) + ((k - 1) * d) + 1 - inRows);
            return autoPad == "SAME_UPPER" ? total / 2 : (total + 1) / 2;
        }

        var pads = CostModel.Ints(node, "pads");
        return pads.Count > spatial ? pads[spatial] : 0;
    }

    private static RowRange Clamp(int axis, long first, long last, long rows) =>
        new(axis, Math.Clamp(first, 0, rows - 1), Math.Clamp(last, 0, rows - 1));

    private static long FloorDiv(long a, long b) => (long)Math.Floor((double)a / b);
}
