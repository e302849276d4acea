using System.Globalization;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;

namespace PipelineActors.Runtime.DataPath.Sources;

/// <summary>Choices that apply to every kind of source.</summary>
/// <param name="Uint8Pixels">Send resized pixels as uint8; the first stage applies the profile's normalisation.</param>
/// <param name="Frames">Stop a synthetic source after this many frames.</param>
/// <param name="FramesPerSecond">The rate of a camera whose rate ffmpeg cannot tell, or of a synthetic source with none in its spec.</param>
public sealed record FrameSourceOptions(bool Uint8Pixels = false, long? Frames = null, double? FramesPerSecond = null, FfmpegOptions? Ffmpeg = null);

/// <summary>
/// Makes a source from a URI-like spec:
/// <c>synthetic[:WxH][@FPS]</c>, <c>images:DIR[?loop][&amp;fps=N]</c>, <c>video:FILE[?realtime][&amp;fps=N]</c>,
/// <c>rtsp://...</c>, <c>http(s)://...</c> (MJPEG), <c>v4l2:/dev/videoN[?fps=N]</c>.
/// </summary>
public static class SourceSpec
{
    public const string Kinds = "synthetic[:WxH][@FPS], images:DIR[?loop], video:FILE[?realtime], rtsp://...[?listen], http://... "
        + "(MJPEG) or v4l2:/dev/videoN";

    /// <summary>What ffmpeg may open for a file or device: the file itself and its output pipe, nothing a playlist names.</summary>
    public const string FileProtocols = "file,pipe";

    /// <summary>What ffmpeg may open for an RTSP camera: RTSP and the transports under it.</summary>
    public const string RtspProtocols = "rtsp,rtsps,rtp,srtp,udp,tcp,tls";

    /// <summary>What ffmpeg may open for an MJPEG-over-HTTP camera.</summary>
    public const string HttpProtocols = "http,https,tcp,tls,crypto";

    public static IFrameSource Parse(string spec, ModelProfile profile, FrameSourceOptions? options = null)
    {
        options ??= new FrameSourceOptions();
        var shown = SourceCredentials.Redact(spec);
        var ffmpeg = options.Ffmpeg ?? new FfmpegOptions();
        if (string.IsNullOrWhiteSpace(spec))
        {
            throw new PipelineInputException($"The source is empty; give one of {Kinds}.");
        }

        if (spec == "synthetic" || spec.StartsWith("synthetic:", StringComparison.Ordinal))
        {
            return Synthetic(spec, profile, options);
        }

        if (spec.StartsWith("images:", StringComparison.Ordinal))
        {
            var (path, query) = Split(spec["images:".Length..], spec, "loop", "fps");
            return new ImageFolderSource(path, new Preprocessor(profile, options.Uint8Pixels), query.ContainsKey("loop"), Rate(query, spec)
                ?? 0, spec);
        }

        if (spec.StartsWith("video:", StringComparison.Ordinal))
        {
            var (path, query) = Split(spec["video:".Length..], spec, "realtime", "fps");
            if (!File.Exists(path))
            {
                throw new PipelineInputException($"Video file '{path}' does not exist.");
            }

            RefusePlaylist(path);
            var realtime = query.ContainsKey("realtime");
            var rate = Rate(query, spec);
            if (realtime && rate is null)
            {
                rate = Ffmpeg.ProbeFramesPerSecond(path, ffmpeg.Program) ?? FfmpegSource.DefaultLiveRate;
            }

            // Local files only, and the path can never read as an option: an HLS playlist that names file:/// or http://
            // segments opens nothing, and a file called -version.mp4 is a file.
            var file = FileUrl(path);
            string[] input = realtime
                ? ["-protocol_whitelist", FileProtocols, "-re", "-i", file]
                : ["-protocol_whitelist", FileProtocols, "-i", file];
            return new FfmpegSource(new FfmpegInput(spec, input, IsLive: realtime, Restart: false, rate ?? 0),
                new Preprocessor(profile, options.Uint8Pixels), ffmpeg);
        }

        if (spec.StartsWith("rtsp://", StringComparison.OrdinalIgnoreCase) || spec.StartsWith("rtsps://", StringComparison.OrdinalIgnoreCase))
        {
            if (spec.EndsWith("?listen", StringComparison.Ordinal))
            {
                // A camera or encoder that pushes: ffmpeg serves RTSP on the address the URL names (and only there) and takes
                // the stream it is sent. The source says where it listens, so an operator sees what it opened.
                var url = SourceCredentials.ExpandEnvironment(spec[..^"?listen".Length]);
                string[] served = ["-protocol_whitelist", RtspProtocols, "-rtsp_flags", "listen", "-rtsp_transport", "tcp", "-i", url];
                var listening = Uri.TryCreate(url, UriKind.Absolute, out var uri)
                    ? $"listening for an RTSP push on {uri.Host}:{(uri.Port > 0 ? uri.Port : 554)} (only that address; no password is asked)"
                    : "listening for an RTSP push";
                return Camera(shown, served, profile, options, ffmpeg, listening);
            }

            // A stalled camera must end ffmpeg (and so be restarted) rather than block for ever; timeout is in microseconds.
            // ${NAME} in the user information is expanded here, on the node that starts ffmpeg, and only into its arguments.
            string[] input = ["-protocol_whitelist", RtspProtocols, "-rtsp_transport", "tcp", "-timeout", "5000000", "-i",
                SourceCredentials.ExpandEnvironment(spec)];
            return Camera(shown, input, profile, options, ffmpeg);
        }

        if (spec.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || spec.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            string[] input = ["-protocol_whitelist", HttpProtocols, "-rw_timeout", "5000000", "-f", "mpjpeg", "-i",
                SourceCredentials.ExpandEnvironment(spec)];
            return Camera(shown, input, profile, options, ffmpeg);
        }

        if (spec.StartsWith("v4l2:", StringComparison.Ordinal))
        {
            var (device, query) = Split(spec["v4l2:".Length..], spec, "fps");
            var rate = Rate(query, spec);
            var input = new List<string> { "-protocol_whitelist", FileProtocols, "-f", "v4l2" };
            if (rate is { } r)
            {
                input.AddRange(["-framerate", r.ToString(CultureInfo.InvariantCulture)]);
            }

            // The v4l2 demuxer opens the device by its name (a file: URL is not a device): an absolute path starts with '/',
            // never with '-'.
            input.AddRange(["-i", Path.GetFullPath(device)]);
            return Camera(spec, input, profile, options with { FramesPerSecond = rate ?? options.FramesPerSecond }, ffmpeg);
        }

        throw new PipelineInputException($"Unknown source '{shown}'; give one of {Kinds}.");
    }

