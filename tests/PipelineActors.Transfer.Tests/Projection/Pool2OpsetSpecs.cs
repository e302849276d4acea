using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Stages;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Proto;
using PipelineActors.TestSupport;
using PipelineActors.Transfer.Projection;
using static PipelineActors.Onnx.Proto.TensorProto.Types;

namespace PipelineActors.Transfer.Tests.Projection;

/// <summary>
/// pool2 across opsets: 12 (the pretrained BlazeFace, from tf2onnx), whose Resize still takes roi and scales as inputs;
/// 9 (the PaddleOCR classifier, and models made on the spot), which has Upsample and no MaxPool ceil_mode; 10 and 11. The
/// rewrite loads in ONNX Runtime and the downstream stage reads the nearest-upsampled pooled tensor.
/// </summary>
public sealed class Pool2OpsetSpecs
{
    [Fact]
    public void On_opset_12_the_pool2_rewrite_loads_and_the_downstream_stage_sees_the_pooled_tensor_upsampled()
    {
        var model = OnnxModelFile.Load(RepositoryFiles.Model("blazeface-back-256.onnx"));
        Assert.Equal(12, model.Model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Max(o => o.Version));
        var analysis = ModelAnalysis.Analyze(model);
        var cut = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4).OrderBy(c => Math.Abs(c.FlopsShare - 0.5)).First();
        Pool2AgreesWithMaxPoolAndNearest(analysis, cut, knownShape: null);
    }

    [Fact]
    public void On_a_model_with_dynamic_input_sizes_and_opset_9_pca_and_pool2_take_the_analysed_shape_and_load()
    {
        // The PaddleOCR classifier declares x[?,3,?,?] (its stages declare symbolic dims at the cut) and imports opset 9.
        var model = OnnxModelFile.Load(RepositoryFiles.Model("paddleocr-textdir-cls.onnx"));
        var analysis = ModelAnalysis.Analyze(model, new Dictionary<string, long[]> { ["x"] = [1, 3, 48, 192] });
        var cut = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4).OrderBy(c => Math.Abs(c.FlopsShare - 0.5)).First();
        var cargo = cut.Cargo[0];
        var stages = StageExtractor.Extract(analysis, [cut.Position]);
        var input = analysis.Shapes.InputSizes[0];
        using var exactUp = new OrtSession(stages[0].Model.ToByteArray());
        var covariance = new ChannelCovariance((int)cargo.Shape[1]);
        foreach (var seed in new[] { 3, 4 })
        {
            var activation = exactUp.Run(new Dictionary<string, HostTensor> { [input.Name] = HostTensor.Deterministic(input, seed) })[cargo.Name];
            covariance.Add(MemoryMarshal.Cast<byte, float>(activation.Data.AsSpan()), cargo.Shape);
        }

        var pca = covariance.Fit(8);
        Assert.Throws<PipelineInputException>(() => CutRewrites.Pca(stages[0].Model, stages[1].Model, cargo.Name, pca));
        var (upstream, downstream) = CutRewrites.Pca(stages[0].Model, stages[1].Model, cargo.Name, pca, cargo.Shape);
        using var up = new OrtSession(upstream.ToByteArray());
        using var down = new OrtSession(downstream.ToByteArray());
        var wire = up.Run(new Dictionary<string, HostTensor> { [input.Name] = HostTensor.Deterministic(input, 5) })[$"{cargo.Name}.pca8"];
        var outputs = down.Run(new Dictionary<string, HostTensor> { [wire.Info.Name] = wire });

        Assert.Equal([1, 8, cargo.Shape[2], cargo.Shape[3]], wire.Info.Shape);
        Assert.Equal([1L, 2L], outputs[analysis.Graph.OutputNames[0]].Info.Shape);
        Pool2AgreesWithMaxPoolAndNearest(analysis, cut, cargo.Shape);
    }

    [Theory]
    [InlineData(9, 15, 13)]
    [InlineData(9, 16, 12)]
    [InlineData(10, 15, 13)]
    [InlineData(11, 15, 13)]
    public void On_a_model_made_on_the_spot_the_pool2_rewrite_loads_in_every_opset_and_odd_sizes_keep_their_last_row(
        int opset, int height, int width)
    {
        // Conv, Relu, Conv, Relu, Conv: the cut after the first Relu carries a float32 NCHW tensor of the input's size.
        var builder = new OnnxBuilder(opset, seed: 11, name: $"opset{opset}");
        builder.Input("x", DataType.Float, 1, 3, height, width);
        var first = builder.Unary("Relu", builder.Conv("x", 3, 8, 3, pad: 1));
        var second = builder.Unary("Relu", builder.Conv(first, 8, 8, 3, pad: 1));
        builder.Node("Conv", [second, builder.Weight(4, 8, 1, 1), builder.Weight(4)], ["y"], OnnxBuilder.Ints("kernel_shape", 1, 1));
        builder.Output("y", DataType.Float, [1, 4, height, width]);
        var bytes = builder.Model.ToByteArray();
        var model = new OnnxModelFile($"opset{opset}.onnx", builder.Model, OnnxModelFile.Sha256Hex(bytes), bytes.LongLength);
        var analysis = ModelAnalysis.Analyze(model);
        var cut = analysis.Cuts.Single(c => c.IsSingleTensor && c.Cargo[0].Name == first);

        var (upstream, downstream) = Pool2AgreesWithMaxPoolAndNearest(analysis, cut, knownShape: null);

        var ops = downstream.Graph.Node.Take(2).Select(n => n.OpType).ToList();
        Assert.Equal(opset switch { 9 => "Upsample", _ => "Resize" }, ops[0]);
        Assert.Equal(opset < 11 && (height % 2 == 1 || width % 2 == 1), ops[1] == "Slice");
        Assert.Equal(opset >= 10, upstream.Graph.Node.Last().Attribute.Any(a => a.Name == "ceil_mode"));
    }

    [Fact]
    public void Before_opset_9_pool2_is_refused_in_one_sentence()
    {
        var builder = new OnnxBuilder(8, name: "opset8");
        builder.Input("x", DataType.Float, 1, 3, 8, 8);
        var first = builder.Unary("Relu", builder.Conv("x", 3, 4, 3, pad: 1));
        builder.Node("Conv", [first, builder.Weight(2, 4, 1, 1), builder.Weight(2)], ["y"], OnnxBuilder.Ints("kernel_shape", 1, 1));
        builder.Output("y", DataType.Float, [1, 2, 8, 8]);
        var bytes = builder.Model.ToByteArray();
        var analysis = ModelAnalysis.Analyze(new OnnxModelFile("opset8.onnx", builder.Model, OnnxModelFile.Sha256Hex(bytes), bytes.LongLength));
        var stages = StageExtractor.Extract(analysis, [analysis.Cuts.Single(c => c.IsSingleTensor && c.Cargo[0].Name == first).Position]);

        var refused = Assert.Throws<PipelineInputException>(() => CutRewrites.Pool2(stages[0].Model, stages[1].Model, first));
        Assert.Equal("pool2's nearest upsampling needs ONNX opset 9 or later; the stage imports opset 8.", refused.Message);
    }

    /// <summary>
    /// Rewrites the split at <paramref name="cut"/> for pool2 and checks both halves: the wire tensor is the 2x2 max of the
    /// exact cut tensor (an odd last row or column pooled alone), and the downstream stage gives what the exact one gives
    /// on that tensor upsampled by nearest neighbour.
    /// </summary>
    private static (ModelProto Upstream, ModelProto Downstream) Pool2AgreesWithMaxPoolAndNearest(
        ModelAnalysis analysis, Cut cut, IReadOnlyList<long>? knownShape)
    {
        var cargo = cut.Cargo[0];
        var stages = StageExtractor.Extract(analysis, [cut.Position]);
        var (upstream, downstream) = CutRewrites.Pool2(stages[0].Model, stages[1].Model, cargo.Name, knownShape);
        using var up = new OrtSession(upstream.ToByteArray());
        using var down = new OrtSession(downstream.ToByteArray());
        using var exactUp = new OrtSession(stages[0].Model.ToByteArray());
        using var exactDown = new OrtSession(stages[1].Model.ToByteArray());
        var input = analysis.Shapes.InputSizes[0];
        var inputs = new Dictionary<string, HostTensor> { [input.Name] = HostTensor.Deterministic(input, 7) };

        var wire = up.Run(inputs)[$"{cargo.Name}.pool2"];
        var outputs = down.Run(new Dictionary<string, HostTensor> { [wire.Info.Name] = wire });

        long[] half = [1, cargo.Shape[1], (cargo.Shape[2] + 1) / 2, (cargo.Shape[3] + 1) / 2];
        Assert.Equal(half, wire.Info.Shape);
        var exactCut = exactUp.Run(inputs)[cargo.Name];
        var pooled = MaxPool(MemoryMarshal.Cast<byte, float>(exactCut.Data.AsSpan()), cargo.Shape);
        Assert.Equal(pooled, MemoryMarshal.Cast<byte, float>(wire.Data.AsSpan()).ToArray());
        var upsampled = Nearest(MemoryMarshal.Cast<byte, float>(wire.Data.AsSpan()), cargo.Shape);
        var expected = exactDown.Run(new Dictionary<string, HostTensor>
        {
            [cargo.Name] = new HostTensor(cargo, MemoryMarshal.AsBytes(upsampled.AsSpan()).ToArray()),
        });
        foreach (var name in analysis.Graph.OutputNames)
        {
            Assert.True(HostTensor.RelativeDifference(expected[name], outputs[name]) < 1e-5, name);
        }

        return (upstream, downstream);
    }

    private static float[] MaxPool(ReadOnlySpan<float> values, long[] shape)
    {
        int channels = (int)shape[1], height = (int)shape[2], width = (int)shape[3];
        int ph = (height + 1) / 2, pw = (width + 1) / 2;
        var result = new float[channels * ph * pw];
        for (var c = 0; c < channels; c++)
        {
            for (var y = 0; y < ph; y++)
            {
                for (var x = 0; x < pw; x++)
                {
                    var max = float.NegativeInfinity;
                    for (var dy = 0; dy < 2 && (2 * y) + dy < height; dy++)
                    {
                        for (var dx = 0; dx < 2 && (2 * x) + dx < width; dx++)
                        {
                            max = Math.Max(max, values[(((c * height) + (2 * y) + dy) * width) + (2 * x) + dx]);
                        }
                    }

                    result[(((c * ph) + y) * pw) + x] = max;
                }
            }
        }

        return result;
    }

    private static float[] Nearest(ReadOnlySpan<float> pooled, long[] shape)
    {
        int channels = (int)shape[1], height = (int)shape[2], width = (int)shape[3];
        int ph = (height + 1) / 2, pw = (width + 1) / 2;
        var result = new float[channels * height * width];
        for (var c = 0; c < channels; c++)
        {
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    result[(((c * height) + y) * width) + x] = pooled[(((c * ph) + (y / 2)) * pw) + (x / 2)];
                }
            }
        }

        return result;
    }
}
