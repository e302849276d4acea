using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Stages;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Stages;

/// <summary>Every bundled real model, cut at every candidate cut and split into 2..8 parts, chains to the whole model's result.</summary>
public class BundledModelSplitSpecs(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    [Theory]
    [MemberData(nameof(TestModels.Bundled), MemberType = typeof(TestModels))]
    public void Every_cut_of_a_bundled_model_chains_to_the_whole_models_outputs(string file, string sizes)
    {
        var analysis = ModelAnalysis.Analyze(OnnxModelFile.Load(Path.Combine(TestModels.ModelsFolder, file)), TestModels.Sizes(sizes));
        Assert.NotEmpty(analysis.Cuts);
        var worst = 0.0;
        foreach (var cut in analysis.Cuts)
        {
            var stages = StageExtractor.Extract(analysis, [cut.Position]);
            var difference = StageChain.CompareWithWholeModel(analysis, stages);
            Assert.True(difference <= Tolerance, $"cut {cut.Position} after {cut.AfterNode}: relative difference {difference:E2}");
            worst = Math.Max(worst, difference);
        }

        output.WriteLine($"{file}: {analysis.Cuts.Count} cuts ({analysis.Cuts.Count(c => c.IsSingleTensor)} single-tensor) of "
            + $"{analysis.NodeCount} nodes, worst relative difference {worst:E2}");
    }

    [Theory]
    [MemberData(nameof(TestModels.Bundled), MemberType = typeof(TestModels))]
    public void Balanced_splits_into_2_to_8_parts_chain_to_the_whole_models_outputs(string file, string sizes)
    {
        var analysis = ModelAnalysis.Analyze(OnnxModelFile.Load(Path.Combine(TestModels.ModelsFolder, file)), TestModels.Sizes(sizes));
        for (var parts = 2; parts <= 8; parts++)
        {
            var cuts = Balancer.Balance(analysis, parts);
            Assert.Equal(parts - 1, cuts.Count);
            var stages = StageExtractor.Extract(analysis, cuts);
            var plain = StageChain.CompareWithWholeModel(analysis, stages);
            var optimized = StageChain.CompareWithWholeModel(analysis, stages, optimize: true);
            output.WriteLine($"{file} {parts} parts at [{string.Join(",", cuts)}]: {plain:E2} (optimizations off), {optimized:E2} (on)");
            Assert.True(plain <= Tolerance, $"{parts} parts: relative difference {plain:E2}");
        }
    }
}
