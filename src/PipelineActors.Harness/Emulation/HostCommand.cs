using System.Diagnostics;
using PipelineActors.Onnx;

namespace PipelineActors.Harness.Emulation;

/// <summary>Runs the system tools an emulation needs (ip, tc) and turns their failures into one sentence.</summary>
internal static class HostCommand
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    /// <summary>Runs the command; throws with its stderr when it fails.</summary>
    public static string Run(string program, params string[] args)
    {
        var (code, output, error) = TryRun(program, args);
        if (code != 0)
        {
            var said = error.Trim().Replace('\n', ' ');
            throw new InvalidOperationException($"'{program} {string.Join(' ', args)}' failed ({code}): {said}");
        }

        return output;
    }

    /// <summary>Runs the command and returns its exit code and output; a missing program is the user's to install.</summary>
    public static (int Code, string Output, string Error) TryRun(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new PipelineInputException($"Emulated devices need the '{program}' command, which is not installed (Debian package iproute2).", e);
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Limit))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{program} {string.Join(' ', args)}' did not finish in {Limit.TotalSeconds} s.");
            }

            process.WaitForExit();
            return (process.ExitCode, output.Result, error.Result);
        }
    }
}
