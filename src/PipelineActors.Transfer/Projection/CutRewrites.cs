using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Transfer.Projection;

/// <summary>
/// ONNX rewrites of the two stage models around a cut, so that ONNX Runtime does the transfer layer's work: a node
/// appended to the upstream stage turns the cut tensor into a smaller wire tensor, and a node prepended to the
/// downstream stage turns the wire tensor back. The downstream nodes keep reading the cut tensor's own name.
/// </summary>
public static class CutRewrites
{
    /// <summary>Metadata key naming the transfer layer a rewritten stage carries (<c>pca:K</c>, <c>pool2</c>).</summary>
    public const string TransferKey = "pipelineactors.transfer";

    private const int FloatType = (int)TensorProto.Types.DataType.Float;

    /// <summary>
    /// <c>pca:K</c>: a 1x1 Conv with P and bias -P mean after the upstream stage, its inverse (P^T, bias mean) before the
    /// downstream one. The wire tensor is <c>{tensor}.pca{K}</c> with K channels.
    /// </summary>
    public static (ModelProto Upstream, ModelProto Downstream) Pca(
        ModelProto upstream, ModelProto downstream, string tensor, ChannelProjection projection, IReadOnlyList<long>? knownShape = null)
    {
        var shape = CutShape(upstream, tensor, knownShape);
        if (shape[1] != projection.Channels)
        {
            throw new PipelineInputException($"The projection is for {projection.Channels} channels but '{tensor}' has {shape[1]}.");
        }

        var wire = $"{tensor}.pca{projection.Components}";
        var wireShape = (long[])shape.Clone();
        wireShape[1] = projection.Components;
        var label = $"pca:{projection.Components}";

        var p = projection;
        var down = Conv(tensor, wire, $"{wire}.project", p.Components, p.Channels, p.Projection, p.ProjectionBias());
        var up = Conv(wire, tensor, $"{wire}.inverse", p.Channels, p.Components, p.InverseWeight(), p.Mean);
        return (Append(upstream, tensor, wire, wireShape, down.Node, down.Weights, label),
            Prepend(downstream, tensor, wire, wireShape, [up.Node], up.Weights, label));
    }

    /// <summary>
    /// <c>pool2</c>, ScissionLite's transfer layer: a 2x2 MaxPool (stride 2; odd sizes keep their last row) after the
    /// upstream stage and a nearest upsampling back to the cut's exact size before the downstream one. From opset 11 the
    /// upsampling is one Resize to the cut's sizes; before that, Upsample (opset 9) or Resize (opset 10) by 2, cropped
    /// by a Slice where a size is odd, and MaxPool (without ceil_mode before opset 10) pads the odd row at the end.
    /// </summary>
    public static (ModelProto Upstream, ModelProto Downstream) Pool2(
        ModelProto upstream, ModelProto downstream, string tensor, IReadOnlyList<long>? knownShape = null)
    {
        var shape = CutShape(upstream, tensor, knownShape);
        var wire = $"{tensor}.pool2";
        long[] wireShape = [shape[0], shape[1], (shape[2] + 1) / 2, (shape[3] + 1) / 2];
        RequireOpset(upstream, 8, "pool2's MaxPool");
        RequireOpset(downstream, 9, "pool2's nearest upsampling");
        var (up, constants) = Opset(downstream) >= 11
            ? ResizeToSizes(downstream, wire, tensor, shape)
            : UpsampleByTwo(downstream, wire, tensor, shape);
        return (Append(upstream, tensor, wire, wireShape, MaxPool2(upstream, tensor, wire, shape), [], "pool2"),
            Prepend(downstream, tensor, wire, wireShape, up, constants, "pool2"));
    }

