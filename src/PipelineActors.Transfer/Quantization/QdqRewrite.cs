using System.Buffers.Binary;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Transfer.Quantization;

/// <summary>A Conv, MatMul or Gemm with a constant float weight: what the QDQ rewrite turns into int8.</summary>
/// <param name="Index">The node's position in the graph's node list.</param>
/// <param name="WeightAxis">The weight's output-channel axis: 0 for Conv and Gemm with transB, 1 for MatMul and plain Gemm.</param>
/// <param name="Bias">The constant float bias (Conv input 2, Gemm C of one value per output channel), or null.</param>
public sealed record QdqTarget(int Index, string Node, string OpType, string Activation, string Weight, int WeightAxis, string? Bias, string Output);

/// <summary>A uint8 activation quantisation: value = Scale * (code - ZeroPoint).</summary>
public readonly record struct ActivationScale(float Scale, byte ZeroPoint)
{
    /// <summary>The scale and zero point covering [low, high], widened to hold 0 exactly (ReLU zeros, padding).</summary>
    public static ActivationScale For(double low, double high)
    {
        low = Math.Min(low, 0);
        high = Math.Max(high, 0);
        if (!(high > low) || !double.IsFinite(high - low))
        {
            return new ActivationScale(1f, 0); // a tensor that was always 0 (or never finite): any scale keeps 0
        }

        var scale = (float)((high - low) / 255);
        return new ActivationScale(scale, (byte)Math.Clamp(Math.Round(-low / scale), 0, 255));
    }
}

/// <summary>
/// The QDQ rewrite: every Conv, MatMul and Gemm with a constant weight gets its weight as an int8 initializer
/// (symmetric, per output channel, zero point 0) behind a per-axis DequantizeLinear, its bias as int32 at scale
/// input scale x weight scale (what ONNX Runtime's QLinearConv/QGemm fusions need), and QuantizeLinear/DequantizeLinear
/// pairs (uint8, calibrated) on its float input and on its output unless that is a graph output. ONNX Runtime's CPU
/// provider fuses DequantizeLinear -> op -> QuantizeLinear into its int8 kernels. Graph inputs, outputs and every
/// tensor name a neighbour stage reads stay as they were, so a quantised stage chains exactly like the float one.
/// </summary>
public static class QdqRewrite
{
    /// <summary>Metadata key saying a model was quantised here, and how.</summary>
    public const string MetadataKey = "pipelineactors.quantization";

    private const int FloatType = (int)TensorProto.Types.DataType.Float;

    /// <summary>The nodes the rewrite quantises; <paramref name="what"/> names the model in the error when there are none.</summary>
    public static IReadOnlyList<QdqTarget> Targets(ModelProto model, string what)
    {
        var constants = Constants(model.Graph);
        var targets = new List<QdqTarget>();
        foreach (var (node, index) in model.Graph.Node.Select((n, i) => (n, i)))
        {
            if (node.Domain is not ("" or "ai.onnx") || node.OpType is not ("Conv" or "MatMul" or "Gemm") || node.Input.Count < 2)
            {
                continue;
            }

            if (constants.ContainsKey(node.Input[0]) || !constants.TryGetValue(node.Input[1], out var weight) || weight.DataType != FloatType)
            {
                continue; // a weight computed per frame, or a product of two constants, stays float
            }

            int? axis = node.OpType switch
            {
                "Conv" when weight.Dims.Count >= 3 => 0,
                "MatMul" when weight.Dims.Count == 2 => 1,
                "Gemm" when weight.Dims.Count == 2 => Attribute(node, "transB") == 1 ? 0 : 1,
                _ => null,
            };
            if (axis is not { } weightAxis)
            {
                continue;
            }

            var channels = weight.Dims[weightAxis];
            string? bias = null;
            if (node.OpType is "Conv" or "Gemm" && node.Input.Count > 2 && node.Input[2].Length > 0
                && constants.TryGetValue(node.Input[2], out var b) && b.DataType == FloatType && b.Dims.Count == 1 && b.Dims[0] == channels)
            {
                bias = node.Input[2];
            }

            var name = string.IsNullOrEmpty(node.Name) ? $"{node.OpType}_{index}" : node.Name;
            targets.Add(new QdqTarget(index, name, node.OpType, node.Input[0], node.Input[1], weightAxis, bias, node.Output[0]));
        }

        if (targets.Count == 0)
        {
            throw new PipelineInputException(
                $"'{what}' has no Conv, MatMul or Gemm with a constant weight, so there is nothing to quantise to int8.");
        }

        return targets;
    }

