using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;
using PipelineActors.Onnx;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.TestSupport;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Sources;

/// <summary>
/// Sources against hostile input and leaks, with real ffmpeg (review S5, S6): camera passwords hidden everywhere but
/// ffmpeg's own arguments, playlists that would open other files refused, a path that looks like an option still a file.
/// </summary>
public sealed class SourceSafetySpecs : IDisposable
{
    private const string Password = "Hunter2-not-for-logs";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private static readonly ModelProfile Face = new("input:0", 24, 32, TensorLayout.Nhwc, ChannelOrder.Rgb, 1 / 127.5f, [1, 1, 1], [1, 1, 1]);
    private readonly Media _media = new();
    private readonly ITestOutputHelper _output;

    public SourceSafetySpecs(ITestOutputHelper output)
    {
        _output = output;
    }

    [Theory]
    [InlineData("rtsp://admin:pw@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1")]
    [InlineData("rtsp://admin:p@ss@10.0.0.5/stream1?listen", "rtsp://***@10.0.0.5/stream1?listen")]
    [InlineData("HTTPS://user@cam.local/feed.mjpg", "HTTPS://***@cam.local/feed.mjpg")]
    [InlineData(
        "ffmpeg said: rtsp://a:b@h:1/x: 401 Unauthorized | http://c:d@e/f",
        "ffmpeg said: rtsp://***@h:1/x: 401 Unauthorized | http://***@e/f")]
    [InlineData("rtsp://10.0.0.5:554/stream1", "rtsp://10.0.0.5:554/stream1")]
    [InlineData("video:/clips/a@b.mp4", "video:/clips/a@b.mp4")]
    public void Camera_credentials_are_hidden_in_any_text(string text, string hidden) =>
        Assert.Equal(hidden, SourceCredentials.Redact(text));

    [Fact]
    public void A_credentialed_camera_streams_with_the_real_url_while_its_id_and_command_line_hide_the_password()
    {
        var port = TestPorts.Free();
        var camera = Media.ServeMjpeg(port);
        try
        {
            var url = $"http://admin:{Password}@127.0.0.1:{port}/feed.mjpg";
            using var source = (FfmpegSource)SourceSpec.Parse(url, Face, new FrameSourceOptions(Uint8Pixels: true));

            var frames = Enumerable.Range(0, 5).Select(_ => ReadWithin(source)).ToList();

            Assert.All(frames, f => Assert.NotNull(f)); // ffmpeg had the real URL: the camera answered it
            Assert.Equal($"http://***@127.0.0.1:{port}/feed.mjpg", source.Id);
            Assert.DoesNotContain(Password, source.CommandLine, StringComparison.Ordinal);
            Assert.Contains("-protocol_whitelist http,https,tcp,tls,crypto", source.CommandLine, StringComparison.Ordinal);
        }
        finally
        {
            Media.Stop(camera);
        }
    }

