using System.Text.Json;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.TestSupport;
using PipelineActors.Transfer.Quantization;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline quantize</c> and <c>pipeline split --int8</c> on the pretrained BlazeFace with real frames (Megamind.avi
/// and photographs from Debian's opencv-doc): the int8 model is written beside the model with its profile, runs on
/// ONNX Runtime's int8 kernels, the face measure is reported, the int8 stages chain, and input errors are one sentence.
/// </summary>
public sealed class QuantizeCommandSpecs : IDisposable
{
    private const string Pictures = "/usr/share/doc/opencv-doc/examples/data";

    private readonly TempFolder _folder = new();

    public QuantizeCommandSpecs()
    {
        Directory.CreateDirectory(_folder["pictures"]);
        foreach (var file in new[] { "fruits.jpg", "baboon.jpg", "messi5.jpg", "home.jpg" })
        {
            var from = Path.Combine(Pictures, file);
            Assert.True(File.Exists(from), $"{from} is missing: install Debian's opencv-doc.");
            File.Copy(from, Path.Combine(_folder["pictures"], file));
        }

        File.Copy(RepositoryFiles.Model("blazeface-back-256.onnx"), _folder["blazeface-back-256.onnx"]);
        File.Copy(RepositoryFiles.Model("blazeface-back-256.profile.json"), _folder["blazeface-back-256.profile.json"]);
    }

    private static string Model => RepositoryFiles.Model("blazeface-back-256.onnx");

    /// <summary>A cartoon face in most frames: BlazeFace finds boxes, so the face measure has something to agree on.</summary>
    private static string Video => $"video:{Pictures}/Megamind.avi";

    [Fact]
    public void BlazeFace_quantised_on_real_frames_is_written_beside_the_model_with_its_profile_and_the_face_measure_is_reported()
    {
        var result = Cli.Run("quantize", "--model", _folder["blazeface-back-256.onnx"], "--source", Video, "--frames", "16", "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var row = json.RootElement;
        foreach (var field in new[] { "fp32Ms", "int8Ms", "speedup", "fidelity" })
        {
            Assert.True(row.GetProperty(field).GetDouble() > 0, field);
        }

        Assert.Equal(row.GetProperty("fp32Ms").GetDouble() / row.GetProperty("int8Ms").GetDouble(), row.GetProperty("speedup").GetDouble(), 1e-9);
        Assert.Contains("F1 of face boxes", row.GetProperty("fidelityMeasure").GetString());
        Assert.False(row.GetProperty("evaluatedOnCalibrationFrames").GetBoolean());
        Assert.True(row.GetProperty("task").GetProperty("referenceBoxes").GetInt64() > 0, "the float model found faces to agree on");
        // Measured: F1 0.74 (17 of 17 float faces matched, 29 int8 boxes) with 16 frames calibrated and 16 compared.
        Assert.True(row.GetProperty("fidelity").GetDouble() >= 0.5, $"fidelity {row.GetProperty("fidelity").GetDouble()}");
        Assert.True(row.GetProperty("task").GetProperty("recall").GetDouble() >= 0.8);
        Assert.Contains("QLinearConv", row.GetProperty("int8Kernels").GetString());

        var written = _folder["blazeface-back-256.int8.onnx"];
        Assert.Equal(written, row.GetProperty("out").GetString());
        Assert.Equal(OnnxModelFile.Sha256Hex(File.ReadAllBytes(written)), row.GetProperty("sha256").GetString());
        Assert.Equal(
            File.ReadAllText(_folder["blazeface-back-256.profile.json"]), File.ReadAllText(_folder["blazeface-back-256.int8.profile.json"]));
        Assert.Empty(Directory.EnumerateFiles(_folder.Path, "*.tmp"));
        var model = OnnxModelFile.Load(written).Model;
        Assert.Contains(model.MetadataProps, p => p.Key == QdqRewrite.MetadataKey);
        using var runner = new OrtSession(File.ReadAllBytes(written), optimize: true);
        using var reference = new OrtSession(File.ReadAllBytes(Model));
        Assert.Equal(reference.OutputNames, runner.OutputNames);
    }

    [Fact]
    public void The_table_names_the_measure_the_kernels_and_the_file_written()
    {
        var result = Cli.Run("quantize", "--model", Model, "--source", $"images:{_folder["pictures"]}", "--frames", "2",
            "--out", _folder["out/bf.int8.onnx"]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("int8 ms/frame", result.Output);
        Assert.Contains("speed-up", result.Output);
        Assert.Contains("fidelity: F1 of face boxes", result.Output);
        Assert.Contains("QLinearConv", result.Output);
        Assert.Contains("compared on 2 other frames", result.Output);
        Assert.True(File.Exists(_folder["out/bf.int8.onnx"]));
        Assert.True(File.Exists(_folder["out/bf.int8.profile.json"]));
    }

    [Theory]
    [InlineData("--frames", "0", "--frames must be between 1 and 100000, not 0")]
    [InlineData("--frames", "-3", "--frames must be between 1 and 100000, not -3")]
    [InlineData("--model", "/no/such/model.onnx", "No such model file: '/no/such/model.onnx'")]
    [InlineData("--source", "nonsense:x", "Unknown source 'nonsense:x'")]
    [InlineData("--clip", "median", "--clip takes one of aciq-laplace, aciq-gauss, percentile, minmax, not 'median'")]
    public void A_bad_flag_is_one_sentence_exit_code_2_and_no_model_written(string flag, string value, string message)
    {
        var args = new Dictionary<string, string>
        {
            ["--model"] = _folder["blazeface-back-256.onnx"], ["--source"] = $"images:{_folder["pictures"]}", ["--frames"] = "1",
        };
        args[flag] = value;

        var result = Cli.Run(["quantize", .. args.SelectMany(a => new[] { a.Key, a.Value })]);

        Cli.AssertUserError(result, message);
        Assert.False(File.Exists(_folder["blazeface-back-256.int8.onnx"]));
    }

    [Fact]
    public void A_source_with_no_frames_is_one_sentence_and_no_model_is_written()
    {
        Directory.CreateDirectory(_folder["empty"]);
        File.WriteAllText(_folder["empty/notes.txt"], "no pictures here");

        var result = Cli.Run("quantize", "--model", _folder["blazeface-back-256.onnx"], "--source", $"images:{_folder["empty"]}");

        Assert.Equal(2, result.ExitCode);
        Cli.AssertUserError(result, _folder["empty"]);
        Assert.False(File.Exists(_folder["blazeface-back-256.int8.onnx"]));
    }

    [Fact]
    public void A_model_with_nothing_to_quantise_is_one_sentence_and_no_model_is_written()
    {
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "relu" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.Graph.Input.Add(new ValueInfoProto { Name = "x", Type = FloatType() });
        model.Graph.Output.Add(new ValueInfoProto { Name = "y", Type = FloatType() });
        model.Graph.Node.Add(new NodeProto { OpType = "Relu", Input = { "x" }, Output = { "y" } });
        File.WriteAllBytes(_folder["relu.onnx"], model.ToByteArray());

        var result = Cli.Run("quantize", "--model", _folder["relu.onnx"], "--source", $"images:{_folder["pictures"]}");

        Cli.AssertUserError(result, "'relu.onnx' has no Conv, MatMul or Gemm with a constant weight, so there is nothing to quantise to int8.");
        Assert.False(File.Exists(_folder["relu.int8.onnx"]));
    }

    [Fact]
    public void Split_with_int8_writes_three_int8_stages_on_the_float_cuts_that_chain_by_name()
    {
        var result = Cli.Run("split", Model, "--parts", "3", "--int8", "--source", $"images:{_folder["pictures"]}", "--frames", "4",
            "--out", _folder["split"]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("int8: 3 of 3 stages quantised", result.Output);
        var manifest = SplitManifest.Load(_folder["split"]);
        Assert.Equal(3, manifest.Stages.Count);
        var stages = manifest.Stages.Select(s => File.ReadAllBytes(Path.Combine(_folder["split"], s.File))).ToList();
        for (var i = 0; i < stages.Count; i++)
        {
            Assert.Equal(manifest.Stages[i].Sha256, OnnxModelFile.Sha256Hex(stages[i]));
            var stage = OnnxModelFile.Parse(stages[i], manifest.Stages[i].File);
            Assert.Contains(stage.MetadataProps, p => p.Key == QdqRewrite.MetadataKey);
            Assert.Contains("QLinearConv", ModelQuantizer.Int8Kernels(ModelQuantizer.OptimizedOpTypes(stages[i])));
        }

        // The same frames through the float whole model and through the int8 chain, matched by tensor name.
        var analysis = ModelAnalysis.Analyze(OnnxModelFile.Load(Model));
        using var whole = new OrtSession(File.ReadAllBytes(Model));
        using var chain = new StageChain(stages, optimize: true);
        var frame = analysis.Shapes.InputSizes.ToDictionary(t => t.Name, t => HostTensor.Deterministic(t, 11), StringComparer.Ordinal);
        var expected = whole.Run(frame);
        var actual = chain.Run(frame);
        foreach (var output in analysis.Graph.OutputNames)
        {
            Assert.Equal(expected[output].Info.Shape, actual[output].Info.Shape);
        }

        Assert.True(
            Balancer.Balance(analysis, 3).SequenceEqual(manifest.Boundaries.Select(b => b.Position)), "the cuts are those of the float split");
    }

    [Fact]
    public void Split_with_int8_but_no_source_or_a_source_without_int8_is_one_sentence_and_writes_nothing()
    {
        Cli.AssertUserError(Cli.Run("split", Model, "--parts", "3", "--int8", "--out", _folder["split"]), "--int8 needs --source SPEC");
        Cli.AssertUserError(Cli.Run("split", Model, "--parts", "3", "--source", $"images:{_folder["pictures"]}", "--out", _folder["split"]),
            "--source only calibrates --int8 stages");
        _folder.AssertNoSplitLeftBehind("split");
    }

    private static TypeProto FloatType() =>
        new() { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } };

    public void Dispose() => _folder.Dispose();
}
