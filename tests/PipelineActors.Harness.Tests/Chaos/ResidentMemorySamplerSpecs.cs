using System.Diagnostics;
using PipelineActors.Harness.Chaos;

namespace PipelineActors.Harness.Tests.Chaos;

public class ResidentMemorySamplerSpecs
{
    // The shape of a real /proc/PID/status (Linux 6.x), trimmed.
    private const string Status = "Name:\tpipeline-node\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\n"
        + "VmPeak:\t 3563420 kB\nVmSize:\t 3498000 kB\nVmHWM:\t  201844 kB\nVmRSS:\t  187432 kB\nRssAnon:\t  120000 kB\n"
        + "Threads:\t27\n";

    [Fact]
    public void VmRss_is_read_in_bytes_and_a_status_without_it_gives_none()
    {
        Assert.Equal(187432L * 1024, ResidentMemorySampler.ParseVmRss(Status));
        Assert.Null(ResidentMemorySampler.ParseVmRss("Name:\tkthreadd\nState:\tS (sleeping)\n"));
        Assert.Null(ResidentMemorySampler.ParseVmRss("VmRSS:\t  lots kB\n"));
        Assert.Null(ResidentMemorySampler.ParseVmRss(""));
    }

    [Fact]
    public void This_process_has_a_resident_size_like_the_runtime_says_and_a_gone_pid_has_none()
    {
        var bytes = ResidentMemorySampler.ReadVmRss(Environment.ProcessId);

        Assert.NotNull(bytes);
        var workingSet = Process.GetCurrentProcess().WorkingSet64;
        Assert.InRange(bytes.Value, workingSet / 2, workingSet * 2);
        using var gone = Process.Start("true")!;
        gone.WaitForExit();
        var pid = gone.Id;
        gone.Dispose();
        Assert.Null(ResidentMemorySampler.ReadVmRss(pid));
    }

    [Fact]
    public void Each_process_keeps_its_first_last_and_largest_sample_in_the_order_first_seen()
    {
        var sampler = new ResidentMemorySampler(TimeSpan.FromSeconds(10));
        sampler.Record("worker-0", null, 10, 100);
        sampler.Record("head", "coordinator", 1, 50);
        sampler.Record("worker-0", "127.0.0.1:4000", 10, 300);
        sampler.Record("worker-0", "127.0.0.1:4001", 10, 200);

        Assert.Equal(
            [
                new ResidentMemoryRow("worker-0", "127.0.0.1:4000", 10, 100, 200, 300, 3),
                new ResidentMemoryRow("head", "coordinator", 1, 50, 50, 50, 1),
            ],
            sampler.Rows);
    }

    [Fact]
    public void A_sample_is_taken_once_per_interval_unless_forced()
    {
        var sampler = new ResidentMemorySampler(TimeSpan.FromSeconds(10));
        var start = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var self = new[] { ("self", (string?)null, Environment.ProcessId) };

        Assert.True(sampler.SampleIfDue(start, self));
        Assert.False(sampler.SampleIfDue(start.AddSeconds(9.9), self));
        Assert.True(sampler.SampleIfDue(start.AddSeconds(10), self));
        Assert.True(sampler.SampleIfDue(start.AddSeconds(11), self, force: true));
        Assert.Equal(3, Assert.Single(sampler.Rows).Samples);
    }
}
