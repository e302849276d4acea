using PipelineActors.Harness;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.Hosting.Security;
using Google.Protobuf;

namespace PipelineActors.Integration.Tests;

/// <summary>
/// The run report's "lost", "duplicated" and "out of order" are measured where results land: a writer that drops,
/// repeats and swaps results on purpose, between the sink and the audit, must show in each counter and fail the run.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RunReportCounterSpecs : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-counters-").FullName;

    [Fact]
    public async Task A_dropped_a_repeated_and_a_swapped_result_each_show_in_the_report_and_the_run_is_not_clean()
    {
        var report = await RunTinyNet(audited => new FaultyWriter(audited));

        Assert.Equal(30, report.FramesIn);
        Assert.Equal(30, report.ResultsOut); // the sink delivered every frame once, in order
        Assert.Equal(1, report.Lost); // frame 3 never reached the results
        Assert.Equal(1, report.Duplicated); // frame 6 reached them twice
        Assert.Equal(1, report.OutOfOrder); // frame 9 came after frame 10
        Assert.False(report.Clean);
    }

    [Fact]
    public async Task A_run_whose_results_all_land_once_in_order_is_clean()
    {
        var refusedBefore = MessageGuard.RefusedSoFar("job-message-not-from-ingest");
        var report = await RunTinyNet(beforeAudit: null);

        Assert.Equal((0L, 0L, 0L), (report.Lost, report.Duplicated, report.OutOfOrder));
        Assert.True(report.Clean);
        // The run ends its job on the ingest's behalf; the supervisor took it (it once dropped it, sent with no sender).
        Assert.Equal(refusedBefore, MessageGuard.RefusedSoFar("job-message-not-from-ingest"));
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>30 frames of the tiny zoo model through 2 worker processes, as fast as they go.</summary>
    private async Task<RunReport> RunTinyNet(Func<IResultWriter, IResultWriter>? beforeAudit)
    {
        var model = Path.Combine(_folder, "tinynet.onnx");
        await File.WriteAllBytesAsync(model, ModelZoo.Build("tinynet").ToByteArray());
        return await LocalRun.RunAsync(new LocalRunOptions
        {
            ModelPath = model,
            Workers = 2,
            Frames = 30,
            FramesPerSecond = 0,
            Results = new NullResultWriter(),
            BeforeAudit = beforeAudit,
            Timeout = TimeSpan.FromMinutes(3),
        });
    }

    /// <summary>Drops frame 3, writes frame 6 twice, and holds frame 9 back until frame 10 is written.</summary>
    private sealed class FaultyWriter(IResultWriter inner) : IResultWriter
    {
        private FrameOutcome? _held;

        public void Write(FrameOutcome outcome)
        {
            switch (outcome.FrameId)
            {
                case 3:
                    return;
                case 6:
                    inner.Write(outcome);
                    inner.Write(outcome);
                    return;
                case 9:
                    _held = outcome;
                    return;
                case 10:
                    inner.Write(outcome);
                    inner.Write(_held!);
                    return;
                default:
                    inner.Write(outcome);
                    return;
            }
        }

        public void Dispose() => inner.Dispose();
    }
}
