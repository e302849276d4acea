using System.Runtime.InteropServices;
using Akka.Actor;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using PipelineActors.Transfer.Codecs;
using Xunit.Abstractions;

namespace PipelineActors.Runtime.Tests.DataPath.Link;

/// <summary>tinynet prepared for two workers with int8 on its cut, calibrated on synthetic frames, as <c>pipeline run --codec int8</c>
/// does.</summary>
public sealed class CodedTinyNet : IDisposable
{
    public const int CalibrationFrames = 8;

    private readonly string _folder = Directory.CreateTempSubdirectory("pa-coded-").FullName;

    public CodedTinyNet()
    {
        ModelPath = Path.Combine(_folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), ModelPath);
        Exact = JobBuilder.Prepare(ModelPath, null, 2, Path.Combine(_folder, "store"), (a, parts) => Balancer.Balance(a, parts));
        using var calibration = new SyntheticSource(Exact.SourceInputs, 0, CalibrationFrames);
        Coded = CutCodecPlan.Apply(Exact, CutCodecPlan.Parse("int8"), calibration, CalibrationFrames);
    }

    public string ModelPath { get; }

    /// <summary>A store folder of its own inside the fixture's folder (deleted with it).</summary>
    public string Store(string name) => Path.Combine(_folder, name);

    public PreparedModel Exact { get; }

    public PreparedModel Coded { get; }

    public SplitPlan CodedSplit => Coded.Splits.Single(s => s.Parts == 2);

    public StageSession Session(StageSpec spec) => new(File.ReadAllBytes(Coded.FilesBySha[spec.File.Sha256]), 1);

    /// <summary>Frames after the calibration ones, so that no evaluated frame was calibrated on.</summary>
    public List<IReadOnlyList<HostTensor>> Frames(int count)
    {
        using var source = new SyntheticSource(Exact.SourceInputs, 0, CalibrationFrames + count);
        var frames = new List<IReadOnlyList<HostTensor>>();
        while (source.Read() is { } frame)
        {
            frames.Add(frame);
        }

        return frames.Skip(CalibrationFrames).ToList();
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}

