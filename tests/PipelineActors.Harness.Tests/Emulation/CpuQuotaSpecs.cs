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
            // Four other engineers share these two cores (load averages of 14 to 33 seen): weighed as 100 ordinary tasks each, the
            // quotas, not the other load, decide for these 2.5 s. Both run at once so that what is left weighs on both alike.
            devices.Workers[0].Quota!.SetWeight(100);
            devices.Workers[1].Quota!.SetWeight(100);
            quarter = Probe.Start(devices.Workers[0].Wrap("bash", Probe.BusyLoop(20)));
            full = Probe.Start(devices.Workers[1].Wrap("bash", Probe.BusyLoop(20)));
            await Task.Delay(500);
            Assert.Contains(quarter.Id, devices.Workers[0].Quota!.Pids);
            Assert.Contains(full.Id, devices.Workers[1].Quota!.Pids);

            var quarterBefore = devices.Workers[0].Quota!.ReadThrottling();
            var fullBefore = devices.Workers[1].Quota!.ReadThrottling();
            var clock = Stopwatch.StartNew();
            var quarterCpu = quarter.TotalProcessorTime;
            var fullCpu = full.TotalProcessorTime;
            await Task.Delay(2000);
            quarter.Refresh();
            full.Refresh();
            var seconds = clock.Elapsed.TotalSeconds;
            var quarterShare = (quarter.TotalProcessorTime - quarterCpu).TotalSeconds / seconds;
            var fullShare = (full.TotalProcessorTime - fullCpu).TotalSeconds / seconds;
            var quarterStats = devices.Workers[0].Quota!.ReadThrottling();
            var fullStats = devices.Workers[1].Quota!.ReadThrottling();
            var quarterThrottled = quarterStats.ThrottledPeriods - quarterBefore.ThrottledPeriods;
            var fullThrottled = fullStats.ThrottledPeriods - fullBefore.ThrottledPeriods;
            var fullPeriods = fullStats.Periods - fullBefore.Periods;
            var load = double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            output.WriteLine(
                $"cpu=0.25: {quarterShare:F3} of a core, throttled in {quarterThrottled} of {quarterStats.Periods - quarterBefore.Periods} " +
                $"periods; cpu=1.0: {fullShare:F3} of a core, throttled in {fullThrottled} of {fullPeriods}; load average {load}");

            Assert.InRange(quarterShare, 0.15, 0.40);
            Assert.True(quarterThrottled > 0, "the quarter-core group was never throttled");
            // The full core's quota is not what holds it back.
            Assert.True(fullThrottled <= fullPeriods / 10, $"the full-core group was throttled in {fullThrottled} of {fullPeriods} periods");
            Assert.True(fullShare > 0.55 && fullShare > 1.6 * quarterShare, $"cpu=1.0 got {fullShare:F3} of a core against {quarterShare:F3}");
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
                quota.SetWeight(4);
                Assert.Equal("4096", File.ReadAllText(Path.Combine(path, "cpu.shares")).Trim());
            }
            else
            {
                Assert.Equal("40000 100000", File.ReadAllText(Path.Combine(path, "cpu.max")).Trim());
                quota.SetWeight(4);
                Assert.Equal("400", File.ReadAllText(Path.Combine(path, "cpu.weight")).Trim());
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

public class CgroupCpuSpecs
{
    private static readonly Dictionary<string, string> Files = new()
    {
        ["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"] = "-1\n",
        ["/sys/fs/cgroup/unified/cgroup.subtree_control"] = "\n",
        ["/sys/fs/cgroup/cgroup.subtree_control"] = "cpuset cpu io memory pids\n",
        ["/mnt/nocpu/cgroup.subtree_control"] = "memory pids\n",
    };

    [Fact]
    public void A_hybrid_machine_uses_the_v1_cpu_controller_not_the_empty_v2_mount()
    {
        string[] mounts =
        [
            "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0",
            "cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0",
            "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0",
        ];

        Assert.Equal(("/sys/fs/cgroup/cpu,cpuacct", CgroupVersion.V1), CgroupCpu.Choose(mounts, Read));
    }

    [Fact]
    public void A_v2_machine_uses_the_unified_root_when_it_hands_cpu_down()
    {
        string[] mounts = ["proc /proc proc rw 0 0", "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0"];

        Assert.Equal(("/sys/fs/cgroup", CgroupVersion.V2), CgroupCpu.Choose(mounts, Read));
    }

    [Fact]
    public void A_machine_whose_only_v2_root_keeps_cpu_to_itself_has_no_cpu_controller()
    {
        string[] mounts =
        [
            "cgroup2 /mnt/nocpu cgroup2 rw 0 0",
            "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0",
            "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0",
        ];

        Assert.Null(CgroupCpu.Choose(mounts, Read));
    }

    private static string? Read(string path) => Files.GetValueOrDefault(path);
}
