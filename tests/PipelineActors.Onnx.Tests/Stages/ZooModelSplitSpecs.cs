using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Stages;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Stages;

/// <summary>Every zoo architecture, cut at many candidate cuts and split into 2..8 parts, chains to the whole model's result.</summary>
public class ZooModelSplitSpecs(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    public static TheoryData<string> Names => new(ModelZoo.Names);

    [Theory]
    [MemberData(nameof(Names))]
    public void Cuts_and_balanced_splits_of_a_zoo_model_chain_to_the_whole_models_outputs(string name)
    {
        var analysis = ModelAnalysis.Analyze(ModelZoo.Build(name, seed: 3));
        var verifier = new SplitVerifier(analysis);

        // Every cut of small models; for large ones a spread of at least 20 across the graph.
        var cuts = analysis.Cuts.Count <= 30
            ? analysis.Cuts
            : Enumerable.Range(0, 24).Select(i => analysis.Cuts[i * (analysis.Cuts.Count - 1) / 23]).Distinct().ToList();
        foreach (var cut in cuts)
        {
            var difference = verifier.Check(StageExtractor.Extract(analysis, [cut.Position]));
            Assert.True(difference <= Tolerance, $"{name} cut {cut.Position} after {cut.AfterNode}: relative difference {difference:E2}");
        }

        output.WriteLine($"{name}: {cuts.Count} of {analysis.Cuts.Count} cuts checked ({analysis.Cuts.Count(c => c.IsSingleTensor)} "
            + $"single-tensor), {analysis.NodeCount} nodes");
        var optimizedVerifier = new SplitVerifier(analysis, optimize: true);
        for (var parts = 2; parts <= 8; parts++)
        {
            var positions = Balancer.Balance(analysis, parts);
            var stages = StageExtractor.Extract(analysis, positions);
            var plain = verifier.Check(stages);
            Assert.True(plain <= Tolerance, $"{name} in {parts} parts [{string.Join(",", positions)}]: relative difference {plain:E2}");
            output.WriteLine(
                $"{name} {parts} parts at [{string.Join(",", positions)}]: {plain:E2} (ORT optimizations off), "
                + $"{optimizedVerifier.Check(stages):E2} (on)");
        }
    }
}