/// <summary>
/// A cut carried with the int8 codec: the plan says which stage encodes and which decodes, the results stay close to the
/// exact whole model while the cut costs a fraction of its exact bytes, and a stage given a coded tensor it cannot read
/// rejects that frame and keeps serving.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CodedCutSpecs(CodedTinyNet tinynet, ITestOutputHelper log)
    : Akka.TestKit.Xunit2.TestKit(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName),
    IClassFixture<CodedTinyNet>
{
    [Fact]
    public void The_plan_has_the_first_stage_encode_its_cut_tensors_with_calibrated_scales_and_the_second_decode_them()
    {
        var (first, second) = (tinynet.CodedSplit.Stages[0], tinynet.CodedSplit.Stages[1]);

        Assert.NotEmpty(first.Encodes!);
        Assert.All(first.Encodes!, c => Assert.Equal("int8", c.Codec));
        Assert.All(first.Encodes!, c => Assert.True(c.Scales.Length > 1 && c.Scales.Length == c.ZeroPoints.Length,
            $"{c.Tensor}: {c.Scales.Length} scales"));
        Assert.Equal(first.Encodes!.Select(c => c.Tensor).Order(), second.Decodes!.Select(c => c.Tensor).Order());
        Assert.All(second.Decodes!, c => Assert.Empty(c.Scales));
        Assert.Null(second.Encodes);
        Assert.Null(first.Decodes);
        // The one-stage split has no cut, and the exact plan codes nothing.
        Assert.Null(tinynet.Coded.Splits.Single(s => s.Parts == 1).Stages[0].Encodes);
        Assert.All(tinynet.Exact.Splits.SelectMany(s => s.Stages), s => Assert.Null(s.Encodes));
    }

    [Fact]
    public void A_cut_tensor_the_codec_would_make_larger_stays_exact()
    {
        // Cut 15 carries flatten's 16 floats (64 bytes): the int8 header and per-channel scales alone outweigh them.
        var exact = JobBuilder.Prepare(tinynet.ModelPath, null, 2, tinynet.Store("late-cut"), (_, parts) => parts == 2 ? [15] : []);
        using var calibration = new SyntheticSource(exact.SourceInputs, 0, 4);

        var coded = CutCodecPlan.Apply(exact, CutCodecPlan.Parse("int8"), calibration, 4);

        var split = coded.Splits.Single(s => s.Parts == 2);
        Assert.Equal(["flatten.output"], split.Stages[0].Outputs);
        Assert.All(split.Stages, s => Assert.Null(s.Encodes));
        Assert.All(split.Stages, s => Assert.Null(s.Decodes));
    }

    [Fact]
    public void Int8_on_the_cut_of_a_two_part_split_agrees_with_the_exact_whole_model_at_under_a_third_of_the_exact_bytes()
    {
        var (first, second) = (tinynet.CodedSplit.Stages[0], tinynet.CodedSplit.Stages[1]);
        var whole = tinynet.Exact.Splits.Single(s => s.Parts == 1).Stages[0];
        using var wholeSession = tinynet.Session(whole);
        using var firstSession = tinynet.Session(first);
        using var secondSession = tinynet.Session(second);
        var (encoder, decoder) = (CutCoding.For(first)!, CutCoding.For(second)!);
        var output = tinynet.Exact.Analysis.Graph.OutputNames[0];

        var frames = tinynet.Frames(24);
        long exactBytes = 0, codedBytes = 0;
        var agreeing = 0;
        var relativeL2 = new List<double>();
        foreach (var (input, id) in frames.Select((f, i) => (f, i)))
        {
            var expected = wholeSession.Run(input).Single(t => t.Name == output);
            var cut = firstSession.Run(input);
            var sent = encoder.Encode(cut);
            // What a link carries for the cut, counted as the stages count it: the encoded frame.
            exactBytes += FrameCodec.EncodedLength(new Frame(id, "synthetic", 1, 0, 1, cut));
            codedBytes += FrameCodec.EncodedLength(new Frame(id, "synthetic", 1, 0, 1, sent));
            var arrived = FrameCodec.Decode(FrameCodec.Encode(new Frame(id, "synthetic", 1, 0, 1, sent))).Tensors;
            var actual = secondSession.Run(decoder.Decode(arrived)).Single(t => t.Name == output);

            relativeL2.Add(HostTensor.RelativeDifference(new HostTensor(expected.Info, expected.Data), new HostTensor(actual.Info, actual.Data)));
            agreeing += ArgMax(expected) == ArgMax(actual) ? 1 : 0;
        }

        var agreement = (double)agreeing / frames.Count;
        var ratio = (double)exactBytes / codedBytes;
        log.WriteLine($"tinynet 2-part, int8 on the cut: {exactBytes / frames.Count} -> {codedBytes / frames.Count} bytes a frame ({ratio:F2}x), "
            + $"top-1 agreement {agreement:P1}, relative L2 mean {relativeL2.Average():E2} max {relativeL2.Max():E2}");
        Assert.True(agreement >= 0.95, $"top-1 agreement {agreement:P1} over {frames.Count} frames (relative L2 mean {relativeL2.Average():E2})");
        Assert.True(relativeL2.Average() < 0.05, $"mean relative L2 {relativeL2.Average():E2}, max {relativeL2.Max():E2}");
        Assert.True(ratio >= 3, $"the cut took {exactBytes / frames.Count} bytes a frame exact and {codedBytes / frames.Count} with int8 "
            + $"({ratio:F2}x)");
    }

    [Fact]
    public void A_coded_tensor_that_is_corrupt_of_another_codec_or_not_coded_is_one_rejected_frame_and_the_stage_keeps_serving()
    {
        var (first, second) = (tinynet.CodedSplit.Stages[0], tinynet.CodedSplit.Stages[1]);
        using var firstSession = tinynet.Session(first);
        var encoder = CutCoding.For(first)!;
        var input = tinynet.Frames(1)[0];
        var cut = firstSession.Run(input);
        var good = encoder.Encode(cut);
        var coded = second.Decodes![0].Tensor;
        var plain = cut.Single(t => t.Name == coded);

        var corrupt = good.Select(t => t.Name == coded ? t with { Data = Flipped(t.Data, 5) } : t).ToList();
        var fp16 = new Fp16Codec().Encode(MemoryMarshal.Cast<byte, float>(plain.Data.AsSpan()), plain.Shape);
        var otherCodec = good.Select(t => t.Name == coded ? t with { Shape = [fp16.Length], Data = fp16 } : t).ToList();
        var huge = good.Select(t => t.Name == coded ? t with { Data = WithFirstDimension(t.Data, 1L << 40) } : t).ToList();

        var stage = ChildActorOf(StageActor.Props(2, second, tinynet.Coded.FilesBySha[second.File.Sha256], 1, 65_536));
        ExpectMsg<StageReady>(TimeSpan.FromSeconds(20));
        var (sink, ingest, supervisor) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());
        stage.Tell(new WireStage("job-1", 1, [sink.Ref], ingest.Ref), supervisor.Ref);
        supervisor.ExpectMsg<StageWired>();

        stage.Tell(new Frame(1, "synthetic", 1, 0, 1, corrupt));
        stage.Tell(new Frame(2, "synthetic", 1, 0, 1, otherCodec));
        stage.Tell(new Frame(3, "synthetic", 1, 0, 1, huge));
        stage.Tell(new Frame(4, "synthetic", 1, 0, 1, cut)); // the sender runs the exact plan
        stage.Tell(new Frame(5, "synthetic", 1, 0, 1, good));

        var rejected = Enumerable.Range(0, 4).Select(_ => ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10))).ToList();
        Assert.Equal([1L, 2, 3, 4], rejected.Select(r => r.FrameId));
        Assert.Contains("checksum", rejected[0].Reason, StringComparison.Ordinal);
        Assert.Contains("codec id 2", rejected[1].Reason, StringComparison.Ordinal);
        Assert.Contains("limit", rejected[2].Reason, StringComparison.Ordinal);
        Assert.Contains("not encoded with int8", rejected[3].Reason, StringComparison.Ordinal);
        Assert.All(rejected, r => Assert.Contains($"'{coded}'", r.Reason, StringComparison.Ordinal));
        var result = sink.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
        Assert.Equal(5, result.FrameId);
        Assert.All(result.Tensors, t => Assert.Equal(TensorProto.Types.DataType.Float, t.ElementType));
        ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    private static int ArgMax(HostTensor tensor)
    {
        var values = MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan());
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            best = values[i] > values[best] ? i : best;
        }

        return best;
    }

    private static byte[] Flipped(byte[] data, int at)
    {
        var copy = data.ToArray();
        copy[at] ^= 0x40;
        return copy;
    }

    /// <summary>The buffer with its first dimension rewritten and its header checksum made good again: a forged size, not noise.</summary>
    private static byte[] WithFirstDimension(byte[] data, long dimension)
    {
        var copy = data.ToArray();
        int rank = copy[3];
        BitConverter.TryWriteBytes(copy.AsSpan(4), dimension);
        long count = 1;
        for (var i = 0; i < rank; i++)
        {
            count *= BitConverter.ToInt64(copy, 4 + (8 * i));
        }

        var end = 4 + (8 * rank);
        BitConverter.TryWriteBytes(copy.AsSpan(end), count);
        var hash = 2166136261u;
        foreach (var b in copy.AsSpan(0, end + 8))
        {
            hash = (hash ^ b) * 16777619u;
        }

        BitConverter.TryWriteBytes(copy.AsSpan(end + 8), hash);
        return copy;
    }
}
