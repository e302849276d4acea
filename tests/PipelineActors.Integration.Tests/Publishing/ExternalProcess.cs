using System.Diagnostics;

namespace PipelineActors.Integration.Tests.Publishing;

/// <summary>What a finished command printed and returned.</summary>
public sealed record ProcessResult(int Code, string Output, string Error)
{
    /// <summary>The error stream's non-empty lines: a user-caused error must be exactly one.</summary>
    public IReadOnlyList<string> ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>Runs a real program (a script, a published binary, qemu) to its end, killing its tree past a deadline.</summary>
public static class ExternalProcess
{
    /// <summary>
    /// Runs <paramref name="program"/>; with <paramref name="environment"/> the child gets exactly those variables, so a
    /// published binary shows it needs nothing of the SDK the tests run under.
    /// </summary>
    public static async Task<ProcessResult> Run(
        string program,
        IEnumerable<string> arguments,
        TimeSpan timeout,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            info.Environment.Clear();
            foreach (var (name, value) in environment)
            {
                info.Environment[name] = value;
            }
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start.");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException(
                $"{program} {string.Join(' ', info.ArgumentList)} was still running after {timeout.TotalSeconds:0} s; it printed:\n"
                + await output + await error);
        }

        return new ProcessResult(process.ExitCode, await output, await error);
    }

    /// <summary>The environment of a board with no .NET installed: a bare PATH, and no DOTNET_* variable but a missing root.</summary>
    public static IReadOnlyDictionary<string, string> BareEnvironment(string home) => new Dictionary<string, string>
    {
        ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
        ["HOME"] = home,
        ["DOTNET_ROOT"] = "/nonexistent/dotnet",
    };
}
