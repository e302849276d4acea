using Google.Protobuf;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Zoo;

/// <summary>A tensor flowing through a zoo graph under construction, with its static shape.</summary>
internal sealed record ZooTensor(string Name, long[] Shape)
{
    public int Channels => (int)Shape[1];
}

/// <summary>Appends CNN layers to an ONNX graph, creating their seeded weights and tracking shapes.</summary>
/// <remarks>
/// Layer names follow torchvision module paths (e.g. <c>layer3.1.conv2</c>); a layer's output tensor
/// is named <c>{layer}.output</c> and its weights <c>{layer}.weight</c>, so node and tensor names
/// never collide. Shapes are tracked so every intermediate tensor gets a value_info entry.
/// </remarks>
internal sealed class ZooGraphBuilder
{
    private const int FloatType = (int)TensorProto.Types.DataType.Float;
    private const int Int64Type = (int)TensorProto.Types.DataType.Int64;

    private readonly GraphProto _graph;
    private readonly int _seed;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private string? _relu6Min;
    private string? _relu6Max;

    public ZooGraphBuilder(string graphName, int seed)
    {
        _graph = new GraphProto { Name = graphName };
        _seed = seed;
    }

    public ZooTensor Input(string name, params long[] shape)
    {
        var tensor = new ZooTensor(Claim(name), shape);
        _graph.Input.Add(ValueInfo(tensor.Name, FloatType, shape));
        return tensor;
    }

