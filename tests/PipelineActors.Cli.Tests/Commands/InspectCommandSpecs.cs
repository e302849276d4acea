using System.Text.Json;
using Google.Protobuf;
using PipelineActors.Onnx.Proto;
using PipelineActors.TestSupport;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary><c>pipeline inspect</c>: the table for people and the JSON for scripts.</summary>
public sealed class InspectCommandSpecs(TinyNetFile tinynet) : IClassFixture<TinyNetFile>
{
    [Fact]
    public void Json_lists_every_cut_with_the_bytes_its_tensors_take()
    {
        var result = Cli.Run("inspect", tinynet.Path, "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        var nodes = root.GetProperty("nodes").GetInt32();
        Assert.Equal(16, nodes);
        Assert.Equal("random (seeded, not trained)", root.GetProperty("weights").GetString());
        var cuts = root.GetProperty("cuts").EnumerateArray().ToList();
        Assert.Equal(Enumerable.Range(1, nodes - 1), cuts.Select(c => c.GetProperty("position").GetInt32()));
        foreach (var cut in cuts)
        {
            var tensors = cut.GetProperty("tensors").EnumerateArray().ToList();
            Assert.NotEmpty(tensors);
            foreach (var tensor in tensors)
            {
                Assert.Equal("float32", tensor.GetProperty("dtype").GetString());
                var elements = tensor.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
                Assert.Equal(elements * 4, tensor.GetProperty("bytes").GetInt64());
            }

            Assert.Equal(tensors.Sum(t => t.GetProperty("bytes").GetInt64()), cut.GetProperty("bytes").GetInt64());
        }
    }

    [Fact]
    public void Json_single_tensor_lists_only_cuts_that_carry_one_tensor()
    {
        var result = Cli.Run("inspect", tinynet.Path, "--json", "--single-tensor");

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var cuts = json.RootElement.GetProperty("cuts").EnumerateArray().ToList();
        Assert.InRange(cuts.Count, 1, 14);
        Assert.All(cuts, c => Assert.Single(c.GetProperty("tensors").EnumerateArray()));
    }

    [Fact]
    public void A_per_frame_scalar_broadcast_into_a_feature_map_means_all_rows()
    {
        // As in dynamically quantized exports (isnet int8): a scale computed from the whole
        // frame, combined with another scalar, then multiplied into the feature map. The
        // receptive-field walk used to index the row axis of the scalar and crash.
        using var temp = new TempFolder();
        var path = temp["scaled.onnx"];
        File.WriteAllBytes(path, ScalarScaledModel().ToByteArray());

        var result = Cli.Run("inspect", path, "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var cut = json.RootElement.GetProperty("cuts").EnumerateArray().Single(c => c.GetProperty("afterNode").GetString() == "scale");
        Assert.Equal(JsonValueKind.Null, cut.GetProperty("inputRowsPerRow").ValueKind);
        var relu = json.RootElement.GetProperty("cuts").EnumerateArray().Single(c => c.GetProperty("afterNode").GetString() == "relu");
        Assert.Equal(JsonValueKind.Null, relu.GetProperty("inputRowsPerRow").ValueKind);
    }

    [Fact]
    public void A_zoo_model_is_said_to_have_random_weights()
    {
        var result = Cli.Run("inspect", tinynet.Path);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("weights: random (seeded, not trained)", result.Output, StringComparison.Ordinal);
        Assert.Contains("15 cuts listed", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_real_model_is_not_said_to_have_random_weights()
    {
        var result = Cli.Run("inspect", RepositoryFiles.Model("paddleocr-text-det.onnx"), "--input", "x=1,3,160,160");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.DoesNotContain("random", result.Output, StringComparison.Ordinal);
        Assert.Contains("[1,3,160,160]", result.Output, StringComparison.Ordinal);
    }

    private static ModelProto ScalarScaledModel()
    {
        static ValueInfoProto Tensor(string name, params long[] dims)
        {
            var shape = new TensorShapeProto();
            shape.Dim.AddRange(dims.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
            return new ValueInfoProto { Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float,
                    Shape = shape } } };
        }

        static NodeProto Node(string op, string name, string[] inputs, string output)
        {
            var node = new NodeProto { OpType = op, Name = name };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            return node;
        }

        var max = Node("ReduceMax", "max", ["x"], "m");
        max.Attribute.Add(new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        var graph = new GraphProto { Name = "scaled" };
        graph.Input.Add(Tensor("x", 1, 2, 8, 8));
        graph.Output.Add(Tensor("z", 1, 2, 8, 8));
        graph.Node.Add(Node("Relu", "relu", ["x"], "r"));
        graph.Node.Add(max);
        graph.Node.Add(Node("Mul", "square", ["m", "m"], "s"));
        graph.Node.Add(Node("Mul", "scale", ["r", "s"], "y"));
        graph.Node.Add(Node("Relu", "out", ["y"], "z"));
        var model = new ModelProto { IrVersion = 8, ProducerName = "test", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model;
    }
}
