using Spectre.Console.Testing;

namespace PipelineActors.Cli.Tests;

/// <summary>What one in-process run of the <c>pipeline</c> command produced.</summary>
public sealed record CliResult(int ExitCode, string Output, string Error)
{
    /// <summary>Non-empty lines written to the error writer.</summary>
    public IReadOnlyList<string> ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>Runs the command line in-process against a test console, as the real entry point does.</summary>
public static class Cli
{
    /// <summary>
    /// Device stage times are cached per user (<c>$XDG_CACHE_HOME</c>); a cache left by an earlier run on a loaded
    /// machine would stand in for this run's measurements, so the specs (and the processes they start) get a fresh one.
    /// </summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void FreshCaches() =>
        Environment.SetEnvironmentVariable("XDG_CACHE_HOME", Directory.CreateTempSubdirectory("pa-cli-cache-").FullName);

    public static CliResult Run(params string[] args)
    {
        var console = new TestConsole().Width(200);
        using var error = new StringWriter();
        var code = PipelineCommandLine.Run(args, console, error);
        return new CliResult(code, console.Output, error.ToString());
    }

    /// <summary>
    /// Runs <paramref name="run"/> (a <c>pipeline run --json</c>, its report parsed) until the report shows the plan the spec
    /// is about: no recovery plan, and <paramref name="parts"/> stages when given. On this loaded two-core machine a worker
    /// may flap mid-run, and the recovery plan then puts the model on fewer workers (or both stages on one), which the
    /// spec's checks cannot tell from the fault they look for. Such a run is run again, <paramref name="attempts"/> in all,
    /// said so; the spec's checks apply to whichever report is kept.
    /// </summary>
    public static System.Text.Json.JsonElement RunWithoutRecovery(
        Func<System.Text.Json.JsonElement> run, Action<string> say, int? parts = null, int attempts = 2)
    {
        var report = run();
        for (var attempt = 1; attempt < attempts; attempt++)
        {
            var events = report.GetProperty("events").EnumerateArray().Select(e => e.GetString() ?? "").ToList();
            var recovered = events.Any(e => e.Contains("(recovery)", StringComparison.Ordinal));
            if (!recovered && (parts is null || report.GetProperty("parts").GetInt32() == parts))
            {
                break;
            }

            say($"run {attempt} ended on {report.GetProperty("parts").GetInt32()} part(s){(recovered ? " after a recovery" : "")}; "
                + $"run again: {string.Join("; ", events)}");
            report = run();
        }

        return report;
    }

    /// <summary>
    /// The contract for an error the user caused: exit code 2, exactly one line on stderr that
    /// starts with <c>error: </c> and names the thing, no stack trace, nothing on stdout.
    /// </summary>
    public static void AssertUserError(CliResult result, params string[] naming)
    {
        Assert.True(result.ExitCode == 2, $"exit code {result.ExitCode}, stderr: {result.Error}");
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("error: ", line, StringComparison.Ordinal);
        foreach (var thing in naming)
        {
            Assert.Contains(thing, line, StringComparison.Ordinal);
        }

        Assert.Equal("", result.Output.Trim());
    }
}

/// <summary>A fresh folder under the system temp folder, deleted with everything in it.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"pa-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    /// <summary>Asserts that a split into <paramref name="name"/> left neither the folder nor a partial sibling.</summary>
    public void AssertNoSplitLeftBehind(string name)
    {
        Assert.False(Directory.Exists(this[name]), $"{name} was created");
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path, $".{name}.partial-*"));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open on a slow machine is not a test failure.
        }
    }
}

/// <summary>tinynet from the zoo, written once through <c>pipeline zoo</c> and shared by a test class.</summary>
public sealed class TinyNetFile : IDisposable
{
    private readonly TempFolder _folder = new();

    public TinyNetFile()
    {
        Path = _folder["tinynet.onnx"];
        var result = Cli.Run("zoo", "tinynet", "--out", Path);
        Assert.True(result.ExitCode == 0, result.Error);
    }

    public string Path { get; }

    public void Dispose() => _folder.Dispose();
}

/// <summary>Runs a built program beside the tests (<c>pipeline.dll</c>, <c>pipeline-node.dll</c>) as a process of its own.</summary>
public static class CliProcess
{
    /// <summary>Starts <paramref name="dll"/> with its output and error redirected, in the temp folder.</summary>
    public static System.Diagnostics.Process Start(string dll, params string[] arguments)
    {
        var path = System.IO.Path.Combine(AppContext.BaseDirectory, dll);
        Assert.True(File.Exists(path), $"{path} is not beside the tests");
        var info = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = System.IO.Path.GetTempPath(),
        };
        info.ArgumentList.Add(path);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return System.Diagnostics.Process.Start(info)!;
    }

    /// <summary>Runs <paramref name="dll"/> to its end (killed, and the test failed, past <paramref name="limit"/>).</summary>
    public static async Task<CliResult> RunDll(string dll, TimeSpan limit, params string[] arguments)
    {
        using var process = Start(dll, arguments);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{dll} {string.Join(' ', arguments)} was still running after {limit.TotalSeconds:0} s");
        }

        return new CliResult(process.ExitCode, await output, await error);
    }

    /// <summary>The <c>pipeline</c> command, in a process of its own.</summary>
    public static Task<CliResult> Run(string[] arguments, TimeSpan limit) => RunDll("pipeline.dll", limit, arguments);
}
