using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// A camera's password through a whole <c>pipeline run</c> (review S5): a real MJPEG camera served by ffmpeg on
/// 127.0.0.1, reached with user and password in its URL, streamed through a worker process. The password is in no
/// result line (whose source came with each frame from the worker), no event, no output, no line of the run's log.
/// </summary>
public sealed class RunSecretsSpecs : IDisposable
{
    private const string Password = "S3cret-camera-pw";
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-secrets-").FullName;

    [Fact]
    public void A_credentialed_camera_streams_and_its_password_appears_in_no_result_event_output_or_log_line()
    {
        var port = TestPorts.Free();
        using var camera = Camera(port);
        var results = Path.Combine(_folder, "results.jsonl");
        var model = Path.Combine(AppContext.BaseDirectory, "models", "blazeface-back-256.onnx");
        var url = $"http://admin:{Password}@127.0.0.1:{port}/feed.mjpg";

        var run = Cli.Run("run", "--model", model, "--source", url, "--frames", "8", "--nodes", "1", "--results", results, "--json");

        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        using var summary = JsonDocument.Parse(run.Output);
        Assert.True(summary.RootElement.GetProperty("resultsOut").GetInt64() >= 1, run.Output);
        var lines = File.ReadAllLines(results);
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            Assert.Equal($"http://***@127.0.0.1:{port}/feed.mjpg", json.RootElement.GetProperty("source").GetString());
        }

        var log = Path.Combine(PrivateFiles.RunFolder(), $"run-{Environment.ProcessId}.log");
        Assert.True(File.Exists(log), log);
        var everything = new[] { run.Output, run.Error, File.ReadAllText(results), File.ReadAllText(log) };
        Assert.All(everything, text => Assert.DoesNotContain(Password, text, StringComparison.Ordinal));
        Assert.DoesNotContain(Password, summary.RootElement.GetProperty("events").GetRawText(), StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>ffmpeg serving a test pattern as MJPEG over HTTP on 127.0.0.1, to one viewer (it asks no password).</summary>
    private static CameraProcess Camera(int port)
    {
        var start = new ProcessStartInfo("ffmpeg") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var argument in new[]
        {
            "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "60",
            "-q:v", "5", "-f", "mpjpeg", "-listen", "1", string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/feed.mjpg"),
        })
        {
            start.ArgumentList.Add(argument);
        }

        return new CameraProcess(Process.Start(start)!);
    }

    private sealed class CameraProcess(Process process) : IDisposable
    {
        public void Dispose()
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
    }
}
