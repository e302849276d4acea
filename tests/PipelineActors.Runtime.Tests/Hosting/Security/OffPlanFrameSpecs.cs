using Akka.Actor;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.TestSupport;
using Xunit.Abstractions;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>
/// Frames within this node's <c>pipeline.limits</c> but not of its plan, sent to a deployed stage by a second actor system
/// on 127.0.0.1 while a stream runs: a whole frame with more bytes than the stage's inputs need, a chunk of a 50 MiB frame
/// (the node allows 128 MiB; the stage needs a few KiB), and a tensor of the wrong rank. Each is refused and counted, the
/// stage keeps serving, and the stream's results are exactly what they would be.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class OffPlanFrameSpecs(ITestOutputHelper output) : IDisposable
{
    private const string JobId = "off-plan";
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-off-plan-").FullName;

    [Fact]
    public async Task Oversized_and_wrong_rank_frames_from_a_peer_are_refused_by_the_stage_and_the_stream_is_unchanged()
    {
        var modelPath = Path.Combine(_folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), modelPath);
        var prepared = JobBuilder.Prepare(modelPath, null, 1, Path.Combine(_folder, "store"));

        await using var head = PipelineNode.Start(new NodeOptions { Roles = [Roles.Coordinator, Roles.Ingest] });
        await head.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        await using var worker = PipelineNode.Start(new NodeOptions
        {
            Roles = [Roles.Worker], Seeds = [head.SeedUri], ModelCache = Path.Combine(_folder, "cache"),
        });
        await worker.WaitUntilUpAsync(TimeSpan.FromSeconds(30));

        const int frames = 60;
        var writer = new CollectingResultWriter();
        var source = new SyntheticSource(prepared.SourceInputs, 15, frames, live: false);
        var session = IngestSession.Start(head, prepared, source, writer, new IngestSettings(4, TimeSpan.FromSeconds(3), 4, 65536), JobId);
        var plan = await WaitForPlanAsync(session);

        var attacker = ActorSystem.Create(PipelineConfig.SystemName, TestNodes.Config(Roles.Worker));
        try
        {
            var stage = ((ExtendedActorSystem)attacker).Provider.ResolveActorRef(plan.Heads[0].Path.ToString());
            Assert.Equal(worker.Address, stage.Path.Address);
            var before = Counts();

            // The stage's input as the source sends it, so only what the spec names is wrong.
            var input = prepared.SourceInputs[0];
            var scale = Math.Max(8, 180_000 / (int)input.Bytes);
            var oversized = new HostTensor(input.Name, input.ElementType, input.Shape.Select((d, i) => i == 0 ? d * scale : d).ToArray(), new byte[input.Bytes * scale]);
            var flat = new HostTensor(input.Name, input.ElementType, [input.ElementCount], new byte[input.Bytes]);
            stage.Tell(new Frame(1_000_000, "forged", plan.Epoch, 0, 1, [oversized]));
            stage.Tell(new FrameChunk(1_000_001, plan.Epoch, 1, 0, 2, 0, 50 << 20, new byte[4096]));
            stage.Tell(new Frame(1_000_002, "forged", plan.Epoch, 0, 1, [flat]));

            var done = await Task.WhenAny(session.Completed, Task.Delay(TimeSpan.FromSeconds(120)));
            var stats = await session.IngestStatsAsync();
            foreach (var e in stats.Events)
            {
                output.WriteLine(e.Text);
            }

            Assert.True(done == session.Completed, "the run did not complete in time");
            WholeModelOracle.AssertExactlyOnceInOrder(writer.Snapshot(), frames);
            WholeModelOracle.AssertMatchesWholeModel(prepared, writer.Snapshot());
            Assert.Equal(0, stats.Failed);

            var after = Counts();
            Assert.Equal(2, after["frame-past-plan"] - before["frame-past-plan"]);
            Assert.Equal(1, after["frame-off-plan"] - before["frame-off-plan"]);
        }
        finally
        {
            await attacker.Terminate();
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static Dictionary<string, long> Counts() =>
        new[] { "frame-past-plan", "frame-off-plan" }.ToDictionary(r => r, MessageGuard.RefusedSoFar);

    private static async Task<PlanActivated> WaitForPlanAsync(IngestSession session)
    {
        for (var i = 0; i < 300; i++)
        {
            if ((await session.IngestStatsAsync()).Plan is { } plan)
            {
                return plan;
            }

            await Task.Delay(200);
        }

        Assert.Fail("no plan went live within a minute");
        return null!;
    }
}
