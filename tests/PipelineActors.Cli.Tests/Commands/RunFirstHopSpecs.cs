using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline run --first-hop jpeg:Q</c> with real worker processes from every kind of source the ingest reads (synthetic,
/// a folder of pictures, a video file through ffmpeg, a live MJPEG camera served by ffmpeg; the ingest reads no MQTT source):
/// the frames cross as JPEG (the report's first-hop bytes and the first stage's bytes in are a fraction of the raw pixels) and
/// the results agree with the same source's run on raw pixels, within what JPEG can meet, on the bundled pretrained models
/// and real pictures.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RunFirstHopSpecs(ITestOutputHelper log) : IDisposable
{
    private const string Pictures = "/usr/share/doc/opencv-doc/examples/data";
    private const long FacePixels = 256 * 256 * 3;
    private const long ClassifierPixels = 3 * 48 * 192;

    private static readonly string[] Faces = ["basketball1.png", "basketball2.png", "left06.jpg", "messi5.jpg", "right06.jpg",
        "text_defocus.jpg", "fruits.jpg", "baboon.jpg"];

    private readonly TempFolder _folder = new();

    private static string Face => RepositoryFiles.Model("blazeface-back-256.onnx");

    private static string Classifier => RepositoryFiles.Model("paddleocr-textdir-cls.onnx");

    [Fact(Timeout = 300_000)]
    public async Task A_synthetic_source_on_two_workers_crosses_as_jpeg_and_the_classifier_agrees_with_raw_pixels()
    {
        var raw = await Task.Run(() => Run(Classifier, "synthetic", "raw", 12, nodes: 2));
        var jpeg = await Task.Run(() => Run(Classifier, "synthetic", "jpeg:90", 12, nodes: 2));

        AssertCrossedAsJpeg(raw, jpeg, ClassifierPixels, "jpeg:90");
        AssertClassifierAgrees(raw, jpeg, "synthetic");
    }

    [Fact(Timeout = 300_000)]
    public async Task A_folder_of_real_pictures_crosses_as_jpeg_and_blazeface_finds_the_faces_it_finds_on_raw_pixels()
    {
        var folder = Directory.CreateDirectory(_folder["pictures"]).FullName;
        foreach (var file in Faces)
        {
            var from = Path.Combine(Pictures, file);
            Assert.True(File.Exists(from), $"{from} is missing: install Debian's opencv-doc (apt-get install -y opencv-doc).");
            File.Copy(from, Path.Combine(folder, file));
        }

        var raw = await Task.Run(() => Run(Face, $"images:{folder}", "raw", Faces.Length));
        var jpeg = await Task.Run(() => Run(Face, $"images:{folder}", "jpeg:90", Faces.Length));

        AssertCrossedAsJpeg(raw, jpeg, FacePixels, "jpeg:90");
        AssertFacesAgree(raw, jpeg, "images", minimumFaces: 5);
    }

    [Fact(Timeout = 300_000)]
    public async Task A_video_file_through_ffmpeg_crosses_as_jpeg_and_blazeface_finds_the_faces_it_finds_on_raw_pixels()
    {
        // Megamind.avi has a face in most frames; vtest.avi's pedestrians have none BlazeFace finds, and the text-direction
        // classifier on its street scenes moves by up to 0.17 between neighbouring frames already, so it measures little.
        var video = Path.Combine(Pictures, "Megamind.avi");
        Assert.True(File.Exists(video), $"{video} is missing: install Debian's opencv-doc (apt-get install -y opencv-doc).");

        var raw = await Task.Run(() => Run(Face, $"video:{video}", "raw", 20));
        var jpeg = await Task.Run(() => Run(Face, $"video:{video}", "jpeg:75", 20));

        AssertCrossedAsJpeg(raw, jpeg, FacePixels, "jpeg:75");
        AssertFacesAgree(raw, jpeg, "video", minimumFaces: 15);
    }

    [Fact(Timeout = 300_000)]
    public async Task A_live_mjpeg_camera_crosses_as_jpeg_and_blazeface_finds_the_face_of_every_frame_as_on_raw_pixels()
    {
        // The camera shows one still photograph, so every frame is the same picture whichever frames a live source skips.
        var raw = await Task.Run(() => WithCamera("messi5.jpg", url => Run(Face, url, "raw", 8, minimumResults: 3)));
        var jpeg = await Task.Run(() => WithCamera("messi5.jpg", url => Run(Face, url, "jpeg:90", 8, minimumResults: 3)));

        AssertCrossedAsJpeg(raw, jpeg, FacePixels, "jpeg:90");
        var expected = Assert.Single(FacesOf(raw.Results[0]));
        foreach (var line in jpeg.Results)
        {
            var found = FacesOf(line);
            var best = found.Count == 0 ? 0 : found.Max(f => Iou(f.Box, expected.Box));
            Assert.True(best >= 0.7, $"camera frame {line.GetProperty("frame")}: best IoU {best:0.00} with the raw face ({found.Count} face(s))");
        }

        log.WriteLine($"camera: {jpeg.Results.Count} JPEG frames each found the raw frame's face (score {expected.Score:0.000})");
    }

    [Theory]
    [InlineData("png")]
    [InlineData("jpeg:0")]
    [InlineData("jpeg:101")]
    [InlineData("jpeg:high")]
    public void A_first_hop_that_is_not_raw_or_jpeg_Q_is_one_sentence_and_exit_code_2(string hop)
    {
        Cli.AssertUserError(Cli.Run("run", "--model", Face, "--nodes", "1", "--first-hop", hop), $"'{hop}'", "jpeg:Q");
        Cli.AssertUserError(
            Cli.Run("job", "submit", "--name", "cam-1", "--model", Face, "--first-hop", hop, "--seed", "akka.ssl.tcp://pipeline@127.0.0.1:9"),
            $"'{hop}'", "jpeg:Q");
    }

    [Fact]
    public void Jpeg_on_the_first_hop_of_a_model_without_a_profile_is_one_sentence_before_any_worker_starts()
    {
        var model = _folder["bare.onnx"];
        File.Copy(Face, model);

        Cli.AssertUserError(Cli.Run("run", "--model", model, "--nodes", "1", "--first-hop", "jpeg"), "--first-hop jpeg:90", ".profile.json");
    }

    public void Dispose() => _folder.Dispose();

    private static void AssertCrossedAsJpeg(RunOutcome raw, RunOutcome jpeg, long pixels, string hop)
    {
        Assert.Equal("raw", raw.Report.GetProperty("firstHop").GetString());
        Assert.Equal(hop, jpeg.Report.GetProperty("firstHop").GetString());
        Assert.Equal(pixels, raw.Report.GetProperty("firstHopBytesPerFrame").GetInt64());
        Assert.Equal(pixels, jpeg.Report.GetProperty("firstHopRawBytesPerFrame").GetInt64());
        var sent = jpeg.Report.GetProperty("firstHopBytesPerFrame").GetInt64();
        Assert.True(sent > 0 && sent * 3 < pixels, $"{hop}: {sent} bytes a frame on the first hop for {pixels} bytes of pixels");

        // What the first stage received (its frames as they arrived, chunked and framed) is the JPEG, not the pixels.
        var stageIn = jpeg.Report.GetProperty("stages")[0].GetProperty("bytesInPerFrame").GetInt64();
        Assert.True(stageIn < pixels / 2, $"the first stage received {stageIn} bytes a frame with {hop}");
        foreach (var outcome in new[] { raw, jpeg })
        {
            foreach (var counter in new[] { "lost", "duplicated", "outOfOrder", "failed" })
            {
                Assert.True(outcome.Report.GetProperty(counter).GetInt64() == 0, $"{counter} = {outcome.Report.GetProperty(counter)}");
            }
        }
    }

    private void AssertClassifierAgrees(RunOutcome raw, RunOutcome jpeg, string kind)
    {
        Assert.Equal(raw.Results.Count, jpeg.Results.Count);
        var agreeing = 0;
        var worst = 0.0;
        foreach (var (expected, actual) in raw.Results.Zip(jpeg.Results))
        {
            Assert.Equal(expected.GetProperty("frame").GetInt64(), actual.GetProperty("frame").GetInt64());
            var (a, b) = (ClassZero(expected), ClassZero(actual));
            worst = Math.Max(worst, Math.Abs(a - b));
            agreeing += (a >= 0.5) == (b >= 0.5) ? 1 : 0;
        }

        var agreement = (double)agreeing / raw.Results.Count;
        log.WriteLine($"{kind}: 0/180 agreement {agreement:P0} over {raw.Results.Count} frames, largest change of P(0) {worst:0.000}");
        Assert.True(agreement >= 0.9, $"{kind}: the classifier agreed on {agreement:P0} of {raw.Results.Count} frames");
        Assert.True(worst <= 0.15, $"{kind}: P(0 degrees) moved by {worst:0.000} on one frame");
    }

    private void AssertFacesAgree(RunOutcome raw, RunOutcome jpeg, string kind, int minimumFaces)
    {
        Assert.Equal(raw.Results.Count, jpeg.Results.Count);
        var (expected, matched, ious) = (0, 0, new List<double>());
        foreach (var (r, j) in raw.Results.Zip(jpeg.Results))
        {
            var found = FacesOf(j);
            foreach (var face in FacesOf(r).Where(f => f.Score >= 0.7))
            {
                expected++;
                var best = found.Count == 0 ? 0 : found.Max(f => Iou(f.Box, face.Box));
                if (best >= 0.5)
                {
                    matched++;
                    ious.Add(best);
                }
            }
        }

        var recall = expected == 0 ? 0 : (double)matched / expected;
        log.WriteLine($"{kind}: {matched} of {expected} confident raw faces found on JPEG (recall {recall:P0}), mean IoU "
            + $"{(ious.Count == 0 ? 0 : ious.Average()):0.000}");
        Assert.True(expected >= minimumFaces, $"{kind}: only {expected} confident faces on raw pixels");
        Assert.True(recall >= 0.8, $"{kind}: recall {recall:P0}");
        Assert.True(ious.Average() >= 0.75, $"{kind}: mean IoU {ious.Average():0.000}");
    }

    private RunOutcome Run(string model, string source, string hop, int frames, int nodes = 1, int? minimumResults = null)
    {
        var results = _folder[$"results-{Guid.NewGuid():N}.jsonl"];
        var run = Cli.Run(
            "run", "--model", model, "--nodes", nodes.ToString(CultureInfo.InvariantCulture), "--frames",
                frames.ToString(CultureInfo.InvariantCulture),
            "--fps", "0", "--source", source, "--first-hop", hop, "--results", results, "--json");
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        var report = JsonDocument.Parse(run.Output).RootElement.Clone();
        var lines = File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.True(lines.Count >= (minimumResults ?? frames), $"{source} {hop}: {lines.Count} results of {frames} frames");
        var (firstHopBytes, encodeMs) = (report.GetProperty("firstHopBytesPerFrame"), report.GetProperty("firstHopEncodeMsPerFrame"));
        log.WriteLine($"{Path.GetFileName(model)} from {source.Split(':')[0]} with {hop}: first hop {firstHopBytes} bytes a frame, "
            + $"encode {encodeMs} ms, stage 0 in {report.GetProperty("stages")[0].GetProperty("bytesInPerFrame")} bytes");
        return new RunOutcome(report, lines);
    }

    private static T WithCamera<T>(string picture, Func<string, T> run)
    {
        var path = Path.Combine(Pictures, picture);
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's opencv-doc (apt-get install -y opencv-doc).");
        var port = TestPorts.Free();
        var start = new ProcessStartInfo("ffmpeg") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var argument in new[]
        {
            "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-loop", "1", "-framerate", "10", "-i", path, "-t", "60",
            "-q:v", "3", "-f", "mpjpeg", "-listen", "1", string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/feed.mjpg"),
        })
        {
            start.ArgumentList.Add(argument);
        }

        using var camera = Process.Start(start)!;
        try
        {
            Thread.Sleep(500); // ffmpeg listens before the run's source connects; a source that connects early retries
            return run(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/feed.mjpg"));
        }
        finally
        {
            try
            {
                camera.Kill(entireProcessTree: true);
                camera.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    private static double ClassZero(JsonElement line)
    {
        var decoded = line.GetProperty("paddleocr-cls");
        var score = decoded.GetProperty("score").GetDouble();
        return decoded.GetProperty("class").GetInt32() == 0 ? score : 1 - score;
    }

    private static List<(double[] Box, double Score)> FacesOf(JsonElement line) =>
        line.GetProperty("blazeface").GetProperty("faces").EnumerateArray().Select(f =>
        {
            var b = f.GetProperty("box");
            return (new[] { b.GetProperty("x").GetDouble(), b.GetProperty("y").GetDouble(), b.GetProperty("width").GetDouble(),
                b.GetProperty("height").GetDouble() },
                f.GetProperty("score").GetDouble());
        }).ToList();

    private static double Iou(double[] a, double[] b)
    {
        var w = Math.Min(a[0] + a[2], b[0] + b[2]) - Math.Max(a[0], b[0]);
        var h = Math.Min(a[1] + a[3], b[1] + b[3]) - Math.Max(a[1], b[1]);
        var inter = Math.Max(0, w) * Math.Max(0, h);
        var union = (a[2] * a[3]) + (b[2] * b[3]) - inter;
        return union <= 0 ? 0 : inter / union;
    }

    private sealed record RunOutcome(JsonElement Report, List<JsonElement> Results);
}