    private static NodeProto MaxPool2(ModelProto upstream, string tensor, string wire, long[] shape)
    {
        var pool = new NodeProto { Name = $"{wire}.maxpool", OpType = "MaxPool", Input = { tensor }, Output = { wire } };
        pool.Attribute.Add(Ints("kernel_shape", 2, 2));
        pool.Attribute.Add(Ints("strides", 2, 2));
        if (Opset(upstream) >= 10)
        {
            pool.Attribute.Add(new AttributeProto { Name = "ceil_mode", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        }
        else
        {
            // MaxPool-8 has no ceil_mode; a pad at the end of an odd axis is never the maximum, so the window sees the last row alone.
            pool.Attribute.Add(Ints("pads", 0, 0, shape[2] % 2, shape[3] % 2));
        }

        return pool;
    }

    private static (NodeProto[] Nodes, TensorProto[] Constants) ResizeToSizes(ModelProto downstream, string wire, string tensor, long[] shape)
    {
        var sizes = new TensorProto { Name = $"{wire}.sizes", DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 4 } };
        sizes.Int64Data.AddRange(shape);
        // Opsets 11 and 12 require the roi and scales inputs even when sizes is given: empty tensors say "unused".
        TensorProto[] constants = Opset(downstream) >= 13
            ? [sizes]
            : [new TensorProto { Name = $"{wire}.roi", DataType = FloatType, Dims = { 0 } },
                new TensorProto { Name = $"{wire}.scales", DataType = FloatType, Dims = { 0 } }, sizes];
        var resize = new NodeProto
        {
            Name = $"{wire}.resize",
            OpType = "Resize",
            Input = { wire, constants.Length == 1 ? "" : constants[0].Name, constants.Length == 1 ? "" : constants[1].Name, sizes.Name },
            Output = { tensor },
        };
        resize.Attribute.Add(Str("mode", "nearest"));
        resize.Attribute.Add(Str("coordinate_transformation_mode", "asymmetric"));
        resize.Attribute.Add(Str("nearest_mode", "floor"));
        return ([resize], constants);
    }

    private static (NodeProto[] Nodes, TensorProto[] Constants) UpsampleByTwo(ModelProto downstream, string wire, string tensor, long[] shape)
    {
        // Both ops take scales as an input and map output pixel y to input pixel floor(y / 2): nearest, asymmetric.
        var opset = Opset(downstream);
        var scales = new TensorProto { Name = $"{wire}.scales", DataType = FloatType, Dims = { 4 } };
        scales.FloatData.AddRange([1f, 1f, 2f, 2f]);
        var odd = shape[2] % 2 == 1 || shape[3] % 2 == 1;
        var upsampled = odd ? $"{wire}.upsampled" : tensor;
        var up = new NodeProto
        {
            Name = $"{wire}.upsample", OpType = opset >= 10 ? "Resize" : "Upsample", Input = { wire, scales.Name }, Output = { upsampled },
        };
        up.Attribute.Add(Str("mode", "nearest"));
        if (!odd)
        {
            return ([up], [scales]);
        }

        // Twice the pooled size is one row or column too many on an odd axis: the crop keeps the cut's own size.
        var crop = new NodeProto { Name = $"{wire}.crop", OpType = "Slice", Input = { upsampled }, Output = { tensor } };
        if (opset < 10)
        {
            crop.Attribute.Add(Ints("starts", 0, 0));
            crop.Attribute.Add(Ints("ends", shape[2], shape[3]));
            crop.Attribute.Add(Ints("axes", 2, 3));
            return ([up, crop], [scales]);
        }

        TensorProto Bound(string name, long height, long width)
        {
            var bound = new TensorProto { Name = $"{wire}.crop.{name}", DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 2 } };
            bound.Int64Data.Add(height);
            bound.Int64Data.Add(width);
            return bound;
        }

        TensorProto[] bounds = [Bound("starts", 0, 0), Bound("ends", shape[2], shape[3]), Bound("axes", 2, 3)];
        crop.Input.AddRange(bounds.Select(b => b.Name));
        return ([up, crop], [scales, .. bounds]);
    }

    /// <summary>
    /// The static NCHW shape of <paramref name="tensor"/> as the upstream stage's output, or, where the stage declares
    /// symbolic dims (a model with dynamic input sizes), the <paramref name="knownShape"/> measured at the analysed size.
    /// </summary>
    private static long[] CutShape(ModelProto upstream, string tensor, IReadOnlyList<long>? knownShape)
    {
        var output = upstream.Graph.Output.FirstOrDefault(o => o.Name == tensor)
            ?? throw new PipelineInputException($"The upstream stage has no output named '{tensor}'; a transfer layer goes on a cut tensor.");
        var dims = output.Type?.TensorType?.Shape?.Dim;
        if (output.Type?.TensorType?.ElemType == FloatType && knownShape is { Count: 4 } && knownShape.All(d => d >= 1)
            && (dims is null || (dims.Count == 4 && dims.Any(d => !d.HasDimValue))))
        {
            return [.. knownShape];
        }

        if (output.Type?.TensorType?.ElemType != FloatType || dims is null || dims.Count != 4 || dims.Any(d => !d.HasDimValue || d.DimValue < 1))
        {
            throw new PipelineInputException($"'{tensor}' is not a float32 NCHW tensor of static shape, so no transfer layer can go on it.");
        }

        return [.. dims.Select(d => d.DimValue)];
    }

