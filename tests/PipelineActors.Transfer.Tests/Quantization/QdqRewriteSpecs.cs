using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.TestSupport;
using PipelineActors.Transfer.Quantization;
using Xunit.Abstractions;

namespace PipelineActors.Transfer.Tests.Quantization;

/// <summary>The QDQ int8 rewrite on models made on the spot, run in ONNX Runtime's CPU provider.</summary>
public sealed class QdqRewriteSpecs(ITestOutputHelper output)
{
    [Fact]
    public void A_generated_conv_and_gemm_model_quantised_loads_runs_on_int8_kernels_and_agrees_with_float_within_two_percent()
    {
        var model = QdqFixtures.ConvGemm();
        var calibration = Enumerable.Range(1, 8).Select(s => QdqFixtures.Smooth("x", [1, 3, 16, 16], s)).ToList();
        var quantized = ModelQuantizer.Quantize(model, calibration, "conv-gemm");

        Assert.Equal(3, quantized.QuantizedNodes);
        var graph = quantized.Model.Graph;
        Assert.Equal(["x"], graph.Input.Select(i => i.Name));
        Assert.Equal(["y"], graph.Output.Select(o => o.Name));
        Assert.DoesNotContain(graph.Initializer, t => t.Name is "w1" or "w2" or "w3"); // float weights replaced, not kept beside
        Assert.All(graph.Initializer.Where(t => t.Name.EndsWith(".int8", StringComparison.Ordinal)),
            t => Assert.Equal((int)TensorProto.Types.DataType.Int8, t.DataType));
        Assert.Equal(3, graph.Node.Count(n => n.OpType == "DequantizeLinear" && n.Input[0].EndsWith(".int8", StringComparison.Ordinal)));
        Assert.Equal(13, quantized.Model.OpsetImport.Single(o => o.Domain == "").Version);

        var kernels = ModelQuantizer.OptimizedOpTypes(quantized.Model.ToByteArray());
        output.WriteLine($"after ORT's extended optimisations: {string.Join(", ", kernels.Select(k => $"{k.Key} x {k.Value}"))}");
        Assert.Equal(2, kernels.GetValueOrDefault("QLinearConv"));
        Assert.False(kernels.ContainsKey("Conv"), "every Conv runs as QLinearConv");

        using var fp32 = new OrtSession(model.ToByteArray());
        using var int8 = new OrtSession(quantized.Model.ToByteArray(), optimize: true);
        var worst = Enumerable.Range(100, 6).Select(s => QdqFixtures.Smooth("x", [1, 3, 16, 16], s))
            .Max(frame => QdqFixtures.RelativeL2(fp32.Run(frame), int8.Run(frame), ["y"]));
        output.WriteLine($"worst relative L2 of y over 6 unseen inputs: {worst:E3}");
        Assert.InRange(worst, 1e-6, 0.02); // not exact (it is int8), but close
    }

