using PipelineActors.TestSupport;
using System.Diagnostics;

namespace PipelineActors.Integration.Tests;

/// <summary>The node binary as <c>pipeline run</c> starts it: it exits when its parent dies, whatever killed the parent.</summary>
[Collection(ClusterCollection.Name)]
public sealed class NodeServiceProcessSpecs
{
    [Fact]
    public async Task A_node_started_for_a_parent_exits_soon_after_the_parent_is_killed()
    {
        using var certificates = new TestCertificates();
        using var parent = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        var port = TestPorts.Free().ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] args =
        [
            Path.Combine(AppContext.BaseDirectory, "pipeline-node.dll"), "--roles", "worker", "--port", port,
            "--seeds", $"akka.ssl.tcp://pipeline@127.0.0.1:{port}", "--parent-pid",
                parent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--tls", certificates.Issue("worker"),
        ];
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var node = Process.Start(info)!;
        node.BeginOutputReadLine();
        node.BeginErrorReadLine();
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(node.HasExited, "the node runs while its parent lives");

        parent.Kill();
        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await node.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            node.Kill(entireProcessTree: true);
            Assert.Fail("the node outlived its parent by 20 s");
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the node took {clock.Elapsed.TotalSeconds:0.0} s to exit");
    }

    [Fact]
    public async Task The_bench_loop_mode_given_a_missing_model_says_so_in_one_sentence()
    {
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "pipeline-node.dll"), "--bench-loop", "/nonexistent/model.onnx",
            "--seconds", "1" })
        {
            info.ArgumentList.Add(arg);
        }

        using var node = Process.Start(info)!;
        var error = await node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync();

        Assert.Equal(2, node.ExitCode);
        Assert.Contains("/nonexistent/model.onnx", error, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", error, StringComparison.Ordinal); // no stack trace
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Help_prints_the_options_and_exits_at_once_without_starting_a_node()
    {
        var (code, output, error) = await RunNode(TimeSpan.FromSeconds(30), "--help");

        Assert.Equal(0, code);
        Assert.Empty(error.Trim());
        foreach (var option in new[] { "--roles", "--seeds", "--host", "--port", "--threads", "--config", "--metrics-port", "--tls", "--insecure" })
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("--port 4O53 --seeds akka.tcp://pipeline@127.0.0.1:4053", "4O53")]
    [InlineData("--port 70000 --seeds akka.tcp://pipeline@127.0.0.1:4053", "70000")]
    [InlineData("--roles worker", "No seed nodes")]
    [InlineData("--seeds ,", "No seed nodes")]
    [InlineData("--seeds 127.0.0.1:4053", "not a node address")]
    [InlineData("--threads 0 --seeds akka.tcp://pipeline@127.0.0.1:4053", "--threads")]
    [InlineData("--roles wroker --seeds akka.tcp://pipeline@127.0.0.1:4053", "wroker")]
    [InlineData("--metrics-port x --seeds akka.tcp://pipeline@127.0.0.1:4053", "--metrics-port")]
    public async Task A_bad_setting_is_one_sentence_and_exit_code_2_before_any_node_starts(string arguments, string named)
    {
        var (code, output, error) = await RunNode(TimeSpan.FromSeconds(30), arguments.Split(' '));

        Assert.Equal(2, code);
        Assert.Contains(named, error, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("node akka", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--seeds akka.ssl.tcp://pipeline@127.0.0.1:4053", "No TLS folder given")]
    [InlineData("--seeds akka.tcp://pipeline@127.0.0.1:4053", "--insecure")]
    [InlineData("--insecure --seeds akka.ssl.tcp://pipeline@127.0.0.1:4053", "not a plain TCP address")]
    [InlineData("--tls /nonexistent/tls --seeds akka.ssl.tcp://pipeline@127.0.0.1:4053", "/nonexistent/tls")]
    [InlineData("--tls /tmp --insecure --seeds akka.ssl.tcp://pipeline@127.0.0.1:4053", "not both")]
    public async Task Without_a_TLS_folder_or_with_a_seed_of_the_other_scheme_the_node_does_not_start(string arguments, string named)
    {
        var (code, output, error) = await RunNode(TimeSpan.FromSeconds(30), arguments.Split(' '));

        Assert.Equal(2, code);
        Assert.Contains(named, error, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("node akka", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_TLS_folder_with_a_plain_seed_or_without_the_claimed_role_is_one_sentence_and_exit_code_2()
    {
        using var certificates = new TestCertificates();
        var worker = certificates.Issue("worker");

        var plainSeed = await RunNode(TimeSpan.FromSeconds(30), "--tls", worker, "--seeds", "akka.tcp://pipeline@127.0.0.1:4053");
        var claimsMore = await RunNode(
            TimeSpan.FromSeconds(30), "--tls", worker, "--roles", "coordinator,worker", "--seeds", "akka.ssl.tcp://pipeline@127.0.0.1:4053");

        Assert.Equal(2, plainSeed.Code);
        Assert.Contains("is not a TLS address", plainSeed.Error, StringComparison.Ordinal);
        Assert.Single(plainSeed.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(2, claimsMore.Code);
        Assert.Contains("claims coordinator without a certificate for it", claimsMore.Error, StringComparison.Ordinal);
        Assert.Single(claimsMore.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task A_node_with_insecure_warns_on_every_start_and_runs_plain_TCP()
    {
        for (var start = 0; start < 2; start++)
        {
            var port = TestPorts.Free().ToString(System.Globalization.CultureInfo.InvariantCulture);
            var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[]
            {
                Path.Combine(AppContext.BaseDirectory,
                    "pipeline-node.dll"), "--insecure", "--port", port, "--seeds", $"akka.tcp://pipeline@127.0.0.1:{port}",
            })
            {
                info.ArgumentList.Add(arg);
            }

            using var node = Process.Start(info)!;
            try
            {
                var error = node.StandardError.ReadLineAsync();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                string? started = null;
                while (await node.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
                {
                    if (line.StartsWith("node ", StringComparison.Ordinal))
                    {
                        started = line;
                        break;
                    }
                }

                Assert.StartsWith($"node akka.tcp://pipeline@127.0.0.1:{port}", started, StringComparison.Ordinal);
                Assert.StartsWith("warning: --insecure", await error.WaitAsync(TimeSpan.FromSeconds(10)), StringComparison.Ordinal);
            }
            finally
            {
                node.Kill(entireProcessTree: true);
            }
        }
    }

    [Theory]
    [InlineData("pipeline.chunk-bytes = 300000", "maximum-frame-size")]
    [InlineData("pipeline.ingest.min-deadline = 0s", "pipeline.ingest.min-deadline")]
    [InlineData("pipeline.ingest.min-deadline = soon", "pipeline.ingest.min-deadline")]
    [InlineData("pipeline.ingest.max-attempts = -1", "pipeline.ingest.max-attempts")]
    [InlineData("pipeline.supervisor.exclusion = 0s", "pipeline.supervisor.exclusion")]
    [InlineData("akka.remote.dot-netty.tcp.port = 4O53", "akka.remote.dot-netty.tcp.port")]
    [InlineData("pipeline.chunk-bytes = ${no.such.key}", "not valid HOCON")]
    public async Task A_bad_value_in_the_config_file_is_one_sentence_and_exit_code_2(string hocon, string named)
    {
        var file = Path.Combine(Path.GetTempPath(), $"pipeline-node-test-{Guid.NewGuid():N}.conf");
        await File.WriteAllTextAsync(file, hocon + "\n");
        try
        {
            var (code, output, error) = await RunNode(TimeSpan.FromSeconds(30), "--seeds", "akka.tcp://pipeline@127.0.0.1:4053", "--config", file);

            Assert.Equal(2, code);
            Assert.Contains(named, error, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", error, StringComparison.Ordinal); // no stack trace
            Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.DoesNotContain("node akka", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("--model-cache")]
    [InlineData("--metrics-address")]
    public async Task A_cache_folder_planted_as_a_link_or_a_metrics_address_that_is_none_is_one_sentence_and_exit_code_2(string option)
    {
        var root = Directory.CreateTempSubdirectory("pipeline-node-private-").FullName;
        try
        {
            var link = Path.Combine(root, "cache");
            Directory.CreateSymbolicLink(link, Directory.CreateDirectory(Path.Combine(root, "elsewhere")).FullName);
            string[] value = option == "--model-cache" ? [link] : ["not an address", "--metrics-port", "9999"];

            var (code, output, error) = await RunNode(TimeSpan.FromSeconds(30), ["--seeds", "akka.tcp://pipeline@127.0.0.1:4053", option, .. value]);

            Assert.Equal(2, code);
            var named = option == "--model-cache" ? $"{link} is a symbolic link" : "'not an address' is not an IP address";
            Assert.Contains(named, error, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", error, StringComparison.Ordinal);
            Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.DoesNotContain("node akka", output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<(int Code, string Output, string Error)> RunNode(TimeSpan timeout, params string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "pipeline-node.dll"));
        foreach (var arg in arguments)
        {
            info.ArgumentList.Add(arg);
        }

        using var node = Process.Start(info)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var error = node.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await node.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            node.Kill(entireProcessTree: true);
            Assert.Fail($"pipeline-node {string.Join(' ', arguments)} was still running after {timeout.TotalSeconds:0} s");
        }

        return (node.ExitCode, await output, await error);
    }
}
