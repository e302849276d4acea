using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;

namespace PipelineActors.Runtime.DataPath.Sources;

/// <summary>What ffmpeg reads and how the source behaves when ffmpeg stops.</summary>
/// <param name="Id">The source's name: its spec, with a camera URL's user and password hidden (<see cref="SourceCredentials"/>).</param>
/// <param name="InputArguments">ffmpeg's arguments before the output, ending with <c>-i INPUT</c>.</param>
/// <param name="IsLive">A camera: frames come on its clock and the ingest drops what it cannot take.</param>
/// <param name="Restart">Start ffmpeg again (with backoff) when it exits: network and device cameras.</param>
/// <param name="FramesPerSecond">The rate to report; null to take the rate ffmpeg finds in the input (live sources).</param>
public sealed record FfmpegInput(string Id, IReadOnlyList<string> InputArguments, bool IsLive, bool Restart, double? FramesPerSecond)
{
    /// <summary>Said once, as an event, when ffmpeg first starts (where a listening source listens); null: nothing.</summary>
    public string? StartNote { get; init; }
}

/// <summary>Where ffmpeg is and how hard a live source tries to get it going again.</summary>
/// <param name="MaxRestarts">Restarts in a row without a frame in between before the source gives up.</param>
/// <param name="FirstRestartDelay">Wait before the first restart; doubled each time, up to <paramref name="MaxRestartDelay"/>.</param>
public sealed record FfmpegOptions(string Program = "ffmpeg", int MaxRestarts = 5, TimeSpan? FirstRestartDelay = null,
    TimeSpan? MaxRestartDelay = null)
{
    public TimeSpan FirstDelay => FirstRestartDelay ?? TimeSpan.FromMilliseconds(500);

    public TimeSpan MaxDelay => MaxRestartDelay ?? TimeSpan.FromSeconds(8);
}

/// <summary>
/// Frames decoded by ffmpeg running as a child process: a video file, an RTSP or MJPEG-over-HTTP
/// camera, a V4L2 device. ffmpeg scales to the model's input size and pipes rawvideo rgb24; its
/// stderr is drained (the last lines kept for fault messages) and its process tree is killed on
/// Dispose. When ffmpeg exits early the fault is reported, never thrown out of <see cref="Read"/>:
/// a file source then ends, a camera source starts ffmpeg again with backoff.
/// </summary>
public sealed partial class FfmpegSource : IFrameSource, IReportsFaults
{
    /// <summary>The rate a live source reports before (or without) ffmpeg saying what its input's rate is.</summary>
    public const double DefaultLiveRate = 25;

    private const int KeptLines = 12;

    private readonly FfmpegInput _input;
    private readonly FfmpegOptions _options;
    private readonly Preprocessor _preprocessor;
    private readonly string _program;
    private readonly byte[] _frame;
    private readonly string[] _secrets;
    private readonly Queue<string> _stderr = new();
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _gate = new();
    private Process? _process;
    private Stream? _stdout;
    private int _failuresInARow;
    private double _detectedRate;
    private bool _ended;
    private bool _streaming;

    public FfmpegSource(FfmpegInput input, Preprocessor preprocessor, FfmpegOptions? options = null)
    {
        _input = input;
        _options = options ?? new FfmpegOptions();
        _preprocessor = preprocessor;
        _program = Ffmpeg.Locate(_options.Program);
        _frame = new byte[preprocessor.Profile.Width * preprocessor.Profile.Height * 3];
        _secrets = input.InputArguments.Select(SourceCredentials.UserInfoOf).OfType<string>().Distinct().ToArray();
        Faults = new SourceFaults(input.Id);
    }

    public string Id => _input.Id;

    public bool IsLive => _input.IsLive;

    public double FramesPerSecond =>
        _input.FramesPerSecond ?? (!_input.IsLive ? 0 : Volatile.Read(ref _detectedRate) is > 0 and var rate ? rate : DefaultLiveRate);

    /// <summary>A live input's frames come as ffmpeg gets them from the camera (or, for a real-time file, at its rate).</summary>
    public bool PacesItself => _input.IsLive;

    public SourceFaults Faults { get; }

    /// <summary>Times ffmpeg has been started.</summary>
    public int Starts { get; private set; }

    /// <summary>The running ffmpeg's process id (tests kill it).</summary>
    internal int? ProcessId
    {
        get
        {
            lock (_gate)
            {
                return _process is { HasExited: false } p ? p.Id : null;
            }
        }
    }

    /// <summary>The full ffmpeg command line, for logs: a camera's user and password hidden.</summary>
    public string CommandLine => Hide(_program + " " + string.Join(" ", Arguments()));

