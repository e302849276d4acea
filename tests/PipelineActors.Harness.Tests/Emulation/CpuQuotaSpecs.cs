using System.Diagnostics;
using PipelineActors.Harness.Emulation;
using Xunit.Abstractions;

namespace PipelineActors.Harness.Tests.Emulation;

public class CpuQuotaSpecs(ITestOutputHelper output)
{
    [Fact(Timeout = 60_000)]
    public async Task A_busy_process_under_a_quarter_core_gets_about_a_quarter_while_a_full_core_gets_clearly_more()
    {
        Process? quarter = null;
        Process? full = null;
        using var devices = EmulatedDevices.Create(EmulationSpec.Parse("cpu=0.25;cpu=1.0"));
        try
        {
            // Both at once: whatever else loads this shared machine then weighs on both alike.
            quarter = Probe.Start(devices.Workers[0].Wrap("bash", Probe.BusyLoop(20)));
            full = Probe.Start(devices.Workers[1].Wrap("bash", Probe.BusyLoop(20)));
            await Task.Delay(500);
            Assert.Contains(quarter.Id, devices.Workers[0].Quota!.Pids);
            Assert.Contains(full.Id, devices.Workers[1].Quota!.Pids);

            var throttledBefore = devices.Workers[0].Quota!.ReadThrottling();
            var clock = Stopwatch.StartNew();
            var quarterBefore = quarter.TotalProcessorTime;
            var fullBefore = full.TotalProcessorTime;
            await Task.Delay(2000);
            quarter.Refresh();
            full.Refresh();
            var seconds = clock.Elapsed.TotalSeconds;
            var quarterShare = (quarter.TotalProcessorTime - quarterBefore).TotalSeconds / seconds;
            var fullShare = (full.TotalProcessorTime - fullBefore).TotalSeconds / seconds;
            var throttled = devices.Workers[0].Quota!.ReadThrottling();
            output.WriteLine(
                $"cpu=0.25: {quarterShare:F3} of a core, throttled {throttled.ThrottledPeriods - throttledBefore.ThrottledPeriods} " +
                $"of {throttled.Periods - throttledBefore.Periods} periods; cpu=1.0: {fullShare:F3} of a core; " +
                $"load average {File.ReadAllText("/proc/loadavg").Trim()}");

            Assert.InRange(quarterShare, 0.15, 0.40);
            Assert.True(throttled.ThrottledPeriods > throttledBefore.ThrottledPeriods, "the quarter-core group was never throttled");
            // Not "about 1.0": four other engineers share this machine's two cores, and the full-core worker competes with them.
            Assert.True(fullShare > 1.3 * quarterShare, $"cpu=1.0 got {fullShare:F3} of a core against {quarterShare:F3}");
        }
        finally
        {
            Probe.Stop(quarter);
            Probe.Stop(full);
        }
    }

    [Fact(Timeout = 30_000)]
    public Task The_cgroup_holds_the_quota_asked_for_and_is_gone_after_disposal() => Task.Run(() =>
    {
        string path;
        using (var quota = CpuQuota.Create(EmulationNames.Of(EmulationNames.NewRunTag(), EmulationNames.CgroupRole, 0), 0.4))
        {
            path = quota.Path;
            Assert.Equal(40_000, quota.QuotaMicroseconds);
            if (quota.Version == CgroupVersion.V1)
            {
                Assert.Equal("100000", File.ReadAllText(Path.Combine(path, "cpu.cfs_period_us")).Trim());
                Assert.Equal("40000", File.ReadAllText(Path.Combine(path, "cpu.cfs_quota_us")).Trim());
            }
            else
            {
                Assert.Equal("40000 100000", File.ReadAllText(Path.Combine(path, "cpu.max")).Trim());
            }
        }

        Assert.False(Directory.Exists(path));
    });

    [Fact]
    public void The_v2_quota_line_is_quota_then_period_in_microseconds()
    {
        Assert.Equal("25000 100000", CpuQuota.CpuMaxLine(0.25));
        Assert.Equal("150000 100000", CpuQuota.CpuMaxLine(1.5));
    }

    [Fact(Timeout = 30_000)]
    public async Task Disposal_removes_the_cgroup_even_when_a_process_outlived_the_run()
    {
        Process? survivor = null;
        string path;
        var quota = CpuQuota.Create(EmulationNames.Of(EmulationNames.NewRunTag(), EmulationNames.CgroupRole, 0), 0.1);
        try
        {
            path = quota.Path;
            survivor = Probe.Start(quota.Wrap("sleep", ["20"]));
            await Task.Delay(200);
            Assert.Contains(survivor.Id, quota.Pids);
            quota.Dispose();

            Assert.False(Directory.Exists(path));
            Assert.False(survivor.HasExited);
        }
        finally
        {
            quota.Dispose();
            Probe.Stop(survivor);
        }
    }
}