    /// <summary>
    /// The float tensors that get uint8 QuantizeLinear/DequantizeLinear pairs, and so need calibrated ranges: each
    /// target's input, and its output unless that is a graph output. Where the output's only reader is a Relu or Clip,
    /// the pair goes after that instead (as exporters fuse Conv+Relu before quantising): the range starts at 0, so the
    /// codes are twice as fine, and ONNX Runtime drops the Relu as redundant with the QuantizeLinear and fuses the Conv.
    /// </summary>
    public static IReadOnlyList<string> ActivationTensors(ModelProto model, IReadOnlyList<QdqTarget> targets)
    {
        // A target whose output reaches a graph output without passing another target is a head (BlazeFace's score
        // convolutions): its output stays float. Those logits span hundreds with the interesting ones near 0, so one
        // uint8 scale over them loses exactly what the decoder's threshold reads.
        var outputs = FloatPathToOutputs(model, targets);
        var readers = model.Graph.Node.SelectMany(n => n.Input.Distinct().Select(i => (Input: i, Node: n)))
            .GroupBy(p => p.Input, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(p => p.Node).ToList(), StringComparer.Ordinal);
        string? Quantised(string output)
        {
            if (outputs.Contains(output))
            {
                return null;
            }

            if (readers.TryGetValue(output, out var list) && list is [{ OpType: "Relu" or "Clip" } clamp] && clamp.Output.Count == 1)
            {
                return outputs.Contains(clamp.Output[0]) ? output : clamp.Output[0];
            }

            return output;
        }

        return [.. targets.Select(t => t.Activation).Concat(targets.Select(t => Quantised(t.Output)).OfType<string>()).Distinct()];
    }

    /// <summary>The tensors from which a graph output is reached through nodes that are not targets (graph outputs included).</summary>
    private static HashSet<string> FloatPathToOutputs(ModelProto model, IReadOnlyList<QdqTarget> targets)
    {
        var targetIndices = targets.Select(t => t.Index).ToHashSet();
        var reaching = model.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        for (var i = model.Graph.Node.Count - 1; i >= 0; i--)
        {
            var node = model.Graph.Node[i];
            if (!targetIndices.Contains(i) && node.Output.Any(reaching.Contains))
            {
                reaching.UnionWith(node.Input.Where(n => n.Length > 0));
            }
        }

        return reaching;
    }

