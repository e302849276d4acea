using Akka.Actor;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using PipelineActors.Transfer;

namespace PipelineActors.Runtime.Tests.DataPath.Link;

/// <summary>The bundled BlazeFace (NHWC uint8 pixels) and the text-direction classifier (NCHW) prepared for 1..3 workers.</summary>
public sealed class FirstHopModels : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-first-hop-").FullName;

    public FirstHopModels()
    {
        (Face, FaceProfile) = Prepare("blazeface-back-256", 3);
        (Classifier, ClassifierProfile) = Prepare("paddleocr-textdir-cls", 2);
    }

    public PreparedModel Face { get; }

    public ModelProfile FaceProfile { get; }

    public PreparedModel Classifier { get; }

    public ModelProfile ClassifierProfile { get; }

    public string Folder => _folder;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private (PreparedModel, ModelProfile) Prepare(string name, int parts)
    {
        var path = Path.Combine(RepositoryFiles.ModelsFolder, name + ".onnx");
        var profile = ModelProfile.ForModel(path);
        var prepared = JobBuilder.Prepare(
            path, new Dictionary<string, long[]> { [profile.Input] = profile.Shape }, parts, Path.Combine(_folder, name),
            (a, n) => Balancer.Balance(a, n), normalisation: profile.FirstStageNormalisation());
        return (prepared, profile);
    }
}