    /// <summary>Makes <paramref name="tensor"/> a graph output under <paramref name="name"/> (e.g. <c>logits</c>).</summary>
    public ZooTensor Output(ZooTensor tensor, string name)
    {
        // A graph output is described by graph.output, so it leaves value_info.
        var intermediate = _graph.ValueInfo.First(v => v.Name == tensor.Name);
        _graph.ValueInfo.Remove(intermediate);
        var renamed = new ZooTensor(Claim(name), tensor.Shape);
        foreach (var node in _graph.Node)
        {
            for (var i = 0; i < node.Output.Count; i++)
            {
                if (node.Output[i] == tensor.Name)
                {
                    node.Output[i] = renamed.Name;
                }
            }

            for (var i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i] == tensor.Name)
                {
                    node.Input[i] = renamed.Name;
                }
            }
        }

        _names.Remove(tensor.Name);
        _graph.Output.Add(ValueInfo(renamed.Name, FloatType, renamed.Shape));
        return renamed;
    }

    /// <summary>Conv with He-normal weights; <paramref name="weightViaIdentity"/> mimics exporters that route a weight through Identity.</summary>
    public ZooTensor Conv(string name, ZooTensor x, int outChannels, int kernel, int stride = 1, int pad = 0, int group = 1,
        bool bias = false, bool weightViaIdentity = false)
    {
        var inPerGroup = x.Channels / group;
        var weight = HeNormal($"{name}.weight", inPerGroup * kernel * kernel, outChannels, inPerGroup, kernel, kernel);
        if (weightViaIdentity)
        {
            weight = Node("Identity", $"{name}.weight_identity", [weight], [], FloatType, [outChannels, inPerGroup, kernel, kernel]).Name;
        }

        var inputs = new List<string> { x.Name, weight };
        if (bias)
        {
            inputs.Add(Initializer($"{name}.bias", 0f, 0.01f, outChannels));
        }

        var attributes = new[]
        {
            Ints("kernel_shape", kernel, kernel),
            Ints("strides", stride, stride),
            Ints("pads", pad, pad, pad, pad),
            Ints("dilations", 1, 1),
            Int("group", group),
        };
        return Node("Conv", name, inputs, attributes, FloatType,
            [x.Shape[0], outChannels, Spatial(x.Shape[2], kernel, stride, pad, false), Spatial(x.Shape[3], kernel, stride, pad, false)]);
    }

    /// <summary>ConvTranspose (PyTorch weight layout [in, out, k, k]) that upsamples by <paramref name="stride"/>.</summary>
    public ZooTensor ConvTranspose(string name, ZooTensor x, int outChannels, int kernel, int stride)
    {
        // Each output pixel sees in_channels * (kernel / stride)^2 inputs, which is the fan-in for He scaling.
        var fanIn = x.Channels * (kernel / stride) * (kernel / stride);
        var weight = HeNormal($"{name}.weight", fanIn, x.Channels, outChannels, kernel, kernel);
        var bias = Initializer($"{name}.bias", 0f, 0.01f, outChannels);
        var attributes = new[] { Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("pads", 0, 0, 0, 0) };
        return Node("ConvTranspose", name, [x.Name, weight, bias], attributes, FloatType,
            [x.Shape[0], outChannels, ((x.Shape[2] - 1) * stride) + kernel, ((x.Shape[3] - 1) * stride) + kernel]);
    }

    /// <summary>Inference BatchNormalization with sane trained-like statistics; <paramref name="gammaScale"/> damps residual branches.</summary>
    public ZooTensor BatchNorm(string name, ZooTensor x, float gammaScale = 1f, float epsilon = 1e-5f)
    {
        var c = x.Channels;
        var scale = Initializer($"{name}.weight", gammaScale, 0.05f * gammaScale, c);
        var bias = Initializer($"{name}.bias", 0f, 0.02f, c);
        var mean = Initializer($"{name}.running_mean", 0f, 0.02f, c);
        var variance = Initializer($"{name}.running_var", 1f, 0.05f, c);
        return Node("BatchNormalization", name, [x.Name, scale, bias, mean, variance], [Float("epsilon", epsilon), Float("momentum", 0.9f)],
            FloatType, x.Shape);
    }

    public ZooTensor Relu(string name, ZooTensor x) => Node("Relu", name, [x.Name], [], FloatType, x.Shape);

    /// <summary>ReLU6 as exported at opset 13: Clip with min and max as float scalar initializers shared by the graph.</summary>
    public ZooTensor Relu6(string name, ZooTensor x)
    {
        _relu6Min ??= ScalarInitializer("relu6.min", 0f);
        _relu6Max ??= ScalarInitializer("relu6.max", 6f);
        return Node("Clip", name, [x.Name, _relu6Min, _relu6Max], [], FloatType, x.Shape);
    }

    public ZooTensor MaxPool(string name, ZooTensor x, int kernel, int stride, int pad = 0, bool ceilMode = false) =>
        Pool("MaxPool", name, x, kernel, stride, pad, ceilMode);

    public ZooTensor AveragePool(string name, ZooTensor x, int kernel, int stride, int pad = 0) =>
        Pool("AveragePool", name, x, kernel, stride, pad, false);

    public ZooTensor GlobalAveragePool(string name, ZooTensor x) =>
        Node("GlobalAveragePool", name, [x.Name], [], FloatType, [x.Shape[0], x.Shape[1], 1, 1]);

    public ZooTensor Flatten(string name, ZooTensor x) =>
        Node("Flatten", name, [x.Name], [Int("axis", 1)], FloatType, [x.Shape[0], x.Shape.Skip(1).Aggregate(1L, (a, b) => a * b)]);

    /// <summary>Flatten the way torch.onnx exports <c>x.view(x.size(0), -1)</c>: Shape, Gather, Unsqueeze, Concat with [-1], Reshape.</summary>
    public ZooTensor TorchViewFlatten(string name, ZooTensor x)
    {
        var shape = Node("Shape", $"{name}.shape", [x.Name], [], Int64Type, [x.Shape.Length]);
        var index = ConstantInt64($"{name}.index", [], 0);
        var batch = Node("Gather", $"{name}.gather", [shape.Name, index.Name], [Int("axis", 0)], Int64Type, []);
        var axes = ConstantInt64($"{name}.axes", [1], 0);
        var batchDim = Node("Unsqueeze", $"{name}.unsqueeze", [batch.Name, axes.Name], [], Int64Type, [1]);
        var rest = ConstantInt64($"{name}.rest", [1], -1);
        var target = Node("Concat", $"{name}.concat", [batchDim.Name, rest.Name], [Int("axis", 0)], Int64Type, [2]);
        return Node("Reshape", name, [x.Name, target.Name], [], FloatType, [x.Shape[0], x.Shape.Skip(1).Aggregate(1L, (a, b) => a * b)]);
    }

    /// <summary>Fully connected layer as PyTorch exports it: Gemm with weight [out, in] and transB = 1.</summary>
    public ZooTensor Gemm(string name, ZooTensor x, int outFeatures, bool weightViaIdentity = false)
    {
        var inFeatures = (int)x.Shape[1];
        var weight = HeNormal($"{name}.weight", inFeatures, outFeatures, inFeatures);
        if (weightViaIdentity)
        {
            weight = Node("Identity", $"{name}.weight_identity", [weight], [], FloatType, [outFeatures, inFeatures]).Name;
        }

        var bias = Initializer($"{name}.bias", 0f, 0.01f, outFeatures);
        var attributes = new[] { Float("alpha", 1f), Float("beta", 1f), Int("transB", 1) };
        return Node("Gemm", name, [x.Name, weight, bias], attributes, FloatType, [x.Shape[0], outFeatures]);
    }

    public ZooTensor Add(string name, ZooTensor a, ZooTensor b) => Node("Add", name, [a.Name, b.Name], [], FloatType, a.Shape);

    public ZooTensor Concat(string name, params ZooTensor[] parts)
    {
        var shape = (long[])parts[0].Shape.Clone();
        shape[1] = parts.Sum(p => p.Shape[1]);
        return Node("Concat", name, parts.Select(p => p.Name), [Int("axis", 1)], FloatType, shape);
    }

    /// <summary>Nearest-neighbour upsampling as torch.onnx exports it at opset 13 (asymmetric, floor, scales input, empty roi).</summary>
    public ZooTensor ResizeNearest(string name, ZooTensor x, int scale)
    {
        var scales = Claim($"{name}.scales");
        var tensor = new TensorProto { Name = scales, DataType = FloatType, Dims = { 4 } };
        tensor.FloatData.AddRange([1f, 1f, scale, scale]);
        _graph.Initializer.Add(tensor);
        var attributes = new[]
        {
            Str("mode", "nearest"),
            Str("coordinate_transformation_mode", "asymmetric"),
            Str("nearest_mode", "floor"),
        };
        return Node("Resize", name, [x.Name, "", scales], attributes, FloatType, [x.Shape[0], x.Shape[1], x.Shape[2] * scale, x.Shape[3] * scale]);
    }

    public GraphProto Graph => _graph;

    private ZooTensor Pool(string opType, string name, ZooTensor x, int kernel, int stride, int pad, bool ceilMode)
    {
        var attributes = new List<AttributeProto>
        {
            Ints("kernel_shape", kernel, kernel),
            Ints("strides", stride, stride),
            Ints("pads", pad, pad, pad, pad),
        };
        if (ceilMode)
        {
            attributes.Add(Int("ceil_mode", 1));
        }

        return Node(opType, name, [x.Name], attributes, FloatType,
            [x.Shape[0], x.Shape[1], Spatial(x.Shape[2], kernel, stride, pad, ceilMode), Spatial(x.Shape[3], kernel, stride, pad, ceilMode)]);
    }

    private static long Spatial(long size, int kernel, int stride, int pad, bool ceilMode)
    {
        var span = size + (2 * pad) - kernel;
        var steps = ceilMode ? (span + stride - 1) / stride : span / stride;
        // As in PyTorch and ONNX Runtime, a ceil-mode window may not start inside the right padding.
        if (ceilMode && steps * stride >= size + pad)
        {
            steps--;
        }

        return steps + 1;
    }

    private ZooTensor Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<AttributeProto> attributes, int elementType,
        long[] shape)
    {
        var output = Claim($"{name}.output");
        var node = new NodeProto { Name = Claim(name), OpType = opType, Output = { output } };
        node.Input.AddRange(inputs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        _graph.ValueInfo.Add(ValueInfo(output, elementType, shape));
        return new ZooTensor(output, shape);
    }

    private ZooTensor ConstantInt64(string name, long[] dims, long value)
    {
        var tensor = new TensorProto { DataType = Int64Type, Int64Data = { value } };
        tensor.Dims.AddRange(dims);
        var attribute = new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = tensor };
        return Node("Constant", name, [], [attribute], Int64Type, dims);
    }

    private string HeNormal(string name, int fanIn, params int[] dims) =>
        Initializer(name, 0f, MathF.Sqrt(2f / fanIn), dims);

    private string Initializer(string name, float mean, float std, params int[] dims)
    {
        var count = dims.Aggregate(1, (a, b) => checked(a * b));
        var bytes = SeededNormal.Fill(_seed, name, count, mean, std);
        if (name.EndsWith(".running_var", StringComparison.Ordinal))
        {
            // A variance must stay positive: reflect samples around the mean instead of clipping them.
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = mean + MathF.Abs(values[i] - mean);
            }
        }

        var tensor = new TensorProto
        {
            Name = Claim(name),
            DataType = FloatType,
            // The buffer is fresh and never written again, so wrapping it saves a copy of up to 400 MB.
            RawData = UnsafeByteOperations.UnsafeWrap(bytes),
        };
        tensor.Dims.AddRange(dims.Select(d => (long)d));
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    private string ScalarInitializer(string name, float value)
    {
        var tensor = new TensorProto { Name = Claim(name), DataType = FloatType, FloatData = { value } };
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    private string Claim(string name)
    {
        if (!_names.Add(name))
        {
            throw new InvalidOperationException($"The zoo graph '{_graph.Name}' already has a node or tensor named '{name}'.");
        }

        return name;
    }

    private static ValueInfoProto ValueInfo(string name, int elementType, long[] shape)
    {
        var tensorShape = new TensorShapeProto();
        tensorShape.Dim.AddRange(shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = tensorShape } },
        };
    }

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static AttributeProto Str(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }
}