    /// <summary>
    /// Rewrites <paramref name="model"/> (already at opset 13 or later) with <paramref name="scales"/> for every tensor
    /// <see cref="ActivationTensors"/> names; <paramref name="note"/> goes into the model's metadata.
    /// </summary>
    public static ModelProto Rewrite(
        ModelProto model, IReadOnlyList<QdqTarget> targets, IReadOnlyDictionary<string, ActivationScale> scales, string note)
    {
        if (OpsetUpgrade.Opset(model) < OpsetUpgrade.Target)
        {
            throw new InvalidOperationException($"The QDQ rewrite needs opset {OpsetUpgrade.Target}; upgrade the model first.");
        }

        var result = model.Clone();
        var graph = result.Graph;
        var constants = Constants(graph);
        var taken = graph.Node.SelectMany(n => n.Input.Concat(n.Output)).Concat(graph.Initializer.Select(i => i.Name))
            .Concat(graph.Input.Select(i => i.Name)).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        string Fresh(string name) => taken.Add(name)
            ? name
            : throw new PipelineInputException($"The model already has a tensor named '{name}', so the QDQ rewrite cannot use that name.");

        var activations = ActivationTensors(model, targets);
        var front = new List<NodeProto>();
        var after = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal); // producer's output -> the Q/DQ nodes that follow it
        var dequantized = new Dictionary<string, string>(StringComparer.Ordinal);
        var inputs = graph.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var tensor in activations)
        {
            if (!scales.TryGetValue(tensor, out var scale))
            {
                throw new InvalidOperationException($"No calibrated range for '{tensor}'.");
            }

            var scaleInit = Scalar(Fresh($"{tensor}.scale"), FloatType, BitConverter.GetBytes(scale.Scale));
            var zeroInit = Scalar(Fresh($"{tensor}.zero_point"), (int)TensorProto.Types.DataType.Uint8, [scale.ZeroPoint]);
            graph.Initializer.Add(scaleInit);
            graph.Initializer.Add(zeroInit);
            var codes = Fresh($"{tensor}.quantized");
            var values = Fresh($"{tensor}.dequantized");
            NodeProto[] pair =
            [
                new()
                {
                    Name = Fresh($"{tensor}.quantize"), OpType = "QuantizeLinear", Input = { tensor, scaleInit.Name, zeroInit.Name },
                    Output = { codes },
                },
                new()
                {
                    Name = Fresh($"{tensor}.dequantize"), OpType = "DequantizeLinear", Input = { codes, scaleInit.Name, zeroInit.Name },
                    Output = { values },
                },
            ];
            if (inputs.Contains(tensor))
            {
                front.AddRange(pair);
            }
            else
            {
                if (!after.TryGetValue(tensor, out var list))
                {
                    after[tensor] = list = [];
                }

                list.AddRange(pair);
            }

            dequantized[tensor] = values;
        }

        var nodes = graph.Node.ToList();
        // Every reader of a quantised tensor reads its dequantised copy: ONNX Runtime fuses an op with the
        // QuantizeLinear after it only when that is the op output's sole consumer.
        foreach (var node in nodes)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (dequantized.TryGetValue(node.Input[i], out var values))
                {
                    node.Input[i] = values;
                }
            }
        }

        var weights = new Dictionary<(string, int), (string Values, float[] Scales)>();
        foreach (var target in targets)
        {
            var node = nodes[target.Index];
            if (!weights.TryGetValue((target.Weight, target.WeightAxis), out var weight))
            {
                var tensor = constants[target.Weight];
                var dims = tensor.Dims.ToArray();
                var (codes, channelScales) = QuantizePerChannel(Floats(tensor), dims, target.WeightAxis);
                var prefix = weights.Keys.Any(k => k.Item1 == target.Weight) ? $"{target.Weight}.axis{target.WeightAxis}" : target.Weight;
                var codeInit = new TensorProto
                {
                    Name = Fresh($"{prefix}.int8"), DataType = (int)TensorProto.Types.DataType.Int8,
                    RawData = ByteString.CopyFrom((byte[])(Array)codes),
                };
                codeInit.Dims.AddRange(dims);
                var scaleInit = Vector(Fresh($"{prefix}.scale"), channelScales);
                var zeroInit = new TensorProto
                {
                    Name = Fresh($"{prefix}.zero_point"), DataType = (int)TensorProto.Types.DataType.Int8, Dims = { channelScales.Length },
                    RawData = ByteString.CopyFrom(new byte[channelScales.Length]),
                };
                graph.Initializer.Add(codeInit);
                graph.Initializer.Add(scaleInit);
                graph.Initializer.Add(zeroInit);
                var values = Fresh($"{prefix}.dequantized");
                front.Add(DequantizeAxis(Fresh($"{prefix}.dequantize"), codeInit.Name, scaleInit.Name, zeroInit.Name, values, target.WeightAxis));
                weight = (values, channelScales);
                weights[(target.Weight, target.WeightAxis)] = weight;
            }

            node.Input[1] = weight.Values;
            if (target.Bias is { } bias && scales.TryGetValue(target.Activation, out var input)
                && QuantizeBias(Floats(constants[bias]), input.Scale, weight.Scales) is { } quantized)
            {
                var codeInit = new TensorProto { Name = Fresh($"{target.Node}.bias.int32"), DataType = (int)TensorProto.Types.DataType.Int32 };
                codeInit.Dims.Add(quantized.Codes.Length);
                codeInit.Int32Data.AddRange(quantized.Codes);
                var scaleInit = Vector(Fresh($"{target.Node}.bias.scale"), quantized.Scales);
                var zeroInit = new TensorProto { Name = Fresh($"{target.Node}.bias.zero_point"), DataType = (int)TensorProto.Types.DataType.Int32 };
                zeroInit.Dims.Add(quantized.Codes.Length);
                zeroInit.Int32Data.AddRange(new int[quantized.Codes.Length]);
                graph.Initializer.Add(codeInit);
                graph.Initializer.Add(scaleInit);
                graph.Initializer.Add(zeroInit);
                var values = Fresh($"{target.Node}.bias.dequantized");
                front.Add(DequantizeAxis(Fresh($"{target.Node}.bias.dequantize"), codeInit.Name, scaleInit.Name, zeroInit.Name, values, 0));
                node.Input[2] = values;
            }
        }

        // Constant nodes first (DequantizeLinear may read what they made), then the weight dequantisers and the
        // graph inputs' pairs, then each node followed by the pairs on its outputs: the order stays topological.
        var constantNodes = nodes.Where(n => n.OpType == "Constant" && n.Input.Count == 0).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(constantNodes);
        graph.Node.AddRange(front);
        foreach (var node in nodes.Where(n => !constantNodes.Contains(n)))
        {
            graph.Node.Add(node);
            foreach (var output in node.Output)
            {
                if (after.TryGetValue(output, out var pair))
                {
                    graph.Node.AddRange(pair);
                }
            }
        }

        RemoveUnused(graph);
        result.MetadataProps.Add(new StringStringEntryProto { Key = MetadataKey, Value = note });
        return result;
    }

    /// <summary>
    /// Symmetric int8 codes per channel on <paramref name="axis"/>: scale = max |w| / 127, codes in [-127, 127], zero point 0.
    /// A channel of zeros gets scale 1 (its codes are 0 whatever the scale).
    /// </summary>
    public static (sbyte[] Codes, float[] Scales) QuantizePerChannel(float[] weights, long[] dims, int axis)
    {
        long outer = 1, inner = 1;
        for (var i = 0; i < axis; i++)
        {
            outer *= dims[i];
        }

        for (var i = axis + 1; i < dims.Length; i++)
        {
            inner *= dims[i];
        }

        var channels = (int)dims[axis];
        if (outer * channels * inner != weights.Length)
        {
            throw new PipelineInputException($"A weight of shape [{string.Join(",", dims)}] holds {weights.Length} values; the model is corrupt.");
        }

        var scales = new float[channels];
        for (long o = 0; o < outer; o++)
        {
            for (var c = 0; c < channels; c++)
            {
                var start = ((o * channels) + c) * inner;
                for (long k = 0; k < inner; k++)
                {
                    scales[c] = Math.Max(scales[c], Math.Abs(weights[start + k]));
                }
            }
        }

        for (var c = 0; c < channels; c++)
        {
            scales[c] = scales[c] > 0 && float.IsFinite(scales[c]) ? scales[c] / 127f : 1f;
        }

        var codes = new sbyte[weights.Length];
        for (long o = 0; o < outer; o++)
        {
            for (var c = 0; c < channels; c++)
            {
                var start = ((o * channels) + c) * inner;
                for (long k = 0; k < inner; k++)
                {
                    codes[start + k] = (sbyte)Math.Clamp(MathF.Round(weights[start + k] / scales[c]), -127, 127);
                }
            }
        }

        return (codes, scales);
    }

    /// <summary>int32 bias codes at scale input x weight per channel, or null where one would overflow int32 (it then stays float).</summary>
    private static (int[] Codes, float[] Scales)? QuantizeBias(float[] bias, float inputScale, float[] weightScales)
    {
        var codes = new int[bias.Length];
        var scales = new float[bias.Length];
        for (var c = 0; c < bias.Length; c++)
        {
            scales[c] = inputScale * weightScales[c];
            var code = Math.Round(bias[c] / (double)scales[c]);
            if (!(scales[c] > 0) || !(Math.Abs(code) <= int.MaxValue))
            {
                return null;
            }

            codes[c] = (int)code;
        }

        return (codes, scales);
    }

    /// <summary>Initializers and Constant-node values by tensor name: the weights a loader must treat alike.</summary>
    private static Dictionary<string, TensorProto> Constants(GraphProto graph)
    {
        var constants = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n.OpType == "Constant" && n.Output.Count == 1))
        {
            if (node.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
            {
                constants[node.Output[0]] = value;
            }
        }

        return constants;
    }

    private static float[] Floats(TensorProto tensor)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw new PipelineInputException($"The weight '{tensor.Name}' is in an external data file, which the QDQ rewrite cannot read.");
        }

        if (tensor.FloatData.Count > 0)
        {
            return [.. tensor.FloatData];
        }

        var raw = tensor.RawData.Span;
        var values = new float[raw.Length / 4];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(raw[(i * 4)..]);
        }

        return values;
    }

    /// <summary>Drops the initializers and Constant nodes nothing reads any more (the float weights that were replaced).</summary>
    private static void RemoveUnused(GraphProto graph)
    {
        var read = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n.OpType == "Constant" && n.Output.All(o => !read.Contains(o))).ToList())
        {
            graph.Node.Remove(node);
        }

        var unused = graph.Initializer.Where(t => !read.Contains(t.Name)).ToList();
        foreach (var tensor in unused)
        {
            graph.Initializer.Remove(tensor);
            // IR < 4 lists initializers as graph inputs too.
            if (graph.Input.FirstOrDefault(i => i.Name == tensor.Name) is { } listed)
            {
                graph.Input.Remove(listed);
            }
        }
    }

    private static long Attribute(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? 0;

    private static TensorProto Scalar(string name, int type, byte[] raw) =>
        new() { Name = name, DataType = type, RawData = ByteString.CopyFrom(raw) };

    private static TensorProto Vector(string name, float[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = FloatType, Dims = { values.Length } };
        tensor.FloatData.AddRange(values);
        return tensor;
    }

    private static NodeProto DequantizeAxis(string name, string codes, string scale, string zeroPoint, string output, int axis)
    {
        var node = new NodeProto { Name = name, OpType = "DequantizeLinear", Input = { codes, scale, zeroPoint }, Output = { output } };
        node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = axis });
        return node;
    }
}
