using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Stages;
using PipelineActors.Transfer.Projection;

namespace PipelineActors.Transfer.Tests.Projection;

/// <summary>
/// pool2 on a model of opset 12 (the pretrained BlazeFace, from tf2onnx), whose Resize still takes roi and scales as
/// inputs: the rewrite loads in ONNX Runtime and the downstream stage reads the nearest-upsampled pooled tensor.
/// </summary>
public sealed class Pool2OpsetSpecs
{
    [Fact]
    public void On_opset_12_the_pool2_rewrite_loads_and_the_downstream_stage_sees_the_pooled_tensor_upsampled()
    {
        var model = OnnxModelFile.Load(Path.Combine(Codecs.BlazeFaceActivationSpecs.Root(), "models", "blazeface-back-256.onnx"));
        Assert.Equal(12, model.Model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Max(o => o.Version));
        var analysis = ModelAnalysis.Analyze(model);
        var cut = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4).OrderBy(c => Math.Abs(c.FlopsShare - 0.5)).First();
        var cargo = cut.Cargo[0];
        var stages = StageExtractor.Extract(analysis, [cut.Position]);
        var (upstream, downstream) = CutRewrites.Pool2(stages[0].Model, stages[1].Model, cargo.Name);
        using var up = new ModelRunner(upstream.ToByteArray());
        using var down = new ModelRunner(downstream.ToByteArray());
        using var exactDown = new ModelRunner(stages[1].Model.ToByteArray());
        var input = analysis.Shapes.InputSizes[0];

        var wire = up.Run(new Dictionary<string, HostTensor> { [input.Name] = HostTensor.Deterministic(input, 7) })[$"{cargo.Name}.pool2"];
        var outputs = down.Run(new Dictionary<string, HostTensor> { [wire.Info.Name] = wire });

        long[] half = [1, cargo.Shape[1], (cargo.Shape[2] + 1) / 2, (cargo.Shape[3] + 1) / 2];
        Assert.Equal(half, wire.Info.Shape);
        var upsampled = Nearest(MemoryMarshal.Cast<byte, float>(wire.Data.AsSpan()), cargo.Shape);
        var expected = exactDown.Run(new Dictionary<string, HostTensor>
        {
            [cargo.Name] = new HostTensor(cargo, MemoryMarshal.AsBytes(upsampled.AsSpan()).ToArray()),
        });
        foreach (var name in analysis.Graph.OutputNames)
        {
            Assert.True(HostTensor.RelativeDifference(expected[name], outputs[name]) < 1e-5, name);
        }
    }

    [Fact]
    public void On_a_model_with_dynamic_input_sizes_pca_takes_the_analysed_shape_and_loads_and_pool2_on_opset_9_is_refused_clearly()
    {
        // The PaddleOCR classifier declares x[?,3,?,?] (its stages declare symbolic dims at the cut) and imports opset 9.
        var model = OnnxModelFile.Load(Path.Combine(Codecs.BlazeFaceActivationSpecs.Root(), "models", "paddleocr-textdir-cls.onnx"));
        var analysis = ModelAnalysis.Analyze(model, new Dictionary<string, long[]> { ["x"] = [1, 3, 48, 192] });
        var cut = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4).OrderBy(c => Math.Abs(c.FlopsShare - 0.5)).First();
        var cargo = cut.Cargo[0];
        var stages = StageExtractor.Extract(analysis, [cut.Position]);
        var input = analysis.Shapes.InputSizes[0];
        using var exactUp = new ModelRunner(stages[0].Model.ToByteArray());
        var covariance = new ChannelCovariance((int)cargo.Shape[1]);
        foreach (var seed in new[] { 3, 4 })
        {
            var activation = exactUp.Run(new Dictionary<string, HostTensor> { [input.Name] = HostTensor.Deterministic(input, seed) })[cargo.Name];
            covariance.Add(MemoryMarshal.Cast<byte, float>(activation.Data.AsSpan()), cargo.Shape);
        }

        var pca = covariance.Fit(8);
        Assert.Throws<PipelineInputException>(() => CutRewrites.Pca(stages[0].Model, stages[1].Model, cargo.Name, pca));
        var (upstream, downstream) = CutRewrites.Pca(stages[0].Model, stages[1].Model, cargo.Name, pca, cargo.Shape);
        using var up = new ModelRunner(upstream.ToByteArray());
        using var down = new ModelRunner(downstream.ToByteArray());
        var wire = up.Run(new Dictionary<string, HostTensor> { [input.Name] = HostTensor.Deterministic(input, 5) })[$"{cargo.Name}.pca8"];
        var outputs = down.Run(new Dictionary<string, HostTensor> { [wire.Info.Name] = wire });

        Assert.Equal([1, 8, cargo.Shape[2], cargo.Shape[3]], wire.Info.Shape);
        Assert.Equal([1L, 2L], outputs[analysis.Graph.OutputNames[0]].Info.Shape);
        var refused = Assert.Throws<PipelineInputException>(() => CutRewrites.Pool2(stages[0].Model, stages[1].Model, cargo.Name, cargo.Shape));
        Assert.Equal("pool2's Resize with sizes needs ONNX opset 11 or later; the stage imports opset 9.", refused.Message);
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