    public IReadOnlyList<HostTensor>? Read()
    {
        while (!_ended && !_disposed.IsCancellationRequested)
        {
            var stdout = _stdout ?? Start();
            int count;
            try
            {
                count = stdout.ReadAtLeast(_frame, _frame.Length, throwOnEndOfStream: false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                count = -1;
            }

            if (count == _frame.Length)
            {
                if (_failuresInARow > 0 || !_streaming)
                {
                    // What ffmpeg printed while opening the input is no news once frames flow.
                    ClearStderr();
                    _streaming = true;
                }

                _failuresInARow = 0;
                return [_preprocessor.Run(_frame, _preprocessor.Profile.Width, _preprocessor.Profile.Height)];
            }

            if (_disposed.IsCancellationRequested)
            {
                break;
            }

            var exit = Stop();
            if (!_input.Restart)
            {
                if (count != 0 || exit != 0)
                {
                    Faults.Report($"ffmpeg reading {Id} {Exited(exit, count)}; the source ends. {LastLines()}".TrimEnd(), ended: true);
                }

                _ended = true;
                break;
            }

            _failuresInARow++;
            if (_failuresInARow > _options.MaxRestarts)
            {
                var gaveUp = $"ffmpeg reading {Id} {Exited(exit, count)}; gave up after {_options.MaxRestarts} restarts without a frame. ";
                Faults.Report((gaveUp + LastLines()).TrimEnd(), ended: true);
                _ended = true;
                break;
            }

            var delay = TimeSpan.FromTicks(
                Math.Min(_options.MaxDelay.Ticks, _options.FirstDelay.Ticks << Math.Min(_failuresInARow - 1, 20)));
            var restart = $"ffmpeg reading {Id} {Exited(exit, count)}; "
                + $"restart {_failuresInARow} of {_options.MaxRestarts} in {delay.TotalSeconds:0.##} s. ";
            Faults.Report((restart + LastLines()).TrimEnd());
            _disposed.Token.WaitHandle.WaitOne(delay);
        }

        return null;
    }

    public void Dispose()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        // The token source is not disposed: a Read blocked on another thread may still wait on it.
        _disposed.Cancel();
        Stop();
    }

    private List<string> Arguments()
    {
        var profile = _preprocessor.Profile;
        var arguments = new List<string> { "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info" };
        arguments.AddRange(_input.InputArguments);
        arguments.AddRange(
        [
            "-an", "-sn", "-dn",
            "-vf", string.Create(CultureInfo.InvariantCulture, $"scale={profile.Width}:{profile.Height}:flags=bilinear"),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
        ]);
        return arguments;
    }

    private Stream Start()
    {
        var start = new ProcessStartInfo(_program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var argument in Arguments())
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        process.ErrorDataReceived += (_, e) => OnStderr(e.Data);
        lock (_gate)
        {
            if (_disposed.IsCancellationRequested)
            {
                process.Dispose();
                return Stream.Null; // disposed while this Read was on its way here: start nothing
            }

            try
            {
                process.Start();
            }
            catch (Win32Exception e)
            {
                process.Dispose();
                throw new PipelineInputException($"Cannot start ffmpeg ('{_program}') for {Id}: {e.Message}; install ffmpeg (Debian: "
                    + $"apt-get install ffmpeg).", e);
            }

            process.BeginErrorReadLine();
            _streaming = false;
            _process = process;
            _stdout = process.StandardOutput.BaseStream;
            Starts++;
        }

        if (Starts == 1 && _input.StartNote is { } note)
        {
            Faults.Note(note);
        }

        return _stdout;
    }

    /// <summary>Kills ffmpeg's process tree if it still runs; its exit code, or null if it had to be killed or never ran.</summary>
    private int? Stop()
    {
        Process? process;
        lock (_gate)
        {
            process = _process;
            _process = null;
            _stdout = null;
        }

        if (process is null)
        {
            return null;
        }

        int? exit = null;
        try
        {
            // A clean end closes stdout just before exiting: give it a moment before killing.
            if (process.WaitForExit(_disposed.IsCancellationRequested ? 0 : 2000))
            {
                process.WaitForExit(); // flushes the stderr reader
                exit = process.ExitCode;
            }
            else
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or Win32Exception)
        {
            // Already gone.
        }
        finally
        {
            process.Dispose();
        }

        return exit;
    }

