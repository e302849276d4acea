using System.Text.Json;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary><c>pipeline run</c> as a user runs it: worker processes, a real picture, decoded and drawn results.</summary>
public sealed class RunCommandSpecs : IDisposable
{
    private const string Messi = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-run-").FullName;

    [Fact]
    public void A_picture_streamed_through_two_workers_comes_out_with_its_face_decoded_and_drawn()
    {
        Assert.True(File.Exists(Messi), $"{Messi} is missing: install Debian's opencv-doc (.ci/run does).");
        var pictures = Directory.CreateDirectory(Path.Combine(_folder, "pictures")).FullName;
        File.Copy(Messi, Path.Combine(pictures, "messi5.jpg"));
        var results = Path.Combine(_folder, "results.jsonl");
        var annotated = Path.Combine(_folder, "annotated");
        var model = Path.Combine(AppContext.BaseDirectory, "models", "blazeface-back-256.onnx");

        var run = Cli.Run("run", "--model", model, "--source", $"images:{pictures}", "--frames", "1", "--fps", "0", "--nodes", "2",
            "--results", results, "--annotate", annotated, "--json");

        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        using var summary = JsonDocument.Parse(run.Output);
        Assert.Equal(1, summary.RootElement.GetProperty("resultsOut").GetInt64());
        Assert.Equal(0, summary.RootElement.GetProperty("lost").GetInt64());
        Assert.True(summary.RootElement.GetProperty("clean").GetBoolean());
        // Named fields, not tuples (which System.Text.Json writes as {} or item1/item2).
        var point = summary.RootElement.GetProperty("throughputSeries")[0];
        Assert.True(point.GetProperty("framesPerSecond").GetDouble() > 0);
        Assert.Equal(0, point.GetProperty("seconds").GetDouble());
        Assert.DoesNotContain("item1", run.Output, StringComparison.OrdinalIgnoreCase);
        using var line = JsonDocument.Parse(File.ReadAllLines(results).Single());
        var faces = line.RootElement.GetProperty("blazeface").GetProperty("faces");
        Assert.Equal(1, faces.GetArrayLength());
        Assert.True(faces[0].GetProperty("score").GetDouble() > 0.5);
        var png = Assert.Single(Directory.GetFiles(annotated, "*.png"));
        Assert.True(new FileInfo(png).Length > 10_000);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
