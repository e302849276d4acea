using PipelineActors.Onnx.Stages;
using PipelineActors.TestSupport;
using PipelineActors.Transfer.Calibration;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline calibrate</c> on the pretrained BlazeFace with real pictures: calibration.json lands beside the split's
/// manifest with every boundary's statistics and covariances, or for named cuts, and input errors are one sentence.
/// </summary>
public sealed class CalibrateCommandSpecs : IDisposable
{
    private const string Pictures = "/usr/share/doc/opencv-doc/examples/data";

    private readonly TempFolder _folder = new();

    public CalibrateCommandSpecs()
    {
        Directory.CreateDirectory(_folder["pictures"]);
        foreach (var file in new[] { "fruits.jpg", "baboon.jpg", "messi5.jpg" })
        {
            File.Copy(Path.Combine(Pictures, file), Path.Combine(_folder["pictures"], file));
        }
    }

    private static string Model => RepositoryFiles.Model("blazeface-back-256.onnx");

    private string Source => $"images:{_folder["pictures"]}";

    [Fact]
    public void Calibration_of_a_split_lands_beside_its_manifest_with_every_boundary()
    {
        var split = Cli.Run("split", Model, "--parts", "3", "--out", _folder["split"]);
        Assert.True(split.ExitCode == 0, split.Error);

        var result = Cli.Run("calibrate", "--model", Model, "--source", Source, "--frames", "2", "--out", _folder["split"]);

        Assert.True(result.ExitCode == 0, result.Error);
        var manifest = SplitManifest.Load(_folder["split"]);
        var calibration = CutCalibration.Load(_folder["split"]);
        Assert.Equal(manifest.Boundaries.Select(b => b.Position), calibration.Boundaries.Select(b => b.Position));
        Assert.Equal(manifest.SourceSha256, calibration.SourceSha256);
        foreach (var boundary in manifest.Boundaries)
        {
            foreach (var tensor in boundary.Tensors.Where(t => t.Dtype == "float32"))
            {
                Assert.Equal(2, calibration.For(boundary.Position, tensor.Name).Frames);
                Assert.Equal(tensor.Shape[1], calibration.For(boundary.Position, tensor.Name).Channels.Length);
                Assert.True(calibration.CovarianceFor(boundary.Position, tensor.Name).Samples > 0);
            }
        }

        Assert.Contains("calibration.json", result.Output);
        Assert.Empty(Directory.EnumerateFiles(_folder["split"], "*.tmp"));
    }

    [Fact]
    public void Named_cuts_are_calibrated_into_a_new_folder()
    {
        var result = Cli.Run("calibrate", "--model", Model, "--source", Source, "--frames", "1", "--cut", "balanced:2", "--out", _folder["cal"]);

        Assert.True(result.ExitCode == 0, result.Error);
        var boundary = Assert.Single(CutCalibration.Load(_folder["cal"]).Boundaries);
        Assert.Equal(1, boundary.Tensors[0].Frames);
    }

    [Theory]
    [InlineData("--frames", "0", "--frames must be between 1 and 100000, not 0")]
    [InlineData("--source", "nonsense:x", "Unknown source 'nonsense:x'")]
    [InlineData("--cut", "99999", "There is no cut 99999")]
    [InlineData("--model", "/no/such/model.onnx", "/no/such/model.onnx")]
    public void A_bad_flag_is_one_sentence_and_exit_code_2(string flag, string value, string message)
    {
        var args = new Dictionary<string, string>
        {
            ["--model"] = Model, ["--source"] = Source, ["--frames"] = "1", ["--cut"] = "balanced:2", ["--out"] = _folder["cal"],
        };
        args[flag] = value;

        Cli.AssertUserError(Cli.Run(["calibrate", .. args.SelectMany(a => new[] { a.Key, a.Value })]), message);
        Assert.False(File.Exists(Path.Combine(_folder["cal"], CutCalibration.FileName)));
    }

    [Fact]
    public void Without_cuts_a_folder_with_no_split_and_both_cut_flags_are_one_sentence_each()
    {
        Cli.AssertUserError(
            Cli.Run("calibrate", "--model", Model, "--source", Source, "--out", _folder["empty"]), "holds no manifest.json, so it names no cuts");
        Cli.AssertUserError(
            Cli.Run("calibrate", "--model", Model, "--source", Source, "--cut", "balanced:2", "--parts", "2", "--out", _folder["empty"]),
            "Give --cut or --parts, not both.");
    }

    public void Dispose() => _folder.Dispose();
}
