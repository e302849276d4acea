using System.Diagnostics;

namespace PipelineActors.Cli.Tests;

/// <summary>The built <c>pipeline</c> program run as a user runs it, in its own process.</summary>
public sealed class ProcessSpecs
{
    [Fact]
    public async Task A_missing_model_exits_with_code_2_and_one_error_line()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "pipeline.dll");
        Assert.True(File.Exists(dll), $"{dll} is not beside the tests");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("inspect");
        start.ArgumentList.Add("nosuch.onnx");

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);

        var result = new CliResult(process.ExitCode, await output, await error);
        Cli.AssertUserError(result, "No such model file", "nosuch.onnx");
    }
}