    private void OnStderr(string? line)
    {
        // With -loglevel level+info every line carries its level: "[tcp @ 0x..] [error] Connection refused".
        if (line is null || LevelPattern().Match(line) is not { Success: true } level)
        {
            return;
        }

        if (level.Groups[1].Value == "info")
        {
            // The input's rate, from ffmpeg's stream line ("Video: mjpeg ..., 25 fps, 25 tbr, ...").
            if (Volatile.Read(ref _detectedRate) == 0 && line.Contains("Video:", StringComparison.Ordinal))
            {
                var match = FpsPattern().Match(line);
                if (!match.Success)
                {
                    match = TbrPattern().Match(line);
                }

                if (match.Success && double.TryParse(match.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate)
                    && rate > 0)
                {
                    Volatile.Write(ref _detectedRate, rate);
                }
            }

            return;
        }

        if (line.Contains("deprecated pixel format", StringComparison.Ordinal))
        {
            return; // swscale's note on every full-range MJPEG frame, not a fault
        }

        lock (_stderr)
        {
            // ffmpeg names the URL it failed on, credentials and all: what is kept goes into events and logs.
            _stderr.Enqueue(Hide(line.Remove(level.Index, level.Length)));
            while (_stderr.Count > KeptLines)
            {
                _stderr.Dequeue();
            }
        }
    }

    /// <summary><paramref name="text"/> with every URL's user information, and the camera's own, hidden.</summary>
    private string Hide(string text)
    {
        text = SourceCredentials.Redact(text);
        foreach (var secret in _secrets)
        {
            text = text.Replace(secret, SourceCredentials.Mask, StringComparison.Ordinal);
        }

        return text;
    }

    private void ClearStderr()
    {
        lock (_stderr)
        {
            _stderr.Clear();
        }
    }

    private string LastLines()
    {
        lock (_stderr)
        {
            var lines = _stderr.Where(l => !string.IsNullOrWhiteSpace(l)).TakeLast(4).Select(l => l.Trim()).ToList();
            _stderr.Clear();
            return lines.Count == 0 ? string.Empty : "ffmpeg said: " + string.Join(" | ", lines);
        }
    }

    private static string Exited(int? exit, int count) =>
        (exit, count) switch
        {
            (null, _) => "stopped responding and was killed",
            (0, > 0) => "ended in the middle of a frame",
            (0, _) => "ended",
            ( > 128, _) => $"was killed (exit code {exit}, signal {exit - 128})",
            _ => $"exited with code {exit}",
        };

    [GeneratedRegex(@"\[(info|warning|error|fatal|panic)\] ")]
    private static partial Regex LevelPattern();

    [GeneratedRegex(@"[ ,](\d+(?:\.\d+)?) fps")]
    private static partial Regex FpsPattern();

    [GeneratedRegex(@"[ ,](\d+(?:\.\d+)?) tbr")]
    private static partial Regex TbrPattern();
}

/// <summary>Finding ffmpeg and asking ffprobe about a file.</summary>
public static class Ffmpeg
{
    /// <summary>The full path of <paramref name="program"/> (a path, or a name looked up on PATH); a one-sentence error when it is not
    /// installed.</summary>
    public static string Locate(string program)
    {
        if (program.Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            return File.Exists(program)
                ? program
                : throw new PipelineInputException($"ffmpeg was not found at '{program}'; install ffmpeg (Debian: apt-get install "
                    + $"ffmpeg) to read video, network and V4L2 sources.");
        }

        var found = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
        return found ?? throw new PipelineInputException($"'{program}' is not installed (not found on PATH); install ffmpeg (Debian: "
            + $"apt-get install ffmpeg) to read video, network and V4L2 sources.");
    }

    /// <summary>The average frame rate of a video file's first video stream, from ffprobe (installed with ffmpeg); null if it cannot tell.</summary>
    public static double? ProbeFramesPerSecond(string file, string ffmpegProgram = "ffmpeg")
    {
        var directory = Path.GetDirectoryName(Locate(ffmpegProgram)) ?? string.Empty;
        var ffprobe = Path.Combine(directory, "ffprobe");
        if (!File.Exists(ffprobe))
        {
            return null;
        }

        var start = new ProcessStartInfo(ffprobe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The same rules as ffmpeg's own input: local files only, and a name starting with '-' is a file, not an option.
        string[] arguments =
        [
            "-v", "error", "-protocol_whitelist", SourceSpec.FileProtocols, "-select_streams", "v:0",
            "-show_entries", "stream=avg_frame_rate,r_frame_rate", "-of", "csv=p=0", SourceSpec.FileUrl(file),
        ];
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start);
        if (process is null)
        {
            return null;
        }

        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(10_000))
        {
            process.Kill(entireProcessTree: true);
            return null;
        }

        _ = stderr.Result;
        foreach (var rate in output.Split([',', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = rate.Split('/');
            if (parts.Length == 2
                && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var numerator)
                && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var denominator)
                && numerator > 0 && denominator > 0)
            {
                return numerator / denominator;
            }
        }

        return null;
    }
}
