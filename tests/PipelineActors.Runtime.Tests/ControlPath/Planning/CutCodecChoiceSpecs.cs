using PipelineActors.Onnx;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Runtime.Tests.ControlPath.Planning;

/// <summary>The bundled BlazeFace cut in two (FLOP balance, so the same cut every run), and real frames of Megamind.avi.</summary>
public sealed class BlazeFaceTwoParts : IDisposable
{
    public const string Clip = "video:/usr/share/doc/opencv-doc/examples/data/Megamind.avi";

    private readonly string _folder = Directory.CreateTempSubdirectory("pa-choice-").FullName;

    public BlazeFaceTwoParts()
    {
        var model = RepositoryFiles.Model("blazeface-back-256.onnx");
        Profile = ModelProfile.ForModel(model);
        Prepared = JobBuilder.Prepare(
            model, new Dictionary<string, long[]> { [Profile.Input] = Profile.Shape }, 2, Path.Combine(_folder, "store"),
            (a, parts) => Balancer.Balance(a, parts), normalisation: Profile.FirstStageNormalisation());
    }

    public ModelProfile Profile { get; }

    public PreparedModel Prepared { get; }

    public IFrameSource Frames(int count) =>
        new LimitedSource(SourceSpec.Parse(Clip, Profile, new FrameSourceOptions(Uint8Pixels: true, Frames: count)), count);

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}

/// <summary>
/// A fidelity budget's choice of codec per hop: the budget bars the codecs that measured below it, a slow link gets the
/// smallest codec left and a fast one the exact wire, and on the real BlazeFace with real frames the split it leaves
/// measures within the budget with every hop coded.
/// </summary>
public sealed class CutCodecChoiceSpecs(BlazeFaceTwoParts blazeface, ITestOutputHelper log) : IClassFixture<BlazeFaceTwoParts>
{
    private static readonly HopCodecOption Exact = new("exact", 1_200_000, 0, 0, 1, Lossless: true);
    private static readonly HopCodecOption Zstd = new("zstd", 900_000, 6, 3, 1, Lossless: true);
    private static readonly HopCodecOption Int8 = new("int8+zstd", 230_000, 8, 4, 0.998, Lossless: false);
    private static readonly HopCodecOption Int4 = new("int4+zstd", 110_000, 8, 4, 0.92, Lossless: false);
    private static readonly HopCodecOption[] Options = [Int4, Int8, Zstd, Exact];

    [Fact]
    public void A_slow_link_gets_the_smallest_codec_within_the_budget()
    {
        Assert.Equal("int8+zstd", Options[CutCodecChoice.Choose(Options, 0.99, new HopLink(20, 0))].Codec);
        Assert.Equal("int4+zstd", Options[CutCodecChoice.Choose(Options, 0.9, new HopLink(20, 0))].Codec);
    }

    [Fact]
    public void A_fast_link_keeps_the_exact_wire_because_coding_costs_a_frame_more_than_it_saves()
    {
        // 1.2 MB at 10 Gbit/s keeps the link busy under 1 ms; int8's codec alone takes 12 ms.
        Assert.Equal("exact", Options[CutCodecChoice.Choose(Options, 0.9, new HopLink(10_000, 0))].Codec);
    }

    [Fact]
    public void With_a_budget_of_one_only_lossless_codecs_remain_and_without_a_link_the_fewest_bytes_win()
    {
        Assert.Equal("zstd", Options[CutCodecChoice.Choose(Options, 1.0, new HopLink(20, 0))].Codec);
        Assert.Equal("int4+zstd", Options[CutCodecChoice.Choose(Options, 0.5, null)].Codec);
    }

    [Theory]
    [InlineData("fidelity:0", "not a share")]
    [InlineData("fidelity:1.5", "not a share")]
    [InlineData("fidelity:high", "not a fidelity budget")]
    public void A_budget_that_is_not_a_share_is_one_sentence(string codec, string words)
    {
        var error = Assert.Throws<PipelineInputException>(() => CutCodecChoice.TryBudget(codec, out _));
        Assert.Contains(words, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_budget_round_trips_through_the_job_specs_codec_field()
    {
        Assert.True(CutCodecChoice.TryBudget(CutCodecChoice.Spell(0.985), out var budget));
        Assert.Equal(0.985, budget);
        Assert.False(CutCodecChoice.TryBudget("int8", out _));
    }

    [Fact(Timeout = 240_000)]
    public async Task On_real_frames_a_20_Mbit_hop_gets_a_lossy_codec_a_fast_one_stays_exact_and_the_split_keeps_the_budget()
    {
        await Task.Yield();
        const double budget = 0.99;
        var (slow, slowReport) = Choose(budget, new HopLink(20, 0));
        var (_, fastReport) = Choose(budget, new HopLink(10_000, 0));

        var hop = slowReport.Hops.Single(h => h.Parts == 2);
        foreach (var option in hop.Options)
        {
            log.WriteLine($"{option.Codec}: {option.BytesPerFrame:0} B, encode {option.EncodeMs:0.00} ms, decode {option.DecodeMs:0.00} "
                + $"ms, fidelity {option.Fidelity:0.0000}");
        }

        log.WriteLine($"20 Mbit/s: {hop.Codec} ({hop.Reason}); 10 Gbit/s: {fastReport.Hops.Single().Codec}");
        Assert.NotEqual("exact", hop.Codec);
        Assert.True(hop.BytesPerFrame < hop.ExactBytesPerFrame / 3,
            $"{hop.Codec} sends {hop.BytesPerFrame:0} B against {hop.ExactBytesPerFrame:0} B exact");
        Assert.True(hop.Fidelity >= budget && slowReport.SplitFidelity[2] >= budget, $"hop {hop.Fidelity}, split {slowReport.SplitFidelity[2]}");
        Assert.Equal("F1 of face boxes matched one to one at IoU >= 0.5 with the exact model's", slowReport.Measure);

        // The plan carries the choice: the first stage encodes the hop's tensors with it, the second decodes them.
        var stages = slow.Splits.Single(s => s.Parts == 2).Stages;
        Assert.All(stages[0].Encodes!, c => Assert.Equal(hop.Codec, c.Codec));
        Assert.Equal(stages[0].Encodes!.Select(c => c.Tensor).Order(), stages[1].Decodes!.Select(c => c.Tensor).Order());

        // Something measured below the budget on these frames (int4 does on BlazeFace), so the budget did bar a codec.
        Assert.Contains(hop.Options, o => !o.Lossless && o.Fidelity < budget);
        Assert.DoesNotContain(hop.Options, o => o.Codec == hop.Codec && !o.Lossless && o.Fidelity < budget);

        Assert.Equal("exact", fastReport.Hops.Single().Codec);
    }

    private (PreparedModel Model, CodecChoiceReport Report) Choose(double budget, HopLink link)
    {
        using var frames = blazeface.Frames(16);
        return CutCodecChoice.Apply(blazeface.Prepared, budget, frames, 16, (_, _) => link, blazeface.Profile);
    }
}
