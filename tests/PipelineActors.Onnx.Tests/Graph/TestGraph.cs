using Google.Protobuf;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Tests.Graph;

/// <summary>A terse way to write small ONNX graphs by hand for tests of what real exports contain.</summary>
internal sealed class TestGraph
{
    private readonly Random _random = new(7);

    public ModelProto Model { get; } = new()
    {
        IrVersion = 8,
        ProducerName = "test",
        Graph = new GraphProto { Name = "test" },
    };

    public GraphProto Graph => Model.Graph;

    public TestGraph(int opset = 13)
    {
        Model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = opset });
    }

    public TestGraph Input(string name, TensorProto.Types.DataType type, params long[] shape)
    {
        Graph.Input.Add(ValueInfo(name, type, shape));
        return this;
    }

    public TestGraph Output(string name, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float)
    {
        Graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } } });
        return this;
    }

    public NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = outputs.Length > 0 ? outputs[0] + "_node" : op };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return node;
    }

    /// <summary>A float initializer of the given shape with random values.</summary>
    public string Weight(string name, params long[] shape)
    {
        Graph.Initializer.Add(FloatTensor(name, shape));
        return name;
    }

    public TensorProto FloatTensor(string name, long[] shape, float scale = 0.3f)
    {
        var count = shape.Aggregate(1L, (a, d) => a * d);
        var values = new float[count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ((float)_random.NextDouble() - 0.5f) * 2 * scale;
        }

        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(shape);
        tensor.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return tensor;
    }

    public static TensorProto Int64Tensor(string name, long[] values, params long[] shape)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.AddRange(shape);
        tensor.Int64Data.AddRange(values);
        return tensor;
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Tensor(string name, TensorProto value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };

    public static AttributeProto Graph_(string name, GraphProto value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = value };

    /// <summary>Conv 3x3, stride 1, pad 1 with random weights.</summary>
    public string Conv(string x, string y, int inChannels, int outChannels)
    {
        Node("Conv", [x, Weight(y + ".w", outChannels, inChannels, 3, 3), Weight(y + ".b", outChannels)], [y], Ints("pads", 1, 1, 1, 1));
        return y;
    }

    public static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, params long[] shape)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = new TensorShapeProto() };
        tensor.Shape.Dim.AddRange(shape.Select(d => d > 0 ? new TensorShapeProto.Types.Dimension { DimValue = d } : new TensorShapeProto.Types.Dimension { DimParam = "N" }));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }
}
