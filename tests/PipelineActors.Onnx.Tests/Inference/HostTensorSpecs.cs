using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Tests.Inference;

/// <summary>The one tensor type: a frame's tensor on the wire and a model's input or output alike.</summary>
public class HostTensorSpecs
{
    private static readonly TensorInfo Features = new("features", TensorProto.Types.DataType.Float, [1, 2, 3]);

    [Fact]
    public void Tensors_are_equal_when_name_type_shape_and_every_byte_agree()
    {
        var tensor = HostTensor.Deterministic(Features, 7);
        var same = new HostTensor(Features.Name, Features.ElementType, [1, 2, 3], [.. tensor.Data]);
        Assert.Equal(tensor, same);
        Assert.Equal(tensor.GetHashCode(), same.GetHashCode());

        var flipped = (byte[])tensor.Data.Clone();
        flipped[^1] ^= 1;
        Assert.NotEqual(tensor, tensor with { Data = flipped });
        Assert.NotEqual(tensor, tensor with { Name = "other" });
        Assert.NotEqual(tensor, tensor with { Shape = [1, 3, 2] });
        Assert.NotEqual(tensor, tensor with { ElementType = TensorProto.Types.DataType.Int32 });
    }

    [Fact]
    public void A_tensor_made_from_its_info_reports_that_info_and_its_values()
    {
        var tensor = new HostTensor(Features, [.. BitConverter.GetBytes(1.5f), .. BitConverter.GetBytes(-2f), .. new byte[16]]);

        Assert.Equal(Features, tensor.Info);
        Assert.Equal("features:float32[1,2,3]", tensor.Info.ToString());
        Assert.Equal([1.5, -2, 0, 0, 0, 0], tensor.ToDoubles());
        Assert.Equal(0, HostTensor.RelativeDifference(tensor, tensor));
        Assert.Equal(double.PositiveInfinity, HostTensor.RelativeDifference(tensor, tensor with { Shape = [6] }));
    }

    [Theory]
    [InlineData(TensorProto.Types.DataType.Float)]
    [InlineData(TensorProto.Types.DataType.Uint8)]
    [InlineData(TensorProto.Types.DataType.Int64)]
    public void A_deterministic_tensor_holds_the_bytes_of_the_runtime_value_made_from_the_same_seed(TensorProto.Types.DataType type)
    {
        var info = new TensorInfo("x", type, [2, 3, 5]);
        using var value = OrtTensors.Deterministic(info, 3);

        var tensor = HostTensor.Deterministic(info, 3);

        Assert.Equal(OrtTensors.ToBytes(value), tensor.Data);
        Assert.Equal(info.Bytes, tensor.Data.Length);
        if (type == TensorProto.Types.DataType.Int64)
        {
            Assert.All(tensor.Data, b => Assert.Equal(0, b)); // ids and masks: zeros are valid for every model
        }
        else
        {
            Assert.NotEqual(tensor, HostTensor.Deterministic(info, 4));
        }
    }
}