    [Fact]
    public void Weights_get_one_symmetric_scale_per_output_channel_worked_by_hand()
    {
        // Conv weight [2,1,1,2]: channel 0 is {1.0, 0.1}, channel 1 is {-2.0, 0.5}.
        var (codes, scales) = QdqRewrite.QuantizePerChannel([1.0f, 0.1f, -2.0f, 0.5f], [2, 1, 1, 2], 0);
        Assert.Equal([1f / 127, 2f / 127], scales);
        Assert.Equal([127, 13, -127, 32], codes.Select(c => (int)c)); // 0.1 * 127 = 12.7; 0.5 * 63.5 = 31.75

        // MatMul weight [K=2, N=3]: channels are columns (axis 1).
        var (matCodes, matScales) = QdqRewrite.QuantizePerChannel([0.5f, -1f, 0f, 0.3f, 4f, 0f], [2, 3], 1);
        Assert.Equal([0.5f / 127, 4f / 127, 1f], matScales); // an all-zero column gets scale 1
        Assert.Equal([127, -32, 0, 76, 127, 0], matCodes.Select(c => (int)c)); // -1 / (4/127) = -31.75; 0.3 / (0.5/127) = 76.2

        // In the rewritten model: the same scales, zero points 0, DequantizeLinear on axis 0, bias as int32 at input x weight scale.
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "tiny" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.Graph.Input.Add(OnnxBuilder.ValueInfo("x", TensorProto.Types.DataType.Float, 1, 1, 1, 2));
        model.Graph.Output.Add(OnnxBuilder.ValueInfo("y", TensorProto.Types.DataType.Float, 1, 2, 1, 1));
        QdqFixtures.Add(model.Graph, QdqFixtures.Floats("w", [2, 1, 1, 2], [1.0f, 0.1f, -2.0f, 0.5f]), QdqFixtures.Floats("b", [2], [0.3f, -0.2f]));
        var conv = new NodeProto { Name = "conv", OpType = "Conv", Input = { "x", "w", "b" }, Output = { "y" } };
        conv.Attribute.Add(OnnxBuilder.Ints("kernel_shape", 1, 2));
        model.Graph.Node.Add(conv);
        var targets = QdqRewrite.Targets(model, "tiny");
        var input = ActivationScale.For(-1, 1.55); // scale 0.01, zero point 100
        Assert.Equal(0.01f, input.Scale, 1e-7f);
        Assert.Equal(100, input.ZeroPoint);
        var rewritten = QdqRewrite.Rewrite(model, targets, new Dictionary<string, ActivationScale> { ["x"] = input }, "test").Graph;

        Assert.Equal([1f / 127, 2f / 127], rewritten.Initializer.Single(t => t.Name == "w.scale").FloatData);
        Assert.Equal(new byte[2], rewritten.Initializer.Single(t => t.Name == "w.zero_point").RawData.ToByteArray());
        Assert.Equal([127, 13, -127, 32], rewritten.Initializer.Single(t => t.Name == "w.int8").RawData.ToByteArray().Select(b => (int)(sbyte)b));
        var dequantize = rewritten.Node.Single(n => n.OpType == "DequantizeLinear" && n.Input[0] == "w.int8");
        Assert.Equal(0, dequantize.Attribute.Single(a => a.Name == "axis").I);
        // 0.3 / (0.01 / 127) = 3810; -0.2 / (0.01 * 2 / 127) = -1270
        Assert.Equal([3810, -1270], rewritten.Initializer.Single(t => t.Name == "conv.bias.int32").Int32Data);
        Assert.Equal(["x.dequantized", "w.dequantized", "conv.bias.dequantized"], rewritten.Node.Single(n => n.OpType == "Conv").Input);
        Assert.DoesNotContain(rewritten.Node, n => n.Input.Contains("y")); // a graph output is not quantised

        using var runner = new OrtSession(new ModelProto(model) { Graph = rewritten }.ToByteArray());
        var x = new float[] { 0.5f, -0.25f };
        var y = MemoryMarshal.Cast<byte, float>(runner.Run(new Dictionary<string, HostTensor>
        {
            ["x"] = new(new("x", TensorProto.Types.DataType.Float, [1, 1, 1, 2]), MemoryMarshal.AsBytes(x.AsSpan()).ToArray()),
        })["y"].Data).ToArray();
        // By hand from the codes: x codes 150, 75 -> 0.5, -0.25; channel 0: 127/127*0.5 + 13/127*-0.25 + 0.3
        Assert.Equal((0.5 - (13.0 / 127 * 0.25)) + 0.3, y[0], 1e-5);
        Assert.Equal((-2.0 * 0.5) + (32.0 * 2 / 127 * -0.25) - 0.2, y[1], 1e-5);
    }

    [Fact]
    public void A_model_with_no_conv_matmul_or_gemm_is_refused_in_one_sentence()
    {
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "relu" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.Graph.Input.Add(OnnxBuilder.ValueInfo("x", TensorProto.Types.DataType.Float, 1, 4));
        model.Graph.Output.Add(OnnxBuilder.ValueInfo("y", TensorProto.Types.DataType.Float, 1, 4));
        model.Graph.Node.Add(new NodeProto { OpType = "Relu", Input = { "x" }, Output = { "y" } });

        var error = Assert.Throws<PipelineInputException>(() => ModelQuantizer.Quantize(model, [], "relu.onnx"));
        Assert.Equal("'relu.onnx' has no Conv, MatMul or Gemm with a constant weight, so there is nothing to quantise to int8.", error.Message);
    }

