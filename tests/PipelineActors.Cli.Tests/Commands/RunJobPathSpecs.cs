using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using PipelineActors.Harness;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline run</c> takes the path a deployment's jobs take: its job is submitted to the cluster's job registry and runs on
/// the head's job host, so <c>pipeline job status</c> against the run's seed sees it, as it would see a submitted job.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class RunJobPathSpecs : IDisposable
{
    private readonly TinyNetFile _tinynet = new();

    [Fact(Timeout = 300_000)]
    public async Task A_run_is_a_job_of_its_cluster_that_pipeline_job_status_shows_running_on_the_head()
    {
        var lines = new ConcurrentQueue<string>();
        var run = LocalRun.RunAsync(new LocalRunOptions
        {
            ModelPath = _tinynet.Path,
            Workers = 1,
            Frames = 40,
            FramesPerSecond = 5, // 8 s of streaming: time enough to ask the registry while the job runs
            Progress = lines.Enqueue,
        });

        JsonDocument? status = null;
        string? head = null;
        while (!run.IsCompleted && status is null)
        {
            await Task.WhenAny(run, Task.Delay(500));
            var submitted = lines.Select(l => StatusLine().Match(l)).FirstOrDefault(m => m.Success);
            if (submitted is null)
            {
                continue;
            }

            var seed = submitted.Groups["seed"].Value;
            head = SeedHost().Match(seed).Groups[1].Value;
            var tls = submitted.Groups["tls"].Value;
            var asked = await Task.Run(() => Cli.Run("job", "status", "--name", "run", "--seed", seed, "--tls", tls, "--json"));
            Assert.True(asked.ExitCode == 0, asked.Error + asked.Output);
            using var answer = JsonDocument.Parse(asked.Output);
            if (answer.RootElement.GetProperty("state").GetString() == "running")
            {
                status = JsonDocument.Parse(asked.Output);
            }
        }

        var report = await run;
        Assert.True(status is not null, "pipeline job status never saw the run's job running:\n" + string.Join('\n', lines));
        Assert.Equal(head, status.RootElement.GetProperty("node").GetString());
        // The synthetic camera is live: a frame the pipeline was not ready for is skipped, as a camera's would be.
        Assert.True(report.ResultsOut > 0);
        Assert.Equal(report.FramesIn, report.ResultsOut);
        Assert.True(report.Clean, $"lost {report.Lost}, duplicated {report.Duplicated}, out of order {report.OutOfOrder}");
        status.Dispose();
    }

    public void Dispose() => _tinynet.Dispose();

    [GeneratedRegex(@"pipeline job status --name run --seed (?<seed>\S+) --tls (?<tls>\S+)")]
    private static partial Regex StatusLine();

    [GeneratedRegex(@"@([^:]+:\d+)")]
    private static partial Regex SeedHost();
}
