using System.Diagnostics;
using System.Text;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Harness;

/// <summary>
/// A cluster node in a child process, started from the built <c>pipeline-node</c> binary (never
/// <c>dotnet run</c>), optionally pinned to CPU cores with <c>taskset</c>. The child watches its
/// parent and exits with it; <see cref="Kill"/> is a SIGKILL, <see cref="StopAsync"/> a SIGTERM
/// (a graceful leave).
/// </summary>
public sealed class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private NodeProcess(Process process, string name, string? cores)
    {
        _process = process;
        Name = name;
        Cores = cores;
    }

    public string Name { get; }

    public string? Cores { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>CPU time the process has used so far, in seconds (0 once it has exited).</summary>
    public double CpuSeconds
    {
        get
        {
            try
            {
                _process.Refresh();
                return _process.TotalProcessorTime.TotalSeconds;
            }
            catch (InvalidOperationException)
            {
                return 0;
            }
        }
    }

    /// <summary>Resident memory of the process now, in bytes (0 once it has exited).</summary>
    public long RssBytes
    {
        get
        {
            try
            {
                _process.Refresh();
                return _process.WorkingSet64;
            }
            catch (InvalidOperationException)
            {
                return 0;
            }
        }
    }

    public Task WaitForExitAsync(CancellationToken cancellation = default) => _process.WaitForExitAsync(cancellation);

    /// <summary>What the node printed so far (for diagnostics when a test or run fails).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The folder holding pipeline-node.dll: next to the running assembly.</summary>
    public static string DefaultBinaryFolder => AppContext.BaseDirectory;

    /// <summary>
    /// Starts the node; <paramref name="wrap"/>, when given, turns the final command (taskset included) into the one that runs,
    /// e.g. an emulated device's cgroup and namespace (<see cref="Emulation.EmulatedWorker.Wrap"/>), which exec it in place.
    /// </summary>
    public static NodeProcess Start(
        string name,
        IEnumerable<string> nodeArgs,
        string? cores = null,
        string? binaryFolder = null,
        IReadOnlyDictionary<string, string>? environment = null,
        Func<string, IReadOnlyList<string>, (string Program, IReadOnlyList<string> Arguments)>? wrap = null)
    {
        var folder = binaryFolder ?? DefaultBinaryFolder;
        var dll = Path.Combine(folder, "pipeline-node.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"The node binary pipeline-node.dll is not in {folder}; build the solution first.", dll);
        }

        var apphost = Path.Combine(folder, "pipeline-node");
        var args = new List<string>();
        string program;
        if (cores is not null && TasksetAvailable())
        {
            program = "taskset";
            args.AddRange(["-c", cores]);
            if (File.Exists(apphost))
            {
                args.Add(apphost);
            }
            else
            {
                args.AddRange([DotnetHost(), dll]);
            }
        }
        else if (File.Exists(apphost))
        {
            program = apphost;
        }
        else
        {
            program = DotnetHost();
            args.Add(dll);
        }

        args.AddRange(nodeArgs);
        args.AddRange(["--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        IReadOnlyList<string> finalArgs = args;
        if (wrap is not null)
        {
            (program, finalArgs) = wrap(program, args);
        }

        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in finalArgs)
        {
            info.ArgumentList.Add(arg);
        }

        // Measured on this project's machines: a larger gen-0 budget removes most GCs per frame.
        info.Environment["DOTNET_GCgen0size"] = "0x4000000";
        // Tensors of a few MB would land on the large-object heap and cost a gen-2 GC per frame.
        info.Environment["DOTNET_GCLOHThreshold"] = "0x800000";
        info.Environment["DOTNET_TieredPGO"] = "0";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var node = new NodeProcess(process, name, cores);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Sends a signal by name (<c>STOP</c>, <c>CONT</c>, ...); false once the process has exited.</summary>
    public bool Signal(string signal)
    {
        if (_process.HasExited)
        {
            return false;
        }

        using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        return kill.ExitCode == 0;
    }

    /// <summary>SIGKILL: the node vanishes without leaving the cluster; only the failure detector can tell.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
    }

    /// <summary>SIGTERM: the node leaves the cluster gracefully; waits for it to exit.</summary>
    public async Task<bool> StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return true;
        }

        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            Kill();
            return false;
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 1 << 20)
            {
                _output.AppendLine(line);
            }
        }
    }

    private static string DotnetHost()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host))
        {
            return host;
        }

        var current = Environment.ProcessPath;
        return current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current : "dotnet";
    }

    private static bool TasksetAvailable() =>
        OperatingSystem.IsLinux() && (File.Exists("/usr/bin/taskset") || File.Exists("/bin/taskset"));
}
