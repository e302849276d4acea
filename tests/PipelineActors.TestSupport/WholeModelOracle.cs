using Google.Protobuf;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;

namespace PipelineActors.TestSupport;

/// <summary>What a pipeline's results must be: every synthetic frame once, in order, equal to the whole model's output.</summary>
public static class WholeModelOracle
{
    /// <summary>Frames 0 .. <paramref name="frames"/> - 1, each once, in order, none failed.</summary>
    public static void AssertExactlyOnceInOrder(IReadOnlyList<FrameOutcome> outcomes, int frames)
    {
        Assert.Equal(Enumerable.Range(0, frames).Select(i => (long)i), outcomes.Select(o => o.FrameId)); // none lost, none twice, in order
        Assert.All(outcomes, o => Assert.Null(o.FailedReason));
    }

    /// <summary>
    /// Each outcome's tensors within 1e-5 (relative) of the whole model run on the synthetic pattern of that frame id;
    /// with <paramref name="everyOutput"/>, the outcome also carries exactly the whole model's outputs.
    /// </summary>
    public static void AssertMatchesWholeModel(PreparedModel model, IReadOnlyList<FrameOutcome> outcomes, bool everyOutput = false)
    {
        using var whole = new OrtSession(model.Analysis.Graph.Model.ToByteArray());
        foreach (var outcome in outcomes)
        {
            var inputs = SyntheticSource.Pattern(model.Inputs, outcome.FrameId).ToDictionary(t => t.Name, t => new HostTensor(t.Info, t.Data));
            var expected = whole.Run(inputs);
            if (everyOutput)
            {
                Assert.Equal(expected.Keys.Order(), outcome.Outputs.Select(t => t.Name).Order());
            }

            foreach (var tensor in outcome.Outputs)
            {
                var difference = HostTensor.RelativeDifference(expected[tensor.Name], new HostTensor(tensor.Info, tensor.Data));
                Assert.True(difference <= 1e-5, $"frame {outcome.FrameId} {tensor.Name}: {difference:E2}");
            }
        }
    }
}
