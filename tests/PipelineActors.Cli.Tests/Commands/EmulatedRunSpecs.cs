using System.Diagnostics;
using System.Text.Json;
using PipelineActors.Harness.Emulation;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline run --emulate</c> with real worker processes in cgroups and network namespaces (the tests run as root, as CI
/// does): frames all come out, a CPU quota slows the pipeline, the application adds the latency, and nothing is left behind.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class EmulatedRunSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    [Fact(Timeout = 120_000)]
    public async Task Two_workers_at_half_a_core_one_behind_a_20_Mbit_link_deliver_every_frame_and_leave_no_namespace_or_cgroup_behind()
    {
        var model = Zoo("tinynet");

        var run = await Task.Run(() => Cli.Run(
            "run", "--model", model, "--nodes", "2", "--frames", "40", "--fps", "0", "--emulate", "cpu=0.5;cpu=0.5,link=20", "--json"));

        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        using var summary = JsonDocument.Parse(run.Output);
        var root = summary.RootElement;
        Assert.Equal(40, root.GetProperty("framesIn").GetInt64());
        Assert.Equal(40, root.GetProperty("resultsOut").GetInt64());
        Assert.Equal(0, root.GetProperty("lost").GetInt64());
        var emulation = root.GetProperty("emulation").EnumerateArray().ToList();
        Assert.Equal(2, emulation.Count);
        Assert.All(emulation, e => Assert.Equal(0.5, e.GetProperty("cpu").GetDouble()));
        Assert.Equal(JsonValueKind.Null, emulation[0].GetProperty("linkMbit").ValueKind);
        Assert.Equal(20, emulation[1].GetProperty("linkMbit").GetDouble());
        // With a link in the spec every worker lives in a namespace of its own and binds that namespace's address.
        Assert.All(emulation, e => Assert.StartsWith("10.213.", e.GetProperty("address").GetString(), StringComparison.Ordinal));
        Assert.All(emulation, e =>
            Assert.StartsWith(e.GetProperty("address").GetString() + ":", e.GetProperty("node").GetString(), StringComparison.Ordinal));
        Assert.Empty(LeftBehind());
    }

    [Fact(Timeout = 120_000)]
    public async Task A_worker_with_a_tenth_of_a_core_runs_ResNet_18_clearly_slower_than_one_with_a_full_core()
    {
        var model = Zoo("resnet18");

        // One worker: the planner keeps ResNet-18 whole on one node here (on 2 workers it chose one stage), so with one
        // worker the stage is sure to run on the emulated device.
        var full = await RunFramesPerSecond(model, "cpu=1.0", frames: 24);
        var tenth = await RunFramesPerSecond(model, "cpu=0.1", frames: 8);
        output.WriteLine($"resnet18 on 1 worker: cpu=1.0 {full:F2} frames/s, cpu=0.1 {tenth:F2} frames/s ({full / tenth:F1}x)");

        // A tenth of a core runs it about ten times slower; 3x leaves room for a busy machine slowing the full core.
        Assert.True(full > 3 * tenth, $"cpu=1.0 gave {full:F2} frames/s against {tenth:F2} at cpu=0.1");
        Assert.Empty(LeftBehind());
    }

    [Fact(Timeout = 120_000)]
    public async Task Latency_on_a_link_is_added_by_the_application_to_what_that_worker_sends()
    {
        var model = Zoo("tinynet");

        // No cpu= or link=: a delay alone needs no root and no namespace, and shows in every frame's latency. The source plays
        // as a clip (--fps 0), which waits for the pipeline. A one-stage plan never crosses the delayed worker.
        var root = await Task.Run(() => Cli.RunWithoutRecovery(
            () =>
            {
                var run = Cli.Run("run", "--model", model, "--nodes", "2", "--frames", "10", "--fps", "0", "--emulate", ";latency=250", "--json");
                Assert.True(run.ExitCode == 0, run.Error + run.Output);
                return JsonDocument.Parse(run.Output).RootElement.Clone();
            },
            output.WriteLine, parts: 2));

        Assert.Equal(10, root.GetProperty("resultsOut").GetInt64());
        Assert.Equal(250, root.GetProperty("emulation")[1].GetProperty("latencyMs").GetDouble());
        var p50 = root.GetProperty("latencyP50Ms").GetDouble();
        output.WriteLine($"tinynet, worker 1 adding 250 ms: latency p50 {p50} ms");
        Assert.True(p50 >= 250, $"latency p50 {p50} ms is below the 250 ms the second worker adds");
    }

    [Theory]
    [InlineData("cpu=fast", "--emulate entry 1", "cpu must be a finite number")]
    [InlineData("cpu=0.5;cpu=0.5;cpu=0.5", "--emulate has 3 entries", "2 worker(s)")]
    [InlineData("speed=2;", "--emulate entry 1", "'speed' is not a key")]
    public void A_bad_spec_or_a_count_that_differs_from_the_workers_is_one_sentence_and_exit_code_2(string spec, string first, string second)
    {
        var run = Cli.Run("run", "--model", Zoo("tinynet"), "--nodes", "2", "--emulate", spec);

        Cli.AssertUserError(run, first, second);
    }

    [Fact(Timeout = 120_000)]
    public async Task Bench_with_a_spec_compares_planned_equal_split_replicas_and_single_measured_and_predicted_on_the_emulated_workers()
    {
        var model = Zoo("tinynet");

        var bench = await Task.Run(() => Cli.Run(
            "bench", "--model", model, "--emulate", "cpu=0.5;cpu=0.5,link=20", "--frames", "20", "--loop-seconds", "2", "--json"));

        Assert.True(bench.ExitCode == 0, bench.Error + bench.Output);
        using var report = JsonDocument.Parse(bench.Output);
        var rows = report.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["planned", "equal-split", "replicas", "single"], rows.Select(r => r.GetProperty("configuration").GetString()));
        Assert.All(rows, r => Assert.True(r.GetProperty("framesPerSecond").GetDouble() > 0, r.ToString()));
        Assert.All(rows, r => Assert.True(r.GetProperty("predictedFramesPerSecond").GetDouble() > 0, r.ToString()));
        Assert.All(rows, r => Assert.Equal(0, r.GetProperty("lost").GetInt64()));
        // The equal split runs a stage on each worker; one device alone, one stage.
        Assert.Equal(2, rows[1].GetProperty("nodes").GetInt32());
        Assert.Equal(1, rows[3].GetProperty("nodes").GetInt32());
        var plans = report.RootElement.GetProperty("plans").EnumerateArray().ToList();
        Assert.Equal(["planned", "equal-split", "single"], plans.Select(p => p.GetProperty("configuration").GetString()));
        Assert.Equal(2, report.RootElement.GetProperty("deviceSpeeds").GetArrayLength());
        // Block times came from segments timed inside each device, one list of segment times per worker.
        var segments = report.RootElement.GetProperty("segmentTimes").EnumerateArray().ToList();
        Assert.Equal([0, 1], segments.Select(t => t.GetProperty("worker").GetInt32()));
        Assert.All(segments, t => Assert.True(t.GetProperty("meanMs").EnumerateArray().All(ms => ms.GetDouble() > 0), t.ToString()));
        Assert.Equal("throughput", report.RootElement.GetProperty("objective").GetString());
        output.WriteLine(string.Join("; ", rows.Select(r =>
            $"{r.GetProperty("configuration")}: {r.GetProperty("framesPerSecond")} measured, "
            + $"{r.GetProperty("predictedFramesPerSecond")} predicted")));
        var emulation = report.RootElement.GetProperty("emulation").EnumerateArray().ToList();
        Assert.Equal([0.5, 0.5], emulation.Select(e => e.GetProperty("cpu").GetDouble()));
        Assert.Equal(20, emulation[1].GetProperty("linkMbit").GetDouble());
        Assert.Contains("Emulated workers", report.RootElement.GetProperty("method").GetString(), StringComparison.Ordinal);
        Assert.Empty(LeftBehind());
    }

    [Fact(Timeout = 120_000)]
    public async Task Bench_with_the_latency_objective_adds_each_device_alone_and_the_predicted_latency_of_every_row()
    {
        var model = Zoo("tinynet");

        var bench = await Task.Run(() => Cli.Run(
            "bench", "--model", model, "--emulate", "cpu=0.25;cpu=1.0,link=20", "--objective", "latency", "--frames", "20",
            "--loop-seconds", "2", "--json"));

        Assert.True(bench.ExitCode == 0, bench.Error + bench.Output);
        using var report = JsonDocument.Parse(bench.Output);
        Assert.Equal("latency", report.RootElement.GetProperty("objective").GetString());
        var rows = report.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(
            ["planned", "equal-split", "replicas", "single", "single-worker-0"],
            rows.Select(r => r.GetProperty("configuration").GetString()));
        Assert.All(rows, r => Assert.True(r.GetProperty("predictedLatencyMs").GetDouble() > 0, r.ToString()));
        Assert.All(rows, r => Assert.True(r.GetProperty("latencyP50Ms").GetDouble() > 0, r.ToString()));
        Assert.All(rows, r => Assert.Equal(0, r.GetProperty("lost").GetInt64()));
        // The least-latency plan is predicted no slower than either device alone.
        var predicted = rows.ToDictionary(r => r.GetProperty("configuration").GetString()!, r => r.GetProperty("predictedLatencyMs").GetDouble());
        Assert.True(predicted["planned"] <= Math.Min(predicted["single"], predicted["single-worker-0"]) + 0.01, string.Join(", ", predicted));
        Assert.Empty(LeftBehind());
    }

    [Fact(Timeout = 240_000)]
    public async Task Bench_with_codecs_runs_the_planned_configuration_and_the_equal_split_once_per_codec_and_names_the_codec_in_every_row()
    {
        var model = Zoo("tinynet");

        // Eight runs on quarter-core workers: on this loaded machine a worker may flap in one of them and end it on a recovery
        // plan, which the checks below cannot tell from a wrong codec. Such a bench is run once more, said so; every check
        // applies to the second.
        for (var attempt = 1; ; attempt++)
        {
            var bench = await Task.Run(() => Cli.Run(
                // Two equal slow devices on a fast link: the throughput plan cuts tinynet in two, so the codecs have a hop to work on.
                "bench", "--model", model, "--emulate", "cpu=0.25;cpu=0.25", "--codecs", "exact,int8+zstd,pool2", "--frames", "20",
                "--loop-seconds", "2", "--json"));
            try
            {
                CheckBenchWithCodecs(bench);
                break;
            }
            catch (Xunit.Sdk.XunitException e) when (attempt == 1)
            {
                output.WriteLine($"attempt 1 did not hold, run again: {e.Message}");
            }
        }

        Assert.Empty(LeftBehind());
    }

    private void CheckBenchWithCodecs(CliResult bench)
    {
        Assert.True(bench.ExitCode == 0, bench.Error + bench.Output);
        using var report = JsonDocument.Parse(bench.Output);
        var rows = report.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(
            ["planned", "planned", "planned", "equal-split", "equal-split", "equal-split", "replicas", "single"],
            rows.Select(r => r.GetProperty("configuration").GetString()));
        Assert.Equal(
            ["exact", "int8+zstd", "pool2", "exact", "int8+zstd", "pool2", "exact", "exact"], rows.Select(r => r.GetProperty("codec").GetString()));
        Assert.All(rows, r => Assert.True(r.GetProperty("framesPerSecond").GetDouble() > 0, r.ToString()));
        Assert.All(rows, r => Assert.Equal(0, r.GetProperty("lost").GetInt64()));
        // The cost model prices the exact wire: a codec's row is measured, not predicted.
        foreach (var row in rows)
        {
            var predicted = row.GetProperty("predictedFramesPerSecond");
            var exact = row.GetProperty("codec").GetString() == "exact";
            Assert.True(exact ? predicted.GetDouble() > 0 : predicted.ValueKind == JsonValueKind.Null, row.ToString());
        }
        // The equal split cuts by FLOPs, the same hop in each of its runs, so there a codec never sends more bytes than exact: it
        // goes only where it makes the cut smaller (tinynet's FLOP-balanced cut carries a 175-byte vector, which stays exact,
        // and pool2 leaves a 1x1 map alone). The planned configuration is measured again for every run, and tinynet's blocks
        // take 0.01 to 0.1 ms, so its cut moved from run to run in CI (exact crossed 1,059 bytes where int8+zstd crossed the
        // 8 KiB map as 1,330): its rows are checked for their shape only. What a codec does to a cut's bytes is held by
        // RunCodecSpecs on a fixed cut. A run whose worker flapped may end with both stages on one worker (0 bytes).
        foreach (var first in new[] { 0, 3 })
        {
            var runs = rows.Skip(first).Take(3).ToList();
            var links = runs.Select(r => r.GetProperty("bytesPerFrameOnLinks").EnumerateArray().Select(b => b.GetInt64()).ToList()).ToList();
            output.WriteLine(string.Join("; ", runs.Select((r, i) => $"{r.GetProperty("configuration")} {r.GetProperty("codec")}: "
                + $"{r.GetProperty("framesPerSecond")} frames/s, bytes a frame on links [{string.Join(", ", links[i])}]")));
            Assert.All(runs, r => Assert.Equal(2, r.GetProperty("nodes").GetInt32()));
            Assert.All(links, l => Assert.Single(l));
            if (first == 3 && links.All(l => l[0] > 0))
            {
                Assert.True(links[1][0] <= links[0][0] && links[2][0] <= links[0][0], string.Join(" / ", links.Select(l => l[0])));
            }
        }
    }

    [Theory]
    [InlineData(null, "--codecs compares codecs on the planned row of bench --emulate")]
    [InlineData("cpu=0.5;cpu=0.5", "There is no codec named 'int9'")]
    public void Bench_refuses_codecs_without_emulated_workers_or_a_bad_codec_in_one_sentence(string? emulate, string named)
    {
        var run = emulate is null
            ? Cli.Run("bench", "--model", Zoo("tinynet"), "--codecs", "exact,int9")
            : Cli.Run("bench", "--model", Zoo("tinynet"), "--emulate", emulate, "--codecs", "exact,int9");

        Cli.AssertUserError(run, named);
    }

    [Fact]
    public void Bench_refuses_a_worker_count_that_differs_from_the_spec_in_one_sentence()
    {
        var run = Cli.Run("bench", "--model", Zoo("tinynet"), "--nodes", "1,2", "--emulate", "cpu=0.5;cpu=0.5");

        Cli.AssertUserError(run, "--emulate has 2 entries", "1 worker(s)");
    }

    [Fact(Timeout = 120_000)]
    public async Task Without_root_an_emulated_cpu_is_one_sentence_and_exit_code_2()
    {
        // nobody must reach the binaries and the model, wherever the checkout lives (a clone under a 0700 folder, as
        // mktemp -d makes, hides them): hard links in a world-readable folder cost no copy.
        var reachable = Path.Combine(Path.GetTempPath(), $"pa-nobody-{Guid.NewGuid():N}");
        Directory.CreateDirectory(reachable); // 0755 under the usual umask 022
        using var links = Process.Start(new ProcessStartInfo("cp", ["-al", AppContext.BaseDirectory, Path.Combine(reachable, "bin")]))!;
        await links.WaitForExitAsync();
        Assert.True(links.ExitCode == 0, "cp -al could not link the test binaries into a world-readable folder");
        var dll = Path.Combine(reachable, "bin", "pipeline.dll");
        var model = Path.Combine(reachable, "tinynet.onnx");
        File.Copy(Zoo("tinynet"), model);
        var start = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["--reuid=65534", "--regid=65534", "--clear-groups", "dotnet", dll, "run", "--model", model, "--nodes", "1",
            "--emulate", "cpu=0.5"])
        {
            start.ArgumentList.Add(arg);
        }

        // A home of nobody's own: pipeline keeps its run folder there and refuses one that another user made (a shared
        // /tmp/.local left by some other run would be one).
        var home = Path.Combine(reachable, "home");
        Directory.CreateDirectory(home);
        using (var chown = Process.Start(new ProcessStartInfo("chown", ["65534:65534", home]))!)
        {
            await chown.WaitForExitAsync();
            Assert.True(chown.ExitCode == 0, "chown could not give nobody its home folder");
        }

        start.Environment["HOME"] = home;
        start.Environment["DOTNET_CLI_HOME"] = home;
        start.Environment.Remove("XDG_RUNTIME_DIR");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);

        var result = new CliResult(process.ExitCode, await stdout, await stderr);
        Directory.Delete(reachable, recursive: true);
        Assert.True(result.ExitCode == 2, $"exit code {result.ExitCode}: {result.Error}");
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("error: CPU quotas need root", line, StringComparison.Ordinal);
    }

    [Fact(Timeout = 120_000)]
    public async Task Ctrl_C_during_an_emulated_run_removes_its_namespaces_and_cgroups()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "pipeline.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[dll, "run", "--model", Zoo("tinynet"), "--nodes", "2", "--frames", "1000000", "--fps", "20",
            "--emulate", "cpu=0.5;cpu=0.5,link=20"])
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var live = new TaskCompletionSource();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("plan epoch 1 (", StringComparison.Ordinal) == true)
            {
                live.TrySetResult();
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await live.Task.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotEmpty(LeftBehind(process.Id));

            using (var interrupt = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await interrupt.WaitForExitAsync();
            }

            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Empty(LeftBehind(process.Id));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>Our namespaces, veth ends and cgroups owned by this process or <paramref name="owner"/> (others' runs may be live here).</summary>
    private static List<string> LeftBehind(int? owner = null)
    {
        var prefix = "pae" + Base36(owner ?? Environment.ProcessId, 5);
        return StaleEmulation.OurNamespaces().Concat(StaleEmulation.OurInterfaces()).Concat(StaleEmulation.OurCgroups())
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .ToList();
    }

    private static string Base36(int value, int width)
    {
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        var chars = new char[width];
        for (var i = width - 1; i >= 0; i--)
        {
            chars[i] = digits[value % 36];
            value /= 36;
        }

        return new string(chars);
    }

    private async Task<double> RunFramesPerSecond(string model, string spec, int frames)
    {
        var clock = Stopwatch.StartNew();
        var run = await Task.Run(() => Cli.Run(
            "run", "--model", model, "--nodes", "1", "--frames", frames.ToString(System.Globalization.CultureInfo.InvariantCulture), "--fps", "0",
            "--emulate", spec, "--json"));
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        using var summary = JsonDocument.Parse(run.Output);
        Assert.Equal(frames, summary.RootElement.GetProperty("resultsOut").GetInt64());
        var fps = summary.RootElement.GetProperty("framesPerSecond").GetDouble();
        output.WriteLine($"{spec}: {fps:F2} frames/s, {clock.Elapsed.TotalSeconds:F1} s in all");
        return fps;
    }

    private string Zoo(string name)
    {
        var path = _folder[name + ".onnx"];
        if (!File.Exists(path))
        {
            var written = Cli.Run("zoo", name, "--out", path);
            Assert.True(written.ExitCode == 0, written.Error);
        }

        return path;
    }
}
