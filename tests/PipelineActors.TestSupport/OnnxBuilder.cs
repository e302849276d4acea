using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx.Proto;
using static PipelineActors.Onnx.Proto.TensorProto.Types;

namespace PipelineActors.TestSupport;

/// <summary>
/// Writes small ONNX models by hand for tests: inputs, initializers, nodes with attributes, outputs and value infos.
/// Nodes either name their outputs (<see cref="Node"/>) or get a fresh name (<see cref="Op"/>). Random weights have
/// either sign and no zeros (magnitude at least a fifth of the scale), so a change in any input reaches every output.
/// </summary>
public sealed class OnnxBuilder
{
    private readonly Random _random;
    private int _next;

    public OnnxBuilder(int opset = 13, int seed = 7, string name = "test")
    {
        _random = new Random(seed);
        Model = new ModelProto { IrVersion = 8, ProducerName = "test", Graph = new GraphProto { Name = name } };
        Model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = opset });
    }

    public ModelProto Model { get; }

    public GraphProto Graph => Model.Graph;

    /// <summary>A graph input; a dimension of 0 or less is symbolic ("N").</summary>
    public OnnxBuilder Input(string name, DataType type, params long[] shape)
    {
        Graph.Input.Add(ValueInfo(name, type, shape));
        return this;
    }

    /// <summary>A graph output; without a shape only its element type is declared.</summary>
    public OnnxBuilder Output(string name, DataType type = DataType.Float, long[]? shape = null)
    {
        Graph.Output.Add(shape is null ? TypeOnly(name, type) : ValueInfo(name, type, shape));
        return this;
    }

    /// <summary>The shape of an intermediate tensor, as exporters write it.</summary>
    public OnnxBuilder Value(string name, DataType type, params long[] shape)
    {
        Graph.ValueInfo.Add(ValueInfo(name, type, shape));
        return this;
    }

    /// <summary>A node whose outputs are named by the caller.</summary>
    public NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = outputs.Length > 0 ? outputs[0] + "_node" : op };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return node;
    }

    /// <summary>A one-output node; returns the fresh name of its output.</summary>
    public string Op(string op, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var output = $"t{_next++}_{op.ToLowerInvariant()}";
        Node(op, inputs.ToArray(), [output], attributes);
        return output;
    }

    public string Unary(string op, string x) => Op(op, [x]);

    public string Binary(string op, string a, string b) => Op(op, [a, b]);

    public string Conv(
        string x,
        int inChannels,
        int outChannels,
        int kernel,
        int stride = 1,
        int pad = 0,
        int dilation = 1,
        int group = 1,
        string? autoPad = null,
        string? output = null)
    {
        var weight = Weight(outChannels, inChannels / group, kernel, kernel);
        var bias = Weight(outChannels);
        var attributes = new List<AttributeProto>
        {
            Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("dilations", dilation, dilation), Scalar("group", group),
        };
        attributes.Add(autoPad is null ? Ints("pads", pad, pad, pad, pad) : Str("auto_pad", autoPad));
        if (output is null)
        {
            return Op("Conv", [x, weight, bias], attributes.ToArray());
        }

        Node("Conv", [x, weight, bias], [output], attributes.ToArray());
        return output;
    }

    public string ConvTranspose(string x, int inChannels, int outChannels, int kernel, int stride, int pad)
    {
        var weight = Weight(inChannels, outChannels, kernel, kernel);
        return Op("ConvTranspose", [x, weight], Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Pads(pad));
    }

    public string Pool(string op, string x, int kernel, int stride, int pad = 0, bool ceilMode = false) =>
        Op(op, [x], Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Pads(pad), Scalar("ceil_mode", ceilMode ? 1 : 0));

    public string Resize(string x, float scale, string mode, string coordinates, string? nearestMode = null)
    {
        var scales = Floats([4], [1f, 1f, scale, scale]);
        var attributes = new List<AttributeProto> { Str("mode", mode), Str("coordinate_transformation_mode", coordinates) };
        if (nearestMode is not null)
        {
            attributes.Add(Str("nearest_mode", nearestMode));
        }

        return Op("Resize", [x, "", scales], attributes.ToArray());
    }

    public string Transpose(string x, params long[] perm) => Op("Transpose", [x], Ints("perm", perm));

    /// <summary>A float weight of either sign, magnitude in [0.2, 1] times 1/sqrt(fan-in); named when <paramref name="name"/> is given.</summary>
    public string Weight(long[] dims, string? name = null)
    {
        var fanIn = dims.Length > 1 ? dims.Skip(1).Aggregate(1L, (a, d) => a * d) : 1;
        Graph.Initializer.Add(RandomTensor(name ?? $"w{_next++}", dims, 1f / MathF.Sqrt(fanIn)));
        return Graph.Initializer[^1].Name;
    }

    public string Weight(params long[] dims) => Weight(dims, null);

    /// <summary>A float tensor of random values of either sign with magnitude in [0.2, 1] times <paramref name="scale"/> (0 gives zeros).</summary>
    public TensorProto RandomTensor(string name, long[] dims, float scale = 0.3f)
    {
        var count = dims.Aggregate(1L, (a, d) => a * d);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            var magnitude = 0.2f + (0.8f * _random.NextSingle());
            values[i] = (_random.Next(2) == 0 ? -1 : 1) * magnitude * scale;
        }

        return FloatTensor(name, dims, values);
    }

    /// <summary>A float initializer with the given values; returns its fresh name.</summary>
    public string Floats(long[] dims, float[] values)
    {
        Graph.Initializer.Add(FloatTensor($"w{_next++}", dims, values));
        return Graph.Initializer[^1].Name;
    }

    /// <summary>A one-dimensional int64 initializer; returns its fresh name.</summary>
    public string Int64s(params long[] values)
    {
        Graph.Initializer.Add(Int64Tensor($"w{_next++}", values, values.Length));
        return Graph.Initializer[^1].Name;
    }

    /// <summary>An int64 scalar initializer (shape []); returns its fresh name.</summary>
    public string Int64Scalar(long value)
    {
        Graph.Initializer.Add(Int64Tensor($"w{_next++}", [value]));
        return Graph.Initializer[^1].Name;
    }

    /// <summary>A float scalar initializer (shape []); returns its fresh name.</summary>
    public string FloatScalar(float value) => Floats([], [value]);

    /// <summary>The model with <paramref name="outputs"/> added as float outputs; the builder itself is left as it was.</summary>
    public ModelProto Build(params string[] outputs)
    {
        var model = Model.Clone();
        model.Graph.Output.AddRange(outputs.Select(o => TypeOnly(o, DataType.Float)));
        return model;
    }

    public static TensorProto FloatTensor(string name, long[] dims, float[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Float };
        tensor.Dims.AddRange(dims);
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return tensor;
    }

    public static TensorProto Int64Tensor(string name, long[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        tensor.Dims.AddRange(dims);
        tensor.Int64Data.AddRange(values);
        return tensor;
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>The same padding on both sides of height and width.</summary>
    public static AttributeProto Pads(long pad) => Ints("pads", pad, pad, pad, pad);

    public static AttributeProto Scalar(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Real(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Str(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Tensor(string name, TensorProto value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };

    public static AttributeProto Subgraph(string name, GraphProto value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = value };

    /// <summary>A tensor value info; a dimension of 0 or less is symbolic ("N").</summary>
    public static ValueInfoProto ValueInfo(string name, DataType type, params long[] shape)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = new TensorShapeProto() };
        tensor.Shape.Dim.AddRange(shape.Select(d => d > 0
            ? new TensorShapeProto.Types.Dimension { DimValue = d }
            : new TensorShapeProto.Types.Dimension { DimParam = "N" }));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    private static ValueInfoProto TypeOnly(string name, DataType type) =>
        new() { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } } };
}