    private static ModelProto Append(
        ModelProto upstream, string tensor, string wire, long[] wireShape, NodeProto node, IEnumerable<TensorProto> weights, string label)
    {
        var model = upstream.Clone();
        RefuseTaken(model, wire);
        var graph = model.Graph;
        var at = graph.Output.IndexOf(graph.Output.First(o => o.Name == tensor));
        graph.Output[at] = ValueInfo(wire, wireShape);
        graph.Node.Add(node);
        graph.Initializer.AddRange(weights);
        model.MetadataProps.Add(new StringStringEntryProto { Key = TransferKey, Value = $"{label} out: {tensor} -> {wire}" });
        return model;
    }

    private static ModelProto Prepend(
        ModelProto downstream, string tensor, string wire, long[] wireShape, NodeProto[] nodes, IEnumerable<TensorProto> weights, string label)
    {
        var model = downstream.Clone();
        RefuseTaken(model, wire);
        var graph = model.Graph;
        var input = graph.Input.FirstOrDefault(i => i.Name == tensor)
            ?? throw new PipelineInputException($"The downstream stage has no input named '{tensor}'; both stages must meet at the same cut.");
        graph.Input[graph.Input.IndexOf(input)] = ValueInfo(wire, wireShape);
        graph.ValueInfo.Add(input.Clone()); // the cut tensor is now made inside the stage, with the shape it had as an input
        // Their only per-frame input is a graph input (and each other, in order), so the front keeps the nodes sorted.
        for (var i = 0; i < nodes.Length; i++)
        {
            graph.Node.Insert(i, nodes[i]);
        }

        graph.Initializer.AddRange(weights);
        model.MetadataProps.Add(new StringStringEntryProto { Key = TransferKey, Value = $"{label} in: {wire} -> {tensor}" });
        return model;
    }

    private static (NodeProto Node, TensorProto[] Weights) Conv(
        string input, string output, string name, int outChannels, int inChannels, float[] weight, float[] bias)
    {
        var w = new TensorProto { Name = $"{name}.weight", DataType = FloatType, Dims = { outChannels, inChannels, 1, 1 } };
        w.FloatData.AddRange(weight);
        var b = new TensorProto { Name = $"{name}.bias", DataType = FloatType, Dims = { outChannels } };
        b.FloatData.AddRange(bias);
        var node = new NodeProto { Name = name, OpType = "Conv", Input = { input, w.Name, b.Name }, Output = { output } };
        node.Attribute.Add(Ints("kernel_shape", 1, 1));
        node.Attribute.Add(Ints("strides", 1, 1));
        node.Attribute.Add(Ints("pads", 0, 0, 0, 0));
        return (node, [w, b]);
    }

    private static void RefuseTaken(ModelProto model, string name)
    {
        var graph = model.Graph;
        var taken = graph.Node.SelectMany(n => n.Output.Concat(n.Input))
            .Concat(graph.Initializer.Select(i => i.Name))
            .Concat(graph.Input.Select(i => i.Name));
        if (taken.Contains(name, StringComparer.Ordinal))
        {
            throw new PipelineInputException($"The stage already has a tensor named '{name}', so the transfer layer cannot use that name.");
        }
    }

    private static long Opset(ModelProto model) =>
        model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();

    private static void RequireOpset(ModelProto model, int version, string what)
    {
        var opset = Opset(model);
        if (opset < version)
        {
            throw new PipelineInputException($"{what} needs ONNX opset {version} or later; the stage imports opset {opset}.");
        }
    }

    private static ValueInfoProto ValueInfo(string name, long[] shape)
    {
        var tensorShape = new TensorShapeProto();
        tensorShape.Dim.AddRange(shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = FloatType, Shape = tensorShape } },
        };
    }

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private static AttributeProto Str(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };
}
