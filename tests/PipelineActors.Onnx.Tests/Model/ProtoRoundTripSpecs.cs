using Google.Protobuf;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Tests.Model;

public class ProtoRoundTripSpecs
{
    [Fact]
    public void A_model_written_and_read_back_keeps_its_fields()
    {
        var model = new ModelProto { IrVersion = 8, ProducerName = "test", Graph = new GraphProto { Name = "g" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.Graph.Node.Add(new NodeProto { OpType = "Relu", Input = { "x" }, Output = { "y" } });
        var back = ModelProto.Parser.ParseFrom(model.ToByteArray());
        Assert.Equal(model, back);
        Assert.Equal("Relu", back.Graph.Node[0].OpType);
    }
}
