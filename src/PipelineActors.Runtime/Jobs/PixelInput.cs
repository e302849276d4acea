using Google.Protobuf;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Runtime.Jobs;

/// <summary>
/// Lets the ingest send camera pixels as uint8 (4x fewer bytes than float32 on the first link):
/// the first stage's image input becomes uint8 and the stage converts it itself, x / 255, which
/// is what the synthetic source's float frames hold. Applied only to float32 inputs of rank 4
/// (NCHW or NHWC images) that the first stage consumes and does not pass on.
/// </summary>
public static class PixelInput
{
    public static bool Applies(TensorInfo input, StageSpecView stage0) =>
        input.ElementType == TensorProto.Types.DataType.Float && input.Shape.Length == 4
        && (input.Shape[1] is 1 or 3 or 4 || input.Shape[3] is 1 or 3 or 4)
        && stage0.Inputs.Contains(input.Name) && !stage0.Forwarded.Contains(input.Name) && !stage0.Outputs.Contains(input.Name);

    /// <summary>Rewrites a stage model so that <paramref name="input"/> arrives as uint8 and is converted to float / 255 inside.</summary>
    public static ModelProto Adapt(ModelProto stage, string input)
    {
        var model = stage.Clone();
        var graph = model.Graph;
        var floatName = input + "::float";
        var castName = input + "::cast";
        var scaleName = input + "::scale";
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

        var scale = new TensorProto { Name = scaleName, DataType = (int)TensorProto.Types.DataType.Float };
        scale.FloatData.Add(1f / 255f);
        graph.Initializer.Add(scale);
        var cast = new NodeProto { OpType = "Cast", Name = castName, Input = { input }, Output = { castName } };
        cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float });
        var mul = new NodeProto { OpType = "Mul", Name = scaleName, Input = { castName, scaleName }, Output = { floatName } };
        graph.Node.Insert(0, mul);
        graph.Node.Insert(0, cast);
        var declared = graph.Input.First(i => i.Name == input);
        declared.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Uint8;
        if (model.IrVersion < 4)
        {
            graph.Input.Add(new ValueInfoProto { Name = scaleName, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = new TensorShapeProto() } } });
        }

        return model;
    }
}

/// <summary>The names a stage reads, writes and forwards.</summary>
public sealed record StageSpecView(IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyList<string> Forwarded);