    [Fact]
    public void What_ffmpeg_says_about_a_credentialed_camera_that_refuses_carries_no_password()
    {
        var port = TestPorts.Free();
        var options = new FrameSourceOptions(Ffmpeg: new FfmpegOptions(MaxRestarts: 1, FirstRestartDelay: TimeSpan.FromMilliseconds(50)));
        using var source = (FfmpegSource)SourceSpec.Parse($"http://admin:{Password}@127.0.0.1:{port}/feed.mjpg", Face, options);

        Assert.Null(ReadWithin(source));

        var faults = source.Faults.Recent;
        foreach (var fault in faults)
        {
            _output.WriteLine(fault.Message);
        }

        Assert.Equal(2, faults.Count);
        Assert.Contains(faults, f => f.Message.Contains("ffmpeg said:", StringComparison.Ordinal));
        Assert.All(faults, f =>
        {
            Assert.DoesNotContain(Password, f.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, f.SourceId, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task A_listening_rtsp_source_binds_the_address_it_is_given_and_says_where()
    {
        var port = TestPorts.Free();
        var notes = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var source = (FfmpegSource)SourceSpec.Parse($"rtsp://127.0.0.1:{port}/live?listen", Face, new FrameSourceOptions(FramesPerSecond: 30));
        source.Faults.Reported += fault => notes.Enqueue(fault.Message);
        var reader = Task.Run(source.Read);

        var listening = WaitForListener(port, TimeSpan.FromSeconds(15));

        Assert.Equal(IPAddress.Loopback.ToString(), listening);
        Assert.Contains(notes, n => n.Contains($"listening for an RTSP push on 127.0.0.1:{port}", StringComparison.Ordinal));
        Assert.Equal(0, source.Faults.Count); // a note, not a fault
        Assert.Contains("-protocol_whitelist rtsp,rtsps,rtp,srtp,udp,tcp,tls -rtsp_flags listen", source.CommandLine, StringComparison.Ordinal);
        source.Dispose();
        Assert.Same(reader, await Task.WhenAny(reader, Task.Delay(Patience)));
    }

    [Theory]
    [InlineData("playlist.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")]
    [InlineData("renamed.mp4", "\uFEFF#EXTM3U\n#EXTINF:2.0,\nhttp://127.0.0.1:9/segment.ts\n#EXT-X-ENDLIST\n")]
    [InlineData("list.mp4", "ffconcat version 1.0\nfile '/etc/passwd'\n")]
    public void A_playlist_posing_as_a_video_is_refused_in_one_sentence(string name, string content)
    {
        var path = Path.Combine(_media.Folder, name);
        File.WriteAllText(path, content);

        var e = Assert.Throws<PipelineInputException>(() => SourceSpec.Parse($"video:{path}", Face));

        Assert.Contains("is a playlist, not a video", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_video_file_source_lets_ffmpeg_open_local_files_only()
    {
        var clip = _media.Clip("clip.mp4", seconds: 1, rate: 10);
        using var source = (FfmpegSource)SourceSpec.Parse($"video:{clip}", Face);

        Assert.Contains($"-protocol_whitelist file,pipe -i file:{clip}", source.CommandLine, StringComparison.Ordinal);
        Assert.NotNull(ReadWithin(source));
    }

    public void Dispose() => _media.Dispose();

    /// <summary>The local address of the TCP socket listening on <paramref name="port"/>, from /proc/net/tcp and tcp6.</summary>
    internal static string WaitForListener(int port, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
            {
                foreach (var line in File.ReadLines(table).Skip(1))
                {
                    var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    var local = fields[1].Split(':');
                    if (fields[3] == "0A" && Convert.ToInt32(local[1], 16) == port)
                    {
                        // The address is written as 32-bit words in the machine's (little-endian) order.
                        var bytes = Enumerable.Range(0, local[0].Length / 8)
                            .SelectMany(w => BitConverter.GetBytes(Convert.ToUInt32(local[0].Substring(w * 8, 8), 16)))
                            .ToArray();
                        return new IPAddress(bytes).ToString();
                    }
                }
            }

            Thread.Sleep(100);
        }

        throw new TimeoutException($"nothing listened on TCP port {port} within {patience.TotalSeconds:0} s");
    }

    internal static IReadOnlyList<HostTensor>? ReadWithin(IFrameSource source)
    {
        var read = Task.Run(source.Read);
        Assert.True(read.Wait(Patience), $"{source.Id}: Read() blocked for over {Patience.TotalSeconds} s.");
        return read.Result;
    }
}

/// <summary>Runs alone: it changes the process's current folder, which every test running beside it would see.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CurrentFolderCollection
{
    public const string Name = "current folder";
}

/// <summary>A file named like an option, given by a relative name as a user types it (review S6).</summary>
[Collection(CurrentFolderCollection.Name)]
public sealed class DashNamedFileSpecs : IDisposable
{
    private static readonly ModelProfile Face = new("input:0", 24, 32, TensorLayout.Nhwc, ChannelOrder.Rgb, 1 / 127.5f, [1, 1, 1], [1, 1, 1]);
    private readonly Media _media = new();

    [Fact]
    public void A_video_file_whose_name_starts_with_a_dash_is_read_as_a_file_not_taken_for_an_option()
    {
        var clip = _media.Clip("-version.mp4", seconds: 1, rate: 10);
        var folder = Path.GetDirectoryName(clip)!;
        var was = Environment.CurrentDirectory;
        IReadOnlyList<HostTensor>? first;
        double? rate;
        Environment.CurrentDirectory = folder;
        try
        {
            rate = Ffmpeg.ProbeFramesPerSecond("-version.mp4");
            using var source = (FfmpegSource)SourceSpec.Parse("video:-version.mp4", Face);
            Assert.Contains($"-i file:{clip}", source.CommandLine, StringComparison.Ordinal);
            first = SourceSafetySpecs.ReadWithin(source);
            Assert.Equal(0, source.Faults.Count);
        }
        finally
        {
            Environment.CurrentDirectory = was;
        }

        Assert.NotNull(first); // ffmpeg -version would have printed its version and given no frame
        Assert.Equal(10, rate);
    }

    public void Dispose() => _media.Dispose();
}
