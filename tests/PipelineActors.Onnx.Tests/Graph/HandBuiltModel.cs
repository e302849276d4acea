using Google.Protobuf;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Tests.Graph;

/// <summary>
/// Builds small opset-13 ONNX models node by node for tests. Weights are random with no zeros
/// (magnitude at least 0.2 of the scale), so a change in any input reaches every output it can.
/// </summary>
public sealed class HandBuiltModel
{
    private const int FloatType = (int)TensorProto.Types.DataType.Float;
    private readonly GraphProto _graph = new() { Name = "hand_built" };
    private readonly Random _random;
    private int _next;

    public HandBuiltModel(string input, long[] shape, int seed = 5)
    {
        _random = new Random(seed);
        Input = input;
        _graph.Input.Add(ValueInfo(input, shape));
    }

    public string Input { get; }

    public string Conv(string x, int inChannels, int outChannels, int kernel, int stride = 1, int pad = 0, int dilation = 1, int group = 1, string? autoPad = null)
    {
        var weight = Weight(outChannels, inChannels / group, kernel, kernel);
        var bias = Weight(outChannels);
        var attributes = new List<AttributeProto> { Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("dilations", dilation, dilation), Scalar("group", group) };
        attributes.Add(autoPad is null ? Ints("pads", pad, pad, pad, pad) : Str("auto_pad", autoPad));
        return Node("Conv", [x, weight, bias], attributes);
    }

    public string ConvTranspose(string x, int inChannels, int outChannels, int kernel, int stride, int pad)
    {
        var weight = Weight(inChannels, outChannels, kernel, kernel);
        return Node("ConvTranspose", [x, weight], [Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("pads", pad, pad, pad, pad)]);
    }

    public string Pool(string op, string x, int kernel, int stride, int pad = 0, bool ceilMode = false) =>
        Node(op, [x], [Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("pads", pad, pad, pad, pad), Scalar("ceil_mode", ceilMode ? 1 : 0)]);

    public string Resize(string x, float scale, string mode, string coordinates, string? nearestMode = null)
    {
        var scales = Initializer([4], [1f, 1f, scale, scale]);
        var attributes = new List<AttributeProto> { Str("mode", mode), Str("coordinate_transformation_mode", coordinates) };
        if (nearestMode is not null)
        {
            attributes.Add(Str("nearest_mode", nearestMode));
        }

        return Node("Resize", [x, "", scales], attributes);
    }

    public string Transpose(string x, params long[] perm) => Node("Transpose", [x], [Ints("perm", perm)]);

    public string Unary(string op, string x) => Node(op, [x], []);

    public string Binary(string op, string a, string b) => Node(op, [a, b], []);

    public string Node(string op, IEnumerable<string> inputs, IEnumerable<AttributeProto> attributes)
    {
        var output = $"t{_next++}_{op.ToLowerInvariant()}";
        var node = new NodeProto { OpType = op, Name = output + "_node" };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return output;
    }

    /// <summary>A weight with values of either sign and magnitude in [0.2, 1] times 1/sqrt(fan-in).</summary>
    public string Weight(params long[] dims)
    {
        var count = dims.Aggregate(1L, (a, d) => a * d);
        var fanIn = dims.Length > 1 ? dims.Skip(1).Aggregate(1L, (a, d) => a * d) : 1;
        var scale = 1f / MathF.Sqrt(fanIn);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            var magnitude = 0.2f + (0.8f * _random.NextSingle());
            values[i] = (_random.Next(2) == 0 ? -1 : 1) * magnitude * scale;
        }

        return Initializer(dims, values);
    }

    public string Initializer(long[] dims, float[] values)
    {
        var name = $"w{_next++}";
        var tensor = new TensorProto { Name = name, DataType = FloatType };
        tensor.Dims.AddRange(dims);
        tensor.FloatData.AddRange(values);
        _graph.Initializer.Add(tensor);
        return name;
    }

    public string Int64Initializer(params long[] values)
    {
        var name = $"w{_next++}";
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64, Dims = { values.Length } };
        tensor.Int64Data.AddRange(values);
        _graph.Initializer.Add(tensor);
        return name;
    }

    /// <summary>The model with the given tensors as its outputs.</summary>
    public ModelProto Build(params string[] outputs)
    {
        var graph = _graph.Clone();
        graph.Output.AddRange(outputs.Select(o => new ValueInfoProto { Name = o, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = FloatType } } }));
        var model = new ModelProto { IrVersion = 8, ProducerName = "hand-built", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model;
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    public static AttributeProto Scalar(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Str(string name, string value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    private static ValueInfoProto ValueInfo(string name, long[] shape)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = FloatType, Shape = new TensorShapeProto() };
        tensorType.Shape.Dim.AddRange(shape.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }
}
