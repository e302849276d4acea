using Akka.Actor;
using Akka.TestKit;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Stages;

/// <summary>
/// Both bundled PaddleOCR models declare dynamic N, H and W, so the tensors between their stages carry no shape in the
/// stage files: each stage of a 2- and 3-part split still warms up (on the sizes the job was prepared for), and frames
/// streamed through real stage actors give the whole model's output.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DynamicModelStageSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly string _store = Directory.CreateTempSubdirectory("pa-dynamic-").FullName;

    public DynamicModelStageSpecs()
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
    }

    public static TheoryData<string, string, int> Splits => new()
    {
        { "paddleocr-textdir-cls.onnx", "1,3,48,192", 2 },
        { "paddleocr-textdir-cls.onnx", "1,3,48,192", 3 },
        { "paddleocr-text-det.onnx", "1,3,160,160", 2 },
        { "paddleocr-text-det.onnx", "1,3,160,160", 3 },
    };

    [Theory]
    [MemberData(nameof(Splits))]
    public void A_split_of_a_dynamic_model_warms_up_in_stage_actors_and_streams_the_whole_models_output(string file, string size, int parts)
    {
        var sizes = new Dictionary<string, long[]> { ["x"] = size.Split(',').Select(long.Parse).ToArray() };
        var prepared = JobBuilder.Prepare(RepositoryFiles.Model(file), sizes, parts, _store, (analysis, n) => Balancer.Balance(analysis, n));
        var split = prepared.Splits.Single(s => s.Parts == parts);
        Assert.Contains(prepared.Analysis.Graph.Inputs[0].Type.TensorType.Shape.Dim, d => !d.HasDimValue); // the model really is dynamic

        var stages = new List<IActorRef>();
        foreach (var spec in split.Stages)
        {
            stages.Add(ChildActorOf(StageActor.Props(parts, spec, prepared.FilesBySha[spec.File.Sha256], 1, 65536)));
            var reply = ExpectMsg<object>(TimeSpan.FromSeconds(30));
            Assert.False(reply is StageLoadFailed, $"stage {spec.Index} of {parts} did not load: {(reply as StageLoadFailed)?.Reason}");
            Assert.Equal(spec.Index, Assert.IsType<StageReady>(reply).Index);
        }

        var sink = CreateTestProbe();
        var ingest = CreateTestProbe();
        for (var i = 0; i < stages.Count; i++)
        {
            var supervisor = CreateTestProbe();
            stages[i].Tell(new WireStage("job", 1, [i + 1 < stages.Count ? stages[i + 1] : sink.Ref], ingest.Ref), supervisor.Ref);
            supervisor.ExpectMsg<StageWired>();
            ExpectMsg<StageWiredLocally>();
        }

        var outcomes = new List<FrameOutcome>();
        for (var id = 0; id < 2; id++)
        {
            stages[0].Tell(new Frame(id, "synthetic", 1, 1_700_000_000_000_000 + id, 1, SyntheticSource.Pattern(prepared.SourceInputs, id)));
            var result = sink.ExpectMsg<Frame>(TimeSpan.FromSeconds(30));
            Assert.Equal(id, result.FrameId);
            outcomes.Add(new FrameOutcome(result.FrameId, result.SourceId, result.CaptureUnixMicros, 0, result.Tensors, null));
        }

        ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // nothing rejected
        WholeModelOracle.AssertMatchesWholeModel(prepared, outcomes, everyOutput: true);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            Directory.Delete(_store, recursive: true);
        }
    }
}