    private static FfmpegSource Camera(
        string id, IReadOnlyList<string> input, ModelProfile profile, FrameSourceOptions options, FfmpegOptions ffmpeg, string? note = null) =>
        new(
            new FfmpegInput(id, input, IsLive: true, Restart: true, options.FramesPerSecond) { StartNote = note },
            new Preprocessor(profile, options.Uint8Pixels),
            ffmpeg);

    /// <summary>
    /// A local path as ffmpeg's <c>file:</c> URL: an absolute path, so neither a leading '-' (an option) nor a colon
    /// (another protocol, such as <c>concat:</c>) changes what ffmpeg opens.
    /// </summary>
    public static string FileUrl(string path) => "file:" + Path.GetFullPath(path);

    private static IFrameSource Synthetic(string spec, ModelProfile profile, FrameSourceOptions options)
    {
        var rest = spec.Length > "synthetic".Length ? spec["synthetic:".Length..] : string.Empty;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        var sizeText = at >= 0 ? rest[..at] : rest;
        var rate = options.FramesPerSecond ?? 0;
        if (at >= 0 && !(double.TryParse(rest[(at + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out rate) && rate >= 0
            && double.IsFinite(rate)))
        {
            throw new PipelineInputException($"'{spec}': the rate after '@' must be a number of frames per second, 0 or more.");
        }

        if (sizeText.Length == 0)
        {
            // Shaped like the model's input: no resize, the pattern the ingest tests know.

            return new SyntheticSource([profile.InputInfo(options.Uint8Pixels)], rate, options.Frames);
        }

        var parts = sizeText.Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var width)
            || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var height)
            || width < 1 || height < 1 || width > 16384 || height > 16384)
        {
            throw new PipelineInputException($"'{spec}': the size must be WIDTHxHEIGHT in pixels, such as synthetic:640x480@30.");
        }

