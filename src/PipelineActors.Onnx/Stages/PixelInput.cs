using Google.Protobuf;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Stages;

/// <summary>
/// How the first stage turns uint8 pixels into the model's input: value = pixel * Scale[c] + Offset[c]
/// per channel (channel axis 1 for NCHW, 3 for NHWC). The default is pixel / 255, which is what the
/// synthetic source's float frames hold; a model profile gives (pixel * scale - mean) / std.
/// </summary>
public sealed record PixelNormalisation(float[] Scale, float[] Offset, int ChannelAxis)
{
    public static PixelNormalisation Default(TensorInfo input) =>
        new([1f / 255f], [0f], input.Shape.Length == 4 && input.Shape[1] is not (1 or 3 or 4) ? 3 : 1);
}

/// <summary>
/// Lets the ingest send camera pixels as uint8 (4x fewer bytes than float32 on the first link):
/// the first stage's image input becomes uint8 and the stage normalises it itself. Applied only to
/// float32 inputs of rank 4 (NCHW or NHWC images) that the first stage consumes and does not pass on.
/// </summary>
public static class PixelInput
{
    public static bool Applies(TensorInfo input, StageSpecView stage0) =>
        input.ElementType == TensorProto.Types.DataType.Float && input.Shape.Length == 4
        && (input.Shape[1] is 1 or 3 or 4 || input.Shape[3] is 1 or 3 or 4)
        && stage0.Inputs.Contains(input.Name) && !stage0.Forwarded.Contains(input.Name) && !stage0.Outputs.Contains(input.Name);

    /// <summary>Rewrites a stage model so that <paramref name="input"/> arrives as uint8 and is normalised inside.</summary>
    public static ModelProto Adapt(ModelProto stage, string input, PixelNormalisation? normalisation = null)
    {
        normalisation ??= new PixelNormalisation([1f / 255f], [0f], 1);
        var model = stage.Clone();
        var graph = model.Graph;
        var floatName = input + "::float";
        var castName = input + "::cast";
        var scaledName = input + "::scaled";
        var scaleName = input + "::scale";
        var offsetName = input + "::offset";
        foreach (var node in graph.Node)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i] == input)
                {
                    node.Input[i] = floatName;
                }
            }
        }

        graph.Initializer.Add(PerChannel(scaleName, normalisation.Scale, normalisation.ChannelAxis));
        graph.Initializer.Add(PerChannel(offsetName, normalisation.Offset, normalisation.ChannelAxis));
        var cast = new NodeProto { OpType = "Cast", Name = castName, Input = { input }, Output = { castName } };
        cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int,
            I = (long)TensorProto.Types.DataType.Float });
        var mul = new NodeProto { OpType = "Mul", Name = scaleName, Input = { castName, scaleName }, Output = { scaledName } };
        var add = new NodeProto { OpType = "Add", Name = offsetName, Input = { scaledName, offsetName }, Output = { floatName } };
        graph.Node.Insert(0, add);
        graph.Node.Insert(0, mul);
        graph.Node.Insert(0, cast);
        var declared = graph.Input.First(i => i.Name == input);
        declared.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Uint8;
        if (model.IrVersion < 4)
        {
            foreach (var name in new[] { scaleName, offsetName })
            {
                var init = graph.Initializer.First(i => i.Name == name);
                var shape = new TensorShapeProto();
                shape.Dim.AddRange(init.Dims.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
                graph.Input.Add(new ValueInfoProto { Name = name,
                    Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } });
            }
        }

        return model;
    }

    /// <summary>A constant that broadcasts one value per channel along the given axis of a rank-4 tensor.</summary>
    private static TensorProto PerChannel(string name, float[] values, int channelAxis)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        var dims = new long[] { 1, 1, 1, 1 };
        dims[channelAxis] = values.Length;
        tensor.Dims.AddRange(values.Length == 1 ? [] : dims);
        tensor.FloatData.AddRange(values);
        return tensor;
    }
}

/// <summary>The names a stage reads, writes and forwards.</summary>
public sealed record StageSpecView(IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyList<string> Forwarded);
