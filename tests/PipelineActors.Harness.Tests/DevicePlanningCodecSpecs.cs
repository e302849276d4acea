using PipelineActors.Harness.Emulation;
using PipelineActors.Onnx;
using PipelineActors.Planning;
using PipelineActors.TestSupport;

namespace PipelineActors.Harness.Tests;

/// <summary>
/// Codecs on the blocks' outputs move a real model's plan (<c>run --plan planned --fidelity</c>): ScissionLite's setting, a
/// quarter-core camera board and a full edge behind 20 Mbit/s, on the bundled BlazeFace with speeds given by hand. Exact, the
/// frame (192 KiB) crosses the slow link and the edge runs nearly all; with a codec that makes the first block's output small within
/// the budget, the board runs that block and the coded cut crosses instead; a codec below the budget changes nothing.
/// </summary>
public sealed class DevicePlanningCodecSpecs
{
    private static readonly DevicePlanning Exact = DevicePlanning.Build(
        ModelAnalysis.Analyze(OnnxModelFile.Load(RepositoryFiles.Model("blazeface-back-256.onnx"))),
        times: null,
        inputBytes: 256 * 256 * 3,
        speeds: [new DeviceSpeed(0, WholeModelMs: 120, Frames: 10), new DeviceSpeed(1, WholeModelMs: 30, Frames: 10)],
        spec: EmulationSpec.Parse("cpu=0.25;cpu=1.0,link=20"));

    [Fact]
    public void Exact_the_frame_crosses_the_slow_link_to_the_edge()
    {
        var plan = Exact.Planned();

        // The edge runs (nearly) everything; the board may take back a small tail whose results reach the head over its fast link.
        Assert.Equal(1, plan.Placement.Workers[0]);
        Assert.Equal(256 * 256 * 3, plan.Figures.Hops[0].Bytes);
        Assert.All(plan.Figures.Hops.SelectMany(h => h.Links), l => Assert.Equal("exact", l.Codec));
    }

    [Fact]
    public void A_codec_within_the_budget_that_makes_the_first_cut_small_moves_that_block_onto_the_board()
    {
        var coded = Exact.WithCodecs(FirstCut(fidelity: 0.995), budget: 0.99).Planned();

        Assert.Equal([0, 1], coded.Placement.Workers);
        Assert.Equal([Exact.BlockEnds[0]], coded.Placement.Cuts);
        var hop = coded.Figures.Hops.Single(h => h.FromStage == 1 && h.ToStage == 2);
        Assert.Equal("int8+zstd", Assert.Single(hop.Links).Codec);
        Assert.True(coded.PredictedFramesPerSecond > Exact.Planned().PredictedFramesPerSecond);
    }

    [Fact]
    public void A_codec_below_the_budget_leaves_the_exact_plan()
    {
        var coded = Exact.WithCodecs(FirstCut(fidelity: 0.95), budget: 0.99).Planned();

        var exact = Exact.Planned().Placement;
        Assert.Equal(exact.Workers, coded.Placement.Workers);
        Assert.Equal(exact.Cuts, coded.Placement.Cuts);
    }

    /// <summary>A codec on the first block's output at a tenth of the frame's bytes, 1 ms each way.</summary>
    private static Dictionary<int, IReadOnlyList<PlanCodec>> FirstCut(double fidelity) =>
        new() { [0] = [new PlanCodec("int8+zstd", 256 * 256 * 3 / 10, 1, 1, fidelity)] };
}
