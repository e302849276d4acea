using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace PipelineActors.Runtime.Tests.DataPath.Sources;

/// <summary>Clips, pictures and MJPEG streams made by ffmpeg itself in a temporary folder. Fails (never skips) without ffmpeg.</summary>
public sealed class Media : IDisposable
{
    public Media()
    {
        Folder = Directory.CreateTempSubdirectory("pipeline-media-").FullName;
    }

    public string Folder { get; }

    /// <summary>Runs ffmpeg to completion; a test failure that names ffmpeg when it is missing or fails.</summary>
    public static void Run(params string[] arguments)
    {
        using var process = Start(arguments);
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(30_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("ffmpeg " + string.Join(" ", arguments) + " took over 30 s.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ffmpeg {string.Join(" ", arguments)} failed ({process.ExitCode}): {stderr.Result}");
        }
    }

    /// <summary>Starts ffmpeg in the background (stdout ignored, stderr piped).</summary>
    public static Process Start(params string[] arguments)
    {
        var start = new ProcessStartInfo("ffmpeg")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-hide_banner", "-nostdin", "-loglevel", "error", "-y" }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException("ffmpeg did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("These tests need ffmpeg on PATH and it is not installed; install it (Debian: apt-get "
                + "install ffmpeg). .ci/run does this.", e);
        }
    }

    /// <summary>A test-pattern clip of <paramref name="seconds"/> at <paramref name="rate"/> frames per second.</summary>
    public string Clip(string name = "clip.mp4", double seconds = 2, int rate = 30, string size = "320x240")
    {
        var path = Path.Combine(Folder, name);
        Run("-f", "lavfi", "-i", $"testsrc=size={size}:rate={rate}", "-t",
            seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-pix_fmt", "yuv420p", path);
        return path;
    }

    /// <summary>A picture of one flat colour (ffmpeg's colour names or 0xRRGGBB), as PNG or JPEG by its extension.</summary>
    public string Picture(string relativePath, string color, string size = "64x48")
    {
        var path = Path.Combine(Folder, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Run("-f", "lavfi", "-i", $"color=c={color}:size={size}", "-frames:v", "1", "-update", "1", path);
        return path;
    }


    /// <summary>ffmpeg serving a test pattern as MJPEG over HTTP on 127.0.0.1 in real time, to one client.</summary>
    public static Process ServeMjpeg(int port, int rate = 25, double seconds = 20) =>
        Start("-re", "-f", "lavfi", "-i", $"testsrc=size=320x240:rate={rate}", "-t",
            seconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-q:v", "5", "-f", "mpjpeg", "-listen", "1", $"http://127.0.0.1:{port}/feed.mjpg");

    public static void Stop(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
