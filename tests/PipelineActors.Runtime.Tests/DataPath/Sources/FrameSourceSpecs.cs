using System.Diagnostics;
using System.Runtime.InteropServices;
using Xunit.Abstractions;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Sources;

/// <summary>Every kind of source on media that ffmpeg makes itself: files, folders of pictures, an MJPEG camera on 127.0.0.1, and the
/// faults of each.</summary>
public sealed class FrameSourceSpecs : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    // BlazeFace's normalisation (RGB, NHWC, x/127.5 - 1) at a small size.
    private static readonly ModelProfile Face = new("input:0", 24, 32, TensorLayout.Nhwc, ChannelOrder.Rgb, 1 / 127.5f, [1, 1, 1], [1, 1, 1]);

    // Plain x/255 in BGR planes, the kind of profile that may send uint8 pixels.
    private static readonly ModelProfile Planes = new("x", 24, 32, TensorLayout.Nchw, ChannelOrder.Bgr, 1 / 255f, [0, 0, 0], [1, 1, 1]);

    private readonly Media _media = new();
    private readonly ITestOutputHelper _output;

    public FrameSourceSpecs(ITestOutputHelper output)
    {
        _output = output;
    }

    public void Dispose() => _media.Dispose();

    [Fact]
    public void Synthetic_gives_the_model_shaped_pattern_or_with_a_size_a_resized_camera_picture()
    {
        using var plain = SourceSpec.Parse("synthetic", Planes, new FrameSourceOptions(Uint8Pixels: true, Frames: 2));
        var info = Planes.InputInfo(uint8Pixels: true);
        Assert.Equal(SyntheticSource.Pattern([info], 0), plain.Read());
        Assert.Equal(SyntheticSource.Pattern([info], 1), plain.Read());
        Assert.Null(plain.Read());
        Assert.False(plain.IsLive);

        using var camera = SourceSpec.Parse("synthetic:640x480@30", Face);
        Assert.True(camera.IsLive);
        Assert.Equal(30, camera.FramesPerSecond);
        var tensor = Assert.Single(camera.Read()!);
        Assert.Equal(("input:0", DataType.Float), (tensor.Name, tensor.ElementType));
        Assert.Equal(new long[] { 1, 24, 32, 3 }, tensor.Shape);
        Assert.NotEqual(tensor, Assert.Single(camera.Read()!)); // the pattern moves

        Assert.Throws<PipelineInputException>(() => SourceSpec.Parse("synthetic:640by480", Face));
        Assert.Throws<PipelineInputException>(() => SourceSpec.Parse("synthetic@fast", Face));
        // uint8 pixels for any profile: the pipeline's first stage applies the profile's normalisation.
        using var pixels = SourceSpec.Parse("synthetic", Face, new FrameSourceOptions(Uint8Pixels: true, Frames: 1));
        Assert.Equal(DataType.Uint8, pixels.Read()![0].ElementType);
    }

    [Fact]
    public void Images_are_read_in_name_order_decoded_as_rgb_and_preprocessed_once_or_looped()
    {
        _media.Picture("pictures/b.png", "red");
        _media.Picture("pictures/a.jpg", "blue");
        File.WriteAllText(Path.Combine(_media.Folder, "pictures", "notes.txt"), "not a picture");
        var folder = Path.Combine(_media.Folder, "pictures");

        using (var once = SourceSpec.Parse("images:" + folder, Face))
        {
            Assert.False(once.IsLive);
            AssertFlat(once.Read(), red: -1, green: -1, blue: 1, tolerance: 0.05f); // a.jpg, blue (JPEG is lossy)
            AssertFlat(once.Read(), red: 1, green: -1, blue: -1, tolerance: 0.02f); // b.png, red
            Assert.Null(once.Read());
            Assert.Equal(0, ((IReportsFaults)once).Faults.Count);
        }

        using var looped = SourceSpec.Parse($"images:{folder}?loop", Planes, new FrameSourceOptions(Uint8Pixels: true));
        var frames = Enumerable.Range(0, 3).Select(_ => Assert.Single(looped.Read()!)).ToList();
        Assert.Equal(DataType.Uint8, frames[0].ElementType);
        Assert.Equal(new long[] { 1, 3, 24, 32 }, frames[0].Shape);
        Assert.InRange(frames[0].Data[0], 250, 255); // a.jpg: plane 0 is blue in BGR
        Assert.InRange(frames[1].Data[0], 0, 3); // b.png: red has no blue
        Assert.Equal(frames[0], frames[2]); // the loop starts again at a.jpg
    }

    [Fact]
    public void A_corrupt_jpeg_is_reported_and_skipped_without_throwing_out_of_read()
    {
        _media.Picture("pictures/a.png", "red");
        var corrupt = Path.Combine(_media.Folder, "pictures", "b.jpg");
        File.WriteAllBytes(corrupt, RandomBytes(4096));
        _media.Picture("pictures/c.png", "lime");
        var folder = Path.Combine(_media.Folder, "pictures");

        using var source = (ImageFolderSource)SourceSpec.Parse("images:" + folder, Face);
        AssertFlat(source.Read(), red: 1, green: -1, blue: -1, tolerance: 0.02f);
        AssertFlat(source.Read(), red: -1, green: 1, blue: -1, tolerance: 0.02f);
        Assert.Null(source.Read());

        var fault = Assert.Single(source.Faults.Recent);
        Assert.Contains("b.jpg", fault.Message, StringComparison.Ordinal);
        Assert.Contains("skipped", fault.Message, StringComparison.Ordinal);
        Assert.False(fault.Ended);

        // A loop over nothing but corrupt files ends instead of spinning.
        var bad = Directory.CreateDirectory(Path.Combine(_media.Folder, "bad")).FullName;
        File.WriteAllBytes(Path.Combine(bad, "x.jpg"), RandomBytes(100));
        using var hopeless = (ImageFolderSource)SourceSpec.Parse($"images:{bad}?loop", Face);
        Assert.Null(hopeless.Read());
        Assert.True(hopeless.Faults.Recent[^1].Ended);
    }

    [Fact]
    public void A_two_second_clip_at_thirty_fps_gives_sixty_frames_as_fast_as_they_are_read()
    {
        var clip = _media.Clip();
        using var source = (FfmpegSource)SourceSpec.Parse("video:" + clip, Face);
        Assert.False(source.IsLive);
        Assert.Equal(0, source.FramesPerSecond);

        var count = 0;
        while (ReadWithin(source) is { } frame)
        {
            var tensor = Assert.Single(frame);
            Assert.Equal(new long[] { 1, 24, 32, 3 }, tensor.Shape);
            count++;
        }

        Assert.InRange(count, 59, 61);
        Assert.Equal(0, source.Faults.Count); // a clean end is no fault
        Assert.Null(source.Read());
    }

    [Fact]
    public void Video_frames_arrive_as_rgb_in_the_models_channel_order()
    {
        var path = Path.Combine(_media.Folder, "red.mp4");
        Media.Run("-f", "lavfi", "-i", "color=c=red:size=64x48:rate=10", "-t", "0.3", "-pix_fmt", "yuv444p", "-crf", "0", path);

        using var source = SourceSpec.Parse("video:" + path, Planes, new FrameSourceOptions(Uint8Pixels: true));
        var tensor = Assert.Single(ReadWithin(source)!);
        var plane = 24 * 32;
        Assert.All(tensor.Data[..plane], b => Assert.InRange(b, 0, 8)); // blue
        Assert.All(tensor.Data[plane..(2 * plane)], g => Assert.InRange(g, 0, 8)); // green
        Assert.All(tensor.Data[(2 * plane)..], r => Assert.InRange(r, 245, 255)); // red
    }

    [Fact]
    public void A_realtime_clip_is_live_at_its_own_rate_and_a_killed_ffmpeg_is_reported_as_the_end()
    {
        var clip = _media.Clip(seconds: 10);
        using var source = (FfmpegSource)SourceSpec.Parse($"video:{clip}?realtime", Face);
        Assert.True(source.IsLive);
        Assert.Equal(30, source.FramesPerSecond, 3);

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 10; i++)
        {
            Assert.NotNull(ReadWithin(source));
        }

        Assert.True(clock.Elapsed > TimeSpan.FromMilliseconds(200),
            $"10 frames of a 30 fps clip played in real time took only {clock.ElapsedMilliseconds} ms.");

        var pid = source.ProcessId ?? throw new InvalidOperationException("ffmpeg is not running.");
        using (var ffmpeg = Process.GetProcessById(pid))
        {
            ffmpeg.Kill();
        }

        var after = 0;
        while (ReadWithin(source) is not null)
        {
            Assert.True(++after < 100, "frames kept coming after ffmpeg was killed");
        }

        Log(source);
        var fault = Assert.Single(source.Faults.Recent);
        Assert.True(fault.Ended);
        Assert.Contains("killed", fault.Message, StringComparison.Ordinal);
        Assert.Contains("ffmpeg", fault.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispose_kills_ffmpeg()
    {
        var clip = _media.Clip(seconds: 10);
        var source = (FfmpegSource)SourceSpec.Parse($"video:{clip}?realtime", Face);
        Assert.NotNull(ReadWithin(source));
        var pid = source.ProcessId ?? throw new InvalidOperationException("ffmpeg is not running.");

        source.Dispose();

        Assert.False(IsRunning(pid), $"ffmpeg {pid} still runs after Dispose.");
        Assert.Null(source.Read());
    }

    [Fact]
    public void An_mjpeg_camera_over_http_is_live_and_restarts_ffmpeg_with_backoff_after_it_is_killed()
    {
        var port = TestPorts.Free();
        var server = Media.ServeMjpeg(port);
        var options = new FrameSourceOptions(Ffmpeg: new FfmpegOptions(MaxRestarts: 20, FirstRestartDelay: TimeSpan.FromMilliseconds(100),
            MaxRestartDelay: TimeSpan.FromMilliseconds(400)));
        using var source = (FfmpegSource)SourceSpec.Parse($"http://127.0.0.1:{port}/feed.mjpg", Face, options);
        try
        {
            Assert.True(source.IsLive);
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(new long[] { 1, 24, 32, 3 }, Assert.Single(ReadWithin(source)!).Shape);
            }

            Assert.Equal(25, source.FramesPerSecond); // from ffmpeg's "25 tbr"
            var starts = source.Starts;

            // The camera's ffmpeg dies; the stream it served goes with it, and a new one comes up.
            var pid = source.ProcessId ?? throw new InvalidOperationException("ffmpeg is not running.");
            using (var ffmpeg = Process.GetProcessById(pid))
            {
                ffmpeg.Kill();
            }

            Media.Stop(server);
            server = Media.ServeMjpeg(port);

            // Frames still in the pipe come first (small frames: the pipe holds dozens), then the restarted ffmpeg's.
            var buffered = 0;
            while (source.Starts == starts)
            {
                Assert.NotNull(ReadWithin(source));
                Assert.True(++buffered < 200, "ffmpeg was not restarted");
            }

            for (var i = 0; i < 3; i++)
            {
                Assert.NotNull(ReadWithin(source));
            }

            Log(source);
            Assert.NotEmpty(source.Faults.Recent);
            Assert.All(source.Faults.Recent, f => Assert.False(f.Ended));
            Assert.Contains("restart 1 of 20", source.Faults.Recent[0].Message, StringComparison.Ordinal);
        }
        finally
        {
            Media.Stop(server);
        }
    }

    [Fact]
    public void A_camera_that_never_answers_is_restarted_a_bounded_number_of_times_then_ends()
    {
        var port = TestPorts.Free();
        var options = new FrameSourceOptions(Ffmpeg: new FfmpegOptions(MaxRestarts: 2, FirstRestartDelay: TimeSpan.FromMilliseconds(50)));
        using var source = (FfmpegSource)SourceSpec.Parse($"http://127.0.0.1:{port}/feed.mjpg", Face, options);

        Assert.Null(ReadWithin(source));

        Log(source);
        Assert.Equal(3, source.Starts);
        var faults = source.Faults.Recent;
        Assert.Equal(3, faults.Count);
        Assert.Contains("restart 1 of 2", faults[0].Message, StringComparison.Ordinal);
        Assert.Contains("gave up after 2 restarts", faults[2].Message, StringComparison.Ordinal);
        Assert.Contains("ffmpeg said:", faults[2].Message, StringComparison.Ordinal); // its own words (connection refused)
        Assert.True(faults[2].Ended);
    }

    [Fact]
    public void Rtsp_and_v4l2_cameras_are_live_ffmpeg_inputs_and_a_missing_device_is_reported_not_thrown()
    {
        using var rtsp = (FfmpegSource)SourceSpec.Parse("rtsp://127.0.0.1:8554/cam", Face, new FrameSourceOptions(FramesPerSecond: 12));
        Assert.True(rtsp.IsLive);
        Assert.Equal(12, rtsp.FramesPerSecond);
        Assert.Contains("-rtsp_transport tcp", rtsp.CommandLine, StringComparison.Ordinal);
        Assert.Contains("-i rtsp://127.0.0.1:8554/cam", rtsp.CommandLine, StringComparison.Ordinal);
        Assert.Contains("-vf scale=32:24:flags=bilinear -f rawvideo -pix_fmt rgb24 pipe:1", rtsp.CommandLine, StringComparison.Ordinal);

        var options = new FrameSourceOptions(Ffmpeg: new FfmpegOptions(MaxRestarts: 1, FirstRestartDelay: TimeSpan.FromMilliseconds(10)));
        using var camera = (FfmpegSource)SourceSpec.Parse("v4l2:/dev/video-missing-for-test?fps=15", Face, options);
        Assert.True(camera.IsLive);
        Assert.Equal(15, camera.FramesPerSecond);
        Assert.Contains("-f v4l2 -framerate 15 -i /dev/video-missing-for-test", camera.CommandLine, StringComparison.Ordinal);

        Assert.Null(ReadWithin(camera));
        Log(camera);
        Assert.Equal(2, camera.Faults.Count);
        Assert.True(camera.Faults.Recent[^1].Ended);
        Assert.Contains("/dev/video-missing-for-test", camera.Faults.Recent[^1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_ffmpeg_an_ffmpeg_source_is_refused_in_one_sentence_naming_ffmpeg()
    {
        var clip = Path.Combine(_media.Folder, "any.mp4");
        File.WriteAllBytes(clip, [0]);
        var options = new FrameSourceOptions(Ffmpeg: new FfmpegOptions(Program: "ffmpeg-not-installed-here"));

        foreach (var spec in new[] { "video:" + clip, $"video:{clip}?realtime", "rtsp://127.0.0.1:1/cam", "http://127.0.0.1:1/feed.mjpg",
            "v4l2:/dev/video0" })
        {
            var error = Assert.Throws<PipelineInputException>(() => SourceSpec.Parse(spec, Face, options));
            Assert.Contains("ffmpeg", error.Message, StringComparison.Ordinal);
            Assert.Contains("install", error.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("webcam", "Unknown source")]
    [InlineData("", "empty")]
    [InlineData("video:/no/such/clip.mp4", "does not exist")]
    [InlineData("images:/no/such/folder", "does not exist")]
    [InlineData("images:/tmp?shuffle", "unknown option 'shuffle'")]
    [InlineData("video:", "names no file")]
    [InlineData("v4l2:/dev/video0?fps=fast", "fps must be a positive number")]
    public void Malformed_specs_are_refused_in_one_sentence(string spec, string named)
    {
        var error = Assert.Throws<PipelineInputException>(() => SourceSpec.Parse(spec, Face));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_without_pictures_is_refused()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_media.Folder, "empty")).FullName;
        var error = Assert.Throws<PipelineInputException>(() => SourceSpec.Parse("images:" + empty, Face));
        Assert.Contains("no .jpg", error.Message, StringComparison.Ordinal);
    }

    private void Log(FfmpegSource source)
    {
        foreach (var fault in source.Faults.Recent)
        {
            _output.WriteLine($"fault: {fault.Message}{(fault.Ended ? " [ended]" : string.Empty)}");
        }
    }

    private static IReadOnlyList<HostTensor>? ReadWithin(IFrameSource source)
    {
        var read = Task.Run(source.Read);
        Assert.True(read.Wait(Patience), $"{source.Id}: Read() blocked for over {Patience.TotalSeconds} s.");
        return read.Result;
    }

    private static void AssertFlat(IReadOnlyList<HostTensor>? frame, float red, float green, float blue, float tolerance)
    {
        Assert.NotNull(frame);
        var values = MemoryMarshal.Cast<byte, float>(Assert.Single(frame).Data).ToArray();
        for (var i = 0; i < values.Length; i += 3)
        {
            Assert.True(
                Math.Abs(values[i] - red) <= tolerance && Math.Abs(values[i + 1] - green) <= tolerance && Math.Abs(values[i + 2] - blue) <= tolerance,
                $"pixel {i / 3} is ({values[i]}, {values[i + 1]}, {values[i + 2]}), not ({red}, {green}, {blue}).");
        }
    }

    private static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        new Random(7).NextBytes(bytes);
        return bytes;
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
