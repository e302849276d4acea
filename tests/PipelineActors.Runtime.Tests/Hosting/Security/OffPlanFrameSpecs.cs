using Akka.Actor;
using PipelineActors.Onnx.Inference;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>
/// Frames within this node's <c>pipeline.limits</c> but not of its plan, sent to a deployed stage by a second actor system
/// on 127.0.0.1 while a stream runs: a whole frame with more bytes than the stage's inputs need, a chunk of a 50 MiB frame
/// (the node allows 128 MiB; the stage needs a few KiB), and a tensor of the wrong rank. Each is refused and counted, the
/// stage keeps serving, and the stream's results are exactly what they would be.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class OffPlanFrameSpecs(ITestOutputHelper output)
{
    private const string JobId = "off-plan";

    [Fact]
    public async Task Oversized_and_wrong_rank_frames_from_a_peer_are_refused_by_the_stage_and_the_stream_is_unchanged()
    {
        await using var stream = await AttackedStream.StartAsync(JobId);
        var (plan, prepared, frames) = (stream.Plan, stream.Prepared, AttackedStream.Frames);
        var stage = ((ExtendedActorSystem)stream.Attacker).Provider.ResolveActorRef(plan.Heads[0].Path.ToString());
        Assert.Equal(stream.Worker.Address, stage.Path.Address);
        var before = Counts();

        // The stage's input as the source sends it, so only what the spec names is wrong.
        var input = prepared.SourceInputs[0];
        var scale = Math.Max(8, 180_000 / (int)input.Bytes);
        var oversized = new HostTensor(input.Name, input.ElementType, input.Shape.Select((d, i) => i == 0 ? d * scale : d).ToArray(),
            new byte[input.Bytes * scale]);
        var flat = new HostTensor(input.Name, input.ElementType, [input.ElementCount], new byte[input.Bytes]);
        stage.Tell(new Frame(1_000_000, "forged", plan.Epoch, 0, 1, [oversized]));
        stage.Tell(new FrameChunk(1_000_001, plan.Epoch, 1, 0, 2, 0, 50 << 20, new byte[4096]));
        stage.Tell(new Frame(1_000_002, "forged", plan.Epoch, 0, 1, [flat]));

        var stats = await TestStreams.FinishAsync(stream.Session, TimeSpan.FromSeconds(120), output);
        WholeModelOracle.AssertExactlyOnceInOrder(stream.Writer.Snapshot(), frames);
        WholeModelOracle.AssertMatchesWholeModel(prepared, stream.Writer.Snapshot());
        Assert.Equal(0, stats.Failed);

        var after = Counts();
        Assert.Equal(2, after["frame-past-plan"] - before["frame-past-plan"]);
        Assert.Equal(1, after["frame-off-plan"] - before["frame-off-plan"]);
    }

    private static Dictionary<string, long> Counts() =>
        new[] { "frame-past-plan", "frame-off-plan" }.ToDictionary(r => r, MessageGuard.RefusedSoFar);
}
