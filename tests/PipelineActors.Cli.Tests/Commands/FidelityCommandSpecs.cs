using System.Text.Json;
using PipelineActors.TestSupport;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline fidelity</c> on the pretrained BlazeFace with real pictures from Debian's opencv-doc: the JSON fields are
/// there and sane, the exact codec agrees fully, lossy codecs send fewer bytes, and every input error is one sentence.
/// </summary>
public sealed class FidelityCommandSpecs : IDisposable
{
    private const string Pictures = "/usr/share/doc/opencv-doc/examples/data";

    private readonly TempFolder _folder = new();

    public FidelityCommandSpecs()
    {
        // Five pictures to calibrate on: frames other than the evaluated ones.
        foreach (var (file, i) in new[] { "fruits.jpg", "baboon.jpg", "messi5.jpg", "home.jpg", "HappyFish.jpg" }.Select((f, i) => (f, i)))
        {
            var from = Path.Combine(Pictures, file);
            Assert.True(File.Exists(from), $"{from} is missing: install Debian's opencv-doc.");
            File.Copy(from, _folder[$"{i}-{file}"]);
        }
    }

    private static string Model => RepositoryFiles.Model("blazeface-back-256.onnx");

    /// <summary>A cartoon face in most frames: BlazeFace finds boxes, so the box measure has something to agree on.</summary>
    private static string Source => $"video:{Pictures}/Megamind.avi";

    private string PictureSource => $"images:{_folder.Path}";