    [Fact]
    public void An_opset_9_model_with_attribute_clip_slice_and_softmax_is_raised_to_13_and_computes_the_same()
    {
        var random = new Random(4);
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "old" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 9 });
        var graph = model.Graph;
        graph.Input.Add(OnnxBuilder.ValueInfo("x", TensorProto.Types.DataType.Float, 1, 3, 8, 8));
        graph.Output.Add(OnnxBuilder.ValueInfo("y", TensorProto.Types.DataType.Float, 1, 4));
        QdqFixtures.Add(graph, QdqFixtures.Tensor("w", [4, 3, 3, 3], random), QdqFixtures.Tensor("m", [4, 4], random));
        graph.Node.Add(QdqFixtures.Conv("x", "w", null, "c", 1));
        var clip = new NodeProto { Name = "clip", OpType = "Clip", Input = { "c" }, Output = { "k" } };
        clip.Attribute.Add(new AttributeProto { Name = "min", Type = AttributeProto.Types.AttributeType.Float, F = 0 });
        clip.Attribute.Add(new AttributeProto { Name = "max", Type = AttributeProto.Types.AttributeType.Float, F = 0.5f });
        graph.Node.Add(clip);
        var slice = new NodeProto { Name = "slice", OpType = "Slice", Input = { "k" }, Output = { "s" } };
        slice.Attribute.Add(OnnxBuilder.Ints("starts", 1, 2));
        slice.Attribute.Add(OnnxBuilder.Ints("ends", 7, long.MaxValue));
        slice.Attribute.Add(OnnxBuilder.Ints("axes", 2, 3));
        graph.Node.Add(slice);
        graph.Node.Add(new NodeProto { Name = "pool", OpType = "GlobalAveragePool", Input = { "s" }, Output = { "p" } });
        graph.Node.Add(new NodeProto { Name = "flatten", OpType = "Flatten", Input = { "p" }, Output = { "f" } });
        graph.Node.Add(new NodeProto { Name = "matmul", OpType = "MatMul", Input = { "f", "m" }, Output = { "z" } });
        graph.Node.Add(new NodeProto { Name = "softmax", OpType = "Softmax", Input = { "z" }, Output = { "y" } });

        var upgraded = OpsetUpgrade.Upgrade(model, name => name == "z" ? 2 : null, "old.onnx");
        Assert.Equal(13, OpsetUpgrade.Opset(upgraded));
        Assert.Empty(upgraded.Graph.Node.Single(n => n.OpType == "Clip").Attribute);
        Assert.Equal(3, upgraded.Graph.Node.Single(n => n.OpType == "Clip").Input.Count);
        Assert.Equal(4, upgraded.Graph.Node.Single(n => n.OpType == "Slice").Input.Count);

        using var old = new OrtSession(model.ToByteArray());
        using var raised = new OrtSession(upgraded.ToByteArray());
        foreach (var seed in new[] { 1, 2, 3 })
        {
            var frame = QdqFixtures.Smooth("x", [1, 3, 8, 8], seed);
            Assert.Equal(0, HostTensor.RelativeDifference(old.Run(frame)["y"], raised.Run(frame)["y"]));
        }

        // The whole quantiser takes it too (it records the Softmax input's rank in calibration).
        var frames = Enumerable.Range(1, 4).Select(s => QdqFixtures.Smooth("x", [1, 3, 8, 8], s)).ToList();
        var quantized = ModelQuantizer.Quantize(model, frames, "old.onnx");
        Assert.Contains("opset 9 raised to 13", quantized.Note);
        using var int8 = new OrtSession(quantized.Model.ToByteArray(), optimize: true);
        Assert.Equal(int8.OutputNames, old.OutputNames);
    }

    [Fact]
    public void An_op_whose_meaning_changes_by_opset_13_or_a_softmax_over_several_axes_is_refused_in_one_sentence()
    {
        var model = QdqFixtures.ConvGemm(opset: 9);
        model.Graph.Node.Insert(0, new NodeProto { Name = "up", OpType = "Upsample", Input = { "x" }, Output = { "x2" } });
        var error = Assert.Throws<PipelineInputException>(() => OpsetUpgrade.Upgrade(model, null, "old.onnx"));
        Assert.StartsWith("'old.onnx' uses Upsample (node 'up') at opset 9, whose meaning changes by opset 13", error.Message);

        var softmax = QdqFixtures.ConvGemm(opset: 11);
        softmax.Graph.Node.Add(new NodeProto { Name = "sm", OpType = "Softmax", Input = { "c1" }, Output = { "sm1" } });
        var refused = Assert.Throws<PipelineInputException>(() => OpsetUpgrade.Upgrade(softmax, _ => 4, "old.onnx"));
        Assert.StartsWith("'old.onnx' has a Softmax (node 'sm') over axes 1.. of a rank-4 tensor", refused.Message);
    }
}
