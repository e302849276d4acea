using Akka.Actor;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Stages;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Stages;

/// <summary>
/// The detector's third stage of four (NonMaxSuppression's result in, the kept boxes out) hosted as a stage actor with
/// every message serialized on its way, as if each hop were remote: frames whose box count changes from one to the
/// next, none included, come out as ONNX Runtime computes them.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BoxCountStageActorSpecs()
    : Akka.TestKit.Xunit2.TestKit(
        TestNodes.Config("akka.actor.serialize-messages = on\nakka.actor.serialize-creators = off", Roles.Worker), PipelineConfig.SystemName)
{
    private const int Parts = 4;
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-boxes-").FullName;

    [Fact]
    public void A_stage_after_NonMaxSuppression_sends_as_many_boxes_as_each_frame_has()
    {
        var analysis = ModelAnalysis.Analyze(BoxCountDetector.Build());
        var stages = StageExtractor.Extract(analysis, BoxCountDetector.CutPositions(analysis.Graph));
        var hosted = stages[2];
        var path = Path.Combine(_folder, hosted.FileName);
        OnnxModelFile.Save(hosted.Model, path);
        var bytes = hosted.Model.ToByteArray();
        var spec = new StageSpec(
            hosted.Index,
            new StageFile(OnnxModelFile.Sha256Hex(bytes), bytes.LongLength),
            hosted.Inputs.Select(t => t.Name).ToList(),
            hosted.Outputs.Select(t => t.Name).ToList(),
            hosted.Forwarded.Select(t => t.Name).ToList(),
            hosted.Flops,
            $"{hosted.From}..{hosted.To - 1}");

        var stage = ChildActorOf(StageActor.Props(Parts, spec, path, 1, Sys.Settings.Config.GetInt("pipeline.chunk-bytes")));
        ExpectMsg<StageReady>(TimeSpan.FromSeconds(20));
        var successor = CreateTestProbe();
        var supervisor = CreateTestProbe();
        stage.Tell(new WireStage("job-1", 1, [successor.Ref], CreateTestProbe().Ref), supervisor.Ref);
        supervisor.ExpectMsg<StageWired>(TimeSpan.FromSeconds(10));
        ExpectMsg<StageWiredLocally>();

        using var upstream = new StageChain(stages.Take(2));
        using var alone = new OrtSession(bytes);
        var counts = new List<long>();
        var id = 0L;
        foreach (var picture in BoxCountDetector.Pictures())
        {
            var cargo = upstream.Run(new Dictionary<string, HostTensor> { [picture.Info.Name] = picture });
            var tensors = stages[1].Emits.Select(t => new HostTensor(t.Name, t.ElementType, cargo[t.Name].Info.Shape, cargo[t.Name].Data));
            var frame = new Frame(id++, "camera", 1, 1_700_000_000_000_000 + id, 1, tensors.ToList());
            stage.Tell(frame);

            var output = successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
            Assert.Equal(frame.FrameId, output.FrameId);
            var expected = alone.Run(cargo);
            foreach (var name in spec.Outputs)
            {
                var tensor = output.Tensors.Single(t => t.Name == name);
                Assert.Equal(expected[name].Info.Shape, tensor.Shape);
                Assert.Equal(expected[name].Data, tensor.Data);
            }

            foreach (var name in spec.Forwarded)
            {
                Assert.Equal(frame.Tensors.Single(t => t.Name == name), output.Tensors.Single(t => t.Name == name));
            }

            counts.Add(output.Tensors.Single(t => t.Name == BoxCountDetector.KeptBoxes).Shape[0]);
        }

        Assert.Contains(0, counts);
        Assert.True(counts.Distinct().Count() >= 4, $"box counts {string.Join(", ", counts)} hardly vary.");
        stage.Tell(GetStageStats.Instance);
        Assert.Equal(counts.Count, ExpectMsg<StageStats>().Frames);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            Directory.Delete(_folder, recursive: true);
        }
    }
}
