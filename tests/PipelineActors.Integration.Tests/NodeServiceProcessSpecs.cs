using System.Diagnostics;

namespace PipelineActors.Integration.Tests;

/// <summary>The node binary as <c>pipeline run</c> starts it: it exits when its parent dies, whatever killed the parent.</summary>
[Collection(ClusterCollection.Name)]
public sealed class NodeServiceProcessSpecs
{
    [Fact]
    public async Task A_node_started_for_a_parent_exits_soon_after_the_parent_is_killed()
    {
        using var parent = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "pipeline-node.dll"), "--roles", "worker", "--parent-pid", parent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) })
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
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "pipeline-node.dll"), "--bench-loop", "/nonexistent/model.onnx", "--seconds", "1" })
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
}