        return new SyntheticCameraSource(width, height, rate, new Preprocessor(profile, options.Uint8Pixels), options.Frames, spec);
    }

    /// <summary>
    /// Refuses a playlist posing as a video (HLS, ffconcat, DASH, whatever its name): ffmpeg would open every file or URL
    /// it lists, such as <c>file:///etc/passwd</c> or a host inside the network. Judged by its first bytes, as ffmpeg does.
    /// </summary>
    private static void RefusePlaylist(string path)
    {
        var head = new byte[512];
        int count;
        try
        {
            using var file = File.OpenRead(path);
            count = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PipelineInputException($"Video file '{path}' cannot be read ({e.Message.TrimEnd('.')}).");
        }

        var text = System.Text.Encoding.UTF8.GetString(head, 0, count).TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        if (text.StartsWith("#EXTM3U", StringComparison.OrdinalIgnoreCase) || text.StartsWith("ffconcat", StringComparison.OrdinalIgnoreCase)
            || (text.StartsWith('<') && text.Contains("<MPD", StringComparison.OrdinalIgnoreCase)))
        {
            throw new PipelineInputException(
                $"Video file '{path}' is a playlist, not a video: it could make ffmpeg open other files or URLs; give the video file itself.");
        }
    }

    /// <summary>Splits <c>PATH?a&amp;b=c</c>; only the named options are accepted.</summary>
    private static (string Path, Dictionary<string, string> Query) Split(string text, string spec, params string[] allowed)
    {
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        var mark = text.LastIndexOf('?');
        if (mark < 0)
        {
            return (RequirePath(text, spec), query);
        }

        foreach (var pair in text[(mark + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? pair : pair[..equals];
            if (!allowed.Contains(key))
            {
                throw new PipelineInputException($"'{spec}': unknown option '{key}'; this kind of source takes {string.Join(", ", allowed)}.");
            }

            query[key] = equals < 0 ? string.Empty : pair[(equals + 1)..];
        }

        return (RequirePath(text[..mark], spec), query);
    }

    private static string RequirePath(string path, string spec) =>
        path.Length > 0 ? path : throw new PipelineInputException($"'{spec}' names no file, folder or device.");

    private static double? Rate(Dictionary<string, string> query, string spec) =>
        !query.TryGetValue("fps", out var text)
            ? null
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) && rate > 0 && double.IsFinite(rate)
                ? rate
                : throw new PipelineInputException($"'{spec}': fps must be a positive number, not '{text}'.");
}

/// <summary>
/// A moving colour pattern at a camera's resolution, preprocessed like a real picture (resized to
/// the model's input). Pixel (x, y) of capture n is R = ((x + y + 3n) mod 64) * 4,
/// G = ((x + 3n) mod 64) * 4, B = (y mod 64) * 4.
/// </summary>
public sealed class SyntheticCameraSource : IFrameSource
{
    private readonly int _width;
    private readonly int _height;
    private readonly Preprocessor _preprocessor;
    private readonly long? _count;
    private readonly byte[] _picture;
    private long _sequence;

    public SyntheticCameraSource(int width, int height, double framesPerSecond, Preprocessor preprocessor, long? count = null, string? id = null)
    {
        _width = width;
        _height = height;
        _preprocessor = preprocessor;
        _count = count;
        _picture = new byte[width * height * 3];
        FramesPerSecond = framesPerSecond;
        IsLive = framesPerSecond > 0;
        Id = id ?? "synthetic";
    }

    public string Id { get; }

    public bool IsLive { get; }

    public double FramesPerSecond { get; }

    public IReadOnlyList<HostTensor>? Read()
    {
        if (_count is { } limit && _sequence >= limit)
        {
            return null;
        }

        Paint(_picture, _width, _height, _sequence++);
        return [_preprocessor.Run(_picture, _width, _height)];
    }

    /// <summary>Writes capture <paramref name="sequence"/>'s RGB24 picture into <paramref name="rgb"/>.</summary>
    public static void Paint(Span<byte> rgb, int width, int height, long sequence)
    {
        var shift = (int)((3 * sequence) & 63);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = ((y * width) + x) * 3;
                rgb[i] = (byte)(((x + y + shift) & 63) * 4);
                rgb[i + 1] = (byte)(((x + shift) & 63) * 4);
                rgb[i + 2] = (byte)((y & 63) * 4);
            }
        }
    }

    public void Dispose()
    {
    }
}