/// <summary>
/// The first hop as JPEG in the plan and on the first stage: every split's first stage decodes the source picture with the
/// channel axis of its layout, the ingest's encoding reads the plan, and a stage given a JPEG it cannot read, or raw pixels
/// where the plan says JPEG, rejects that frame and keeps serving.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class FirstHopJpegSpecs(FirstHopModels models) : Akka.TestKit.Xunit2.TestKit(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName),
    IClassFixture<FirstHopModels>
{
    [Fact]
    public void Jpeg_on_the_first_hop_is_a_decode_on_the_first_stage_of_every_split_with_the_layouts_channel_axis()
    {
        var face = FirstHopPlan.Apply(models.Face, FirstHop.Parse("jpeg:75"), models.FaceProfile);
        var classifier = FirstHopPlan.Apply(models.Classifier, FirstHop.Parse("jpeg"), models.ClassifierProfile);

        Assert.Equal([1, 2, 3], face.Splits.Select(s => s.Parts));
        foreach (var (prepared, profile, axis, codec) in new[] { (face, models.FaceProfile, 3, "jpeg:75"),
            (classifier, models.ClassifierProfile, 1, "jpeg:90") })
        {
            foreach (var split in prepared.Splits)
            {
                var decode = Assert.Single(split.Stages[0].Decodes!);
                Assert.Equal(new CutCodec(profile.Input, codec, axis, [], []), decode);
                Assert.All(split.Stages.Skip(1), s => Assert.Null(s.Decodes)); // later stages read no source picture
            }
        }

        // Set, not added to: applying it again (the job runner does, after the run did) changes nothing.
        var again = FirstHopPlan.Apply(face, FirstHop.Parse("jpeg:75"), models.FaceProfile);
        Assert.Equal(
            face.Splits.SelectMany(s => s.Stages).Select(s => s.Decodes ?? []).SelectMany(d => d),
            again.Splits.SelectMany(s => s.Stages).Select(s => s.Decodes ?? []).SelectMany(d => d));
        Assert.Same(models.Face, FirstHopPlan.Apply(models.Face, FirstHop.RawPixels, models.FaceProfile));
        Assert.Equal("jpeg:75", FirstHopEncoding.For(face.Splits)!.Text);
        Assert.Null(FirstHopEncoding.For(models.Face.Splits));
    }

    [Fact]
    public void A_model_without_a_profile_or_whose_source_sends_floats_is_one_sentence()
    {
        var path = Path.Combine(models.Folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), path);
        var floats = JobBuilder.Prepare(path, null, 1, Path.Combine(models.Folder, "tinynet"), (a, n) => Balancer.Balance(a, n), pixels: false);

        var noProfile = Assert.Throws<PipelineInputException>(() => FirstHopPlan.Apply(floats, FirstHop.Parse("jpeg"), null));
        var asFloats = Assert.Throws<PipelineInputException>(() =>
            FirstHopPlan.Apply(floats, FirstHop.Parse("jpeg:80"), models.ClassifierProfile with { Input = floats.SourceInputs[0].Name }));

        Assert.Equal("--first-hop jpeg:90 needs the model's .profile.json beside it (it says the picture's layout); without one use "
            + "--first-hop raw.", noProfile.Message);
        Assert.StartsWith(
            $"--first-hop jpeg:80 needs the source to send the model's picture '{floats.SourceInputs[0].Name}' as uint8 pixels", asFloats.Message);
        Assert.Contains("float32", asFloats.Message);
        Assert.EndsWith("use --first-hop raw.", asFloats.Message);
    }

    [Fact]
    public void The_first_stage_decodes_the_ingests_jpeg_rejects_a_corrupt_one_or_raw_pixels_and_keeps_serving()
    {
        var plan = FirstHopPlan.Apply(models.Face, FirstHop.Parse("jpeg:90"), models.FaceProfile);
        var whole = plan.Splits.Single(s => s.Parts == 1).Stages[0];
        var raw = new SyntheticSource(models.Face.SourceInputs, 0, 1).Read()!;
        var encoded = FirstHopEncoding.For(plan.Splits)!.Encode(raw);
        var jpeg = Assert.Single(encoded);
        Assert.Equal(TensorProto.Types.DataType.Uint8, jpeg.ElementType);
        Assert.True(jpeg.Data.Length * 4 < raw[0].Data.Length, $"the JPEG took {jpeg.Data.Length} bytes of {raw[0].Data.Length}");

        var corrupt = jpeg with { Data = jpeg.Data.ToArray() };
        corrupt.Data[^40] ^= 0x10;
        var cut = jpeg with { Shape = [jpeg.Data.Length - 100], Data = jpeg.Data[..^100] };

        var stage = ChildActorOf(StageActor.Props(1, whole, plan.FilesBySha[whole.File.Sha256], 1, 65_536));
        ExpectMsg<StageReady>(TimeSpan.FromSeconds(30));
        var (sink, ingest, supervisor) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        stage.Tell(new WireStage("job-1", 1, [sink.Ref], ingest.Ref), supervisor.Ref);
        supervisor.ExpectMsg<StageWired>();

        stage.Tell(new Frame(1, "synthetic", 1, 0, 1, [corrupt]));
        stage.Tell(new Frame(2, "synthetic", 1, 0, 1, [cut]));
        stage.Tell(new Frame(3, "synthetic", 1, 0, 1, raw)); // the ingest runs a raw plan
        stage.Tell(new Frame(4, "synthetic", 1, 0, 1, encoded));

        var rejected = Enumerable.Range(0, 3).Select(_ => ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10))).ToList();
        Assert.Equal([1L, 2, 3], rejected.Select(r => r.FrameId));
        Assert.Contains("checksum", rejected[0].Reason, StringComparison.Ordinal);
        Assert.Contains("truncated", rejected[1].Reason, StringComparison.Ordinal);
        Assert.Contains("not as the jpeg:90 the plan's first hop says", rejected[2].Reason, StringComparison.Ordinal);
        Assert.All(rejected, r => Assert.Contains($"'{models.FaceProfile.Input}'", r.Reason, StringComparison.Ordinal));
        var result = sink.ExpectMsg<Frame>(TimeSpan.FromSeconds(20));
        Assert.Equal(4, result.FrameId);
        Assert.All(result.Tensors, t => Assert.Equal(TensorProto.Types.DataType.Float, t.ElementType));
        ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }
}
