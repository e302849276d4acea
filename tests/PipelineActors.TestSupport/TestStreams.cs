using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.Hosting;
using Xunit;
using Xunit.Abstractions;

namespace PipelineActors.TestSupport;

/// <summary>What the cluster specs do with a stream they started: wait for its first plan, wait for its end.</summary>
public static class TestStreams
{
    /// <summary>Window <paramref name="window"/>, a 3 s deadline, 4 attempts, 64 KiB chunks: what the cluster specs stream with.</summary>
    public static IngestSettings Settings(int window = 4) => new(window, TimeSpan.FromSeconds(3), 4, 65536);

    /// <summary>
    /// Waits up to <paramref name="bound"/> for the stream to complete, writes the ingest's events to <paramref name="output"/>
    /// (they say why when it did not), and fails the test if it did not complete.
    /// </summary>
    public static async Task<IngestStats> FinishAsync(IngestSession session, TimeSpan bound, ITestOutputHelper output)
    {
        var done = await Task.WhenAny(session.Completed, Task.Delay(bound));
        var stats = await session.IngestStatsAsync();
        foreach (var e in stats.Events)
        {
            output.WriteLine(e.Text);
        }

        Assert.True(done == session.Completed, "the run did not complete in time");
        return stats;
    }

    /// <summary>The stream's first live plan, polled for a minute.</summary>
    public static async Task<PlanActivated> WaitForPlanAsync(IngestSession session)
    {
        for (var i = 0; i < 300; i++)
        {
            if ((await session.IngestStatsAsync()).Plan is { } plan)
            {
                return plan;
            }

            await Task.Delay(200);
        }

        Assert.Fail("no plan went live within a minute");
        return null!;
    }
}
