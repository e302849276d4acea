using PipelineActors.Onnx;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.Hosting;

/// <summary>A job whose plans do not fit one remote message is refused in a sentence before it starts (review C8).</summary>
public sealed class IngestSessionSpecs : Akka.TestKit.Xunit2.TestKit
{
    public IngestSessionSpecs()
        : base(TestNodes.Config(Roles.Ingest), PipelineConfig.SystemName)
    {
    }

    [Fact]
    public void Plans_larger_than_the_transport_frame_are_refused_and_plans_that_fit_pass()
    {
        var settings = PipelineSettings.From(Sys.Settings.Config);
        var small = Model(layers: "0..9");
        IngestSession.CheckFits(Sys, small, settings.MaximumFrameSize);

        // Long tensor names in many splits: the message Akka.Remote would drop without a word.
        var large = Model(layers: new string('x', (int)settings.MaximumFrameSize));
        var refused = Assert.Throws<PipelineInputException>(() => IngestSession.CheckFits(Sys, large, settings.MaximumFrameSize));
        Assert.Contains("maximum-frame-size", refused.Message, StringComparison.Ordinal);
        Assert.Contains("1 splits", refused.Message, StringComparison.Ordinal);
    }

    private static IReadOnlyList<SplitPlan> Model(string layers)
    {
        var file = new StageFile(new string('a', 64), 10);
        return [new SplitPlan(1, [new StageSpec(0, file, ["in"], ["out"], [], 1, layers)])];
    }
}