    [Fact]
    public void The_exact_codec_agrees_fully_and_sends_the_zero_suppressed_bytes_while_lossy_codecs_send_fewer()
    {
        var result = Cli.Run("fidelity", "--model", Model, "--source", Source, "--frames", "3", "--calibration-source", PictureSource,
            "--calibration-frames", "2", "--cut", "balanced:2", "--codec", "exact", "--codec", "int8", "--codec", "pca:8+int4+zstd",
            "--codec", "pool2", "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        var rows = JsonDocument.Parse(result.Output).RootElement.EnumerateArray().ToList();
        Assert.Equal(["exact", "int8", "pca:8+int4+zstd", "pool2"], rows.Select(r => r.GetProperty("codec").GetString()));
        foreach (var row in rows)
        {
            foreach (var field in new[] { "compressionRatio", "encodeMs", "decodeMs", "fidelity" })
            {
                var value = row.GetProperty(field).GetDouble();
                Assert.True(double.IsFinite(value) && value >= 0, $"{row.GetProperty("codec")}: {field} = {value}");
            }

            Assert.Equal(3, row.GetProperty("frames").GetInt32());
            Assert.Equal(2, row.GetProperty("calibrationFrames").GetInt32());
            Assert.InRange(row.GetProperty("fidelity").GetDouble(), 0, 1);
            var ratio = row.GetProperty("rawBytesPerFrame").GetDouble() / row.GetProperty("bytesPerFrame").GetDouble();
            Assert.Equal(ratio, row.GetProperty("compressionRatio").GetDouble(), 6);
            Assert.Contains("F1 of face boxes", row.GetProperty("fidelityMeasure").GetString());
        }

        var exact = rows[0];
        Assert.Equal(1.0, exact.GetProperty("fidelity").GetDouble());
        Assert.True(exact.GetProperty("task").GetProperty("referenceBoxes").GetInt64() > 0, "BlazeFace found no face, so boxes were not compared");
        Assert.Equal(1.0, exact.GetProperty("task").GetProperty("recall").GetDouble());
        Assert.Equal(1.0, exact.GetProperty("task").GetProperty("meanMatchedIoU").GetDouble(), 9);
        Assert.Equal(1.0, exact.GetProperty("top1Agreement").GetDouble());
        Assert.True(exact.GetProperty("relativeL2").GetDouble() < 1e-5, $"exact rel. L2 {exact.GetProperty("relativeL2")}");
        // BlazeFace's balanced cut follows a ReLU: zero suppression saves something, never more than the bitmap allows.
        Assert.InRange(exact.GetProperty("compressionRatio").GetDouble(), 1.0, 32.0);
        Assert.Equal(1.5 * 1024 * 1024, exact.GetProperty("rawBytesPerFrame").GetDouble());

        var int8 = rows[1];
        Assert.True(int8.GetProperty("compressionRatio").GetDouble() >= 4, $"int8 ratio {int8.GetProperty("compressionRatio")}");
        Assert.True(int8.GetProperty("relativeL2").GetDouble() > 0, "int8 is lossy but its outputs equal the exact model's");
        Assert.True(int8.GetProperty("encodeMs").GetDouble() > 0 && int8.GetProperty("decodeMs").GetDouble() > 0);
        var pca = rows[2];
        Assert.True(pca.GetProperty("compressionRatio").GetDouble() > int8.GetProperty("compressionRatio").GetDouble());
        Assert.Contains(pca.GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("pca:8 on", StringComparison.Ordinal));
        Assert.True(rows[3].GetProperty("compressionRatio").GetDouble() > exact.GetProperty("compressionRatio").GetDouble());
        Assert.Contains("other frames", exact.GetProperty("method").GetString());
    }

    [Fact]
    public void One_codec_gives_one_json_object_and_the_table_names_the_measure()
    {
        var json = Cli.Run("fidelity", "--model", Model, "--source", Source, "--frames", "1", "--calibration-frames", "1",
            "--cut", "balanced:2", "--codec", "fp16", "--json");
        var table = Cli.Run("fidelity", "--model", Model, "--source", Source, "--frames", "1", "--calibration-frames", "1",
            "--cut", "balanced:2", "--codec", "fp16");

        Assert.True(json.ExitCode == 0, json.Error);
        var row = JsonDocument.Parse(json.Output).RootElement;
        Assert.Equal("fp16", row.GetProperty("codec").GetString());
        Assert.True(row.GetProperty("compressionRatio").GetDouble() >= 1.9, $"fp16 ratio {row.GetProperty("compressionRatio")}");
        Assert.True(table.ExitCode == 0, table.Error);
        Assert.Contains("fp16", table.Output);
        Assert.Contains("fidelity: F1 of face boxes", table.Output);
    }

    [Theory]
    [InlineData("--codec", "brotli", "There is no codec named 'brotli'")]
    [InlineData("--codec", "pca:x", "'pca:x' is not a codec")]
    [InlineData("--cut", "99999", "There is no cut 99999")]
    [InlineData("--cut", "abc", "--cut takes cut positions")]
    [InlineData("--cut", "balanced:1", "--cut balanced:N needs a whole number of parts, 2 or more")]
    [InlineData("--frames", "0", "--frames must be between 1 and 100000, not 0")]
    [InlineData("--source", "nonsense:x", "Unknown source 'nonsense:x'")]
    [InlineData("--source", "video:/no/such/clip.avi", "Video file '/no/such/clip.avi' does not exist")]
    [InlineData("--model", "/no/such/model.onnx", "/no/such/model.onnx")]
    public void A_bad_flag_is_one_sentence_and_exit_code_2(string flag, string value, string message)
    {
        var args = new Dictionary<string, string>
        {
            ["--model"] = Model, ["--source"] = Source, ["--frames"] = "1", ["--cut"] = "balanced:2", ["--codec"] = "int8",
        };
        args[flag] = value;

        var result = Cli.Run(["fidelity", .. args.SelectMany(a => new[] { a.Key, a.Value }), "--calibration-frames", "1"]);

        Cli.AssertUserError(result, message);
    }

    [Fact]
    public void A_source_with_no_frame_left_after_calibration_is_one_sentence_and_exit_code_2()
    {
        var result = Cli.Run("fidelity", "--model", Model, "--source", PictureSource, "--frames", "1", "--calibration-frames", "5",
            "--cut", "balanced:2", "--codec", "exact");

        Cli.AssertUserError(result, "gave no frame after the 5 used for calibration");
    }

    public void Dispose() => _folder.Dispose();
}
