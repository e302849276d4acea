using System.Globalization;
using PipelineActors.Onnx;

namespace PipelineActors.Harness.Emulation;

/// <summary>Which cgroup interface carries the CPU quota.</summary>
public enum CgroupVersion
{
    /// <summary>cgroup v1: <c>cpu.cfs_period_us</c> and <c>cpu.cfs_quota_us</c> in the cpu controller's hierarchy.</summary>
    V1,

    /// <summary>cgroup v2: one <c>cpu.max</c> file ("quota period") in the unified hierarchy.</summary>
    V2,
}

/// <summary>What <c>cpu.stat</c> says: enforcement periods, how many of them throttled the group, and for how long.</summary>
public sealed record CpuThrottling(long Periods, long ThrottledPeriods, TimeSpan ThrottledTime);

/// <summary>
/// A CPU quota for one emulated worker: a cgroup of its own with a CFS quota of <see cref="Cores"/> of one core per period.
/// Put processes in with <see cref="Add"/> or, race-free, start them through <see cref="Wrap"/>; dispose after they exit.
/// </summary>
public sealed class CpuQuota : IDisposable
{
    /// <summary>The CFS period: 100 ms, the kernel's default.</summary>
    public const int PeriodMicroseconds = 100_000;

    private bool _disposed;

    private CpuQuota(string name, string path, CgroupVersion version, double cores)
    {
        Name = name;
        Path = path;
        Version = version;
        Cores = cores;
    }

    public string Name { get; }

    /// <summary>The cgroup's folder, e.g. <c>/sys/fs/cgroup/cpu/pae...c00</c>.</summary>
    public string Path { get; }

    public CgroupVersion Version { get; }

    /// <summary>The quota as a fraction of one core (0.25: a quarter of one core's time).</summary>
    public double Cores { get; }

    /// <summary>Quota per period in microseconds, as written to the cgroup.</summary>
    public int QuotaMicroseconds => QuotaFor(Cores);

    /// <summary>Creates the cgroup <paramref name="name"/> with the quota; needs root and a cpu controller.</summary>
    /// <exception cref="PipelineInputException">Not root, no cpu controller, or a quota out of range.</exception>
    public static CpuQuota Create(string name, double cores)
    {
        if (!double.IsFinite(cores) || cores < EmulationSpec.MinCpu)
        {
            throw new PipelineInputException($"A CPU quota must be at least {EmulationSpec.MinCpu} of a core, not {cores}.");
        }

        var (root, version) = CgroupCpu.Find();
        var path = System.IO.Path.Combine(root, name);
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new PipelineInputException($"CPU quotas need root to create cgroups under {root}; run as root or drop cpu= from --emulate.", e);
        }

        var quota = new CpuQuota(name, path, version, cores);
        try
        {
            if (version == CgroupVersion.V1)
            {
                Write(path, "cpu.cfs_period_us", PeriodMicroseconds.ToString(CultureInfo.InvariantCulture));
                Write(path, "cpu.cfs_quota_us", quota.QuotaMicroseconds.ToString(CultureInfo.InvariantCulture));
            }
            else
            {
                Write(path, "cpu.max", CpuMaxLine(cores));
            }
        }
        catch
        {
            quota.Dispose();
            throw;
        }

        return quota;
    }

    /// <summary>The v2 <c>cpu.max</c> line for a quota: "quota period" in microseconds.</summary>
    public static string CpuMaxLine(double cores) =>
        string.Create(CultureInfo.InvariantCulture, $"{QuotaFor(cores)} {PeriodMicroseconds}");

    /// <summary>Moves a running process (all its threads) into the cgroup; its children from then on follow it.</summary>
    public void Add(int pid)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Write(Path, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Weighs the group as this many ordinary tasks when the machine is oversubscribed (v1 <c>cpu.shares</c> 1024 each, v2
    /// <c>cpu.weight</c> 100 each). A group counts as one task by default, however many threads it runs, so on a busy machine
    /// the other load, not the quota, would set its speed; a larger weight lets the quota decide.
    /// </summary>
    public void SetWeight(double ordinaryTasks)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Version == CgroupVersion.V1)
        {
            Write(Path, "cpu.shares", ((long)Math.Clamp(Math.Round(ordinaryTasks * 1024), 2, 262_144)).ToString(CultureInfo.InvariantCulture));
        }
        else
        {
            Write(Path, "cpu.weight", ((long)Math.Clamp(Math.Round(ordinaryTasks * 100), 1, 10_000)).ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The processes now in the cgroup.</summary>
    public IReadOnlyList<int> Pids => ReadPids(Path);

    /// <summary>
    /// A command that joins this cgroup and then becomes <paramref name="program"/>: the shell writes its own pid to
    /// <c>cgroup.procs</c> and execs, so the program never runs a moment outside the quota and keeps the launched pid.
    /// </summary>
    public (string Program, IReadOnlyList<string> Arguments) Wrap(string program, IEnumerable<string> arguments)
    {
        var procs = System.IO.Path.Combine(Path, "cgroup.procs");
        var args = new List<string> { "-c", $"echo $$ > '{procs}' && exec \"$@\"", "sh", program };
        args.AddRange(arguments);
        return ("/bin/sh", args);
    }

    /// <summary>Reads <c>cpu.stat</c> (v1 reports throttled time in ns, v2 in µs).</summary>
    public CpuThrottling ReadThrottling()
    {
        long periods = 0, throttled = 0;
        var time = TimeSpan.Zero;
        foreach (var line in File.ReadAllLines(System.IO.Path.Combine(Path, "cpu.stat")))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 2 || !long.TryParse(fields[1], CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            switch (fields[0])
            {
                case "nr_periods":
                    periods = value;
                    break;
                case "nr_throttled":
                    throttled = value;
                    break;
                case "throttled_time":
                    time = TimeSpan.FromTicks(value / 100);
                    break;
                case "throttled_usec":
                    time = TimeSpan.FromMicroseconds(value);
                    break;
            }
        }

        return new CpuThrottling(periods, throttled, time);
    }

    /// <summary>
    /// Removes the cgroup. The kernel refuses while processes remain: wait a moment for exiting ones, then move any
    /// survivors to the parent group so that nothing is left behind.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Remove(Path);
    }

    internal static void Remove(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        while (Directory.Exists(path))
        {
            try
            {
                // rmdir, not a recursive delete: a cgroup's control files cannot be deleted, only the folder.
                Directory.Delete(path);
                return;
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
            catch (IOException)
            {
                var parent = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path)!, "cgroup.procs");
                foreach (var pid in ReadPids(path))
                {
                    try
                    {
                        File.WriteAllText(parent, pid.ToString(CultureInfo.InvariantCulture));
                    }
                    catch (IOException)
                    {
                        // Exited in between.
                    }
                }

                deadline = DateTime.UtcNow + TimeSpan.FromSeconds(1);
            }
        }
    }

    private static int QuotaFor(double cores) => (int)Math.Round(cores * PeriodMicroseconds);

    private static List<int> ReadPids(string path)
    {
        try
        {
            return File.ReadAllLines(System.IO.Path.Combine(path, "cgroup.procs"))
                .Select(l => int.Parse(l, CultureInfo.InvariantCulture))
                .ToList();
        }
        catch (IOException)
        {
            return [];
        }
    }

    private static void Write(string folder, string file, string value)
    {
        // One write per value: cgroup files take a whole value per write(2).
        File.WriteAllText(System.IO.Path.Combine(folder, file), value);
    }
}

/// <summary>Finds where this machine's cpu controller lives: v1's own hierarchy, else a v2 one that has it.</summary>
internal static class CgroupCpu
{
    public static (string Root, CgroupVersion Version) Find()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new PipelineInputException("CPU quotas need root (cgroups); run as root or drop cpu= from --emulate.");
        }

        return Choose(File.ReadLines("/proc/self/mounts"), ReadIfThere)
            ?? throw new PipelineInputException(
                "CPU quotas need a cgroup cpu controller (v1 cpu.cfs_quota_us or v2 cpu.max) and this machine mounts none; " +
                "drop cpu= from --emulate.");
    }

    /// <summary>
    /// Picks the hierarchy from /proc/self/mounts lines: a v1 cpu controller first (a hybrid machine mounts v2 too, without
    /// controllers), else a v2 mount whose root hands cpu down to its children. <paramref name="read"/> gives a file or null.
    /// </summary>
    internal static (string Root, CgroupVersion Version)? Choose(IEnumerable<string> mounts, Func<string, string?> read)
    {
        string? v2 = null;
        foreach (var line in mounts)
        {
            var fields = line.Split(' ');
            if (fields.Length < 4)
            {
                continue;
            }

            if (fields[2] == "cgroup" && fields[3].Split(',').Contains("cpu") && read(Path.Combine(fields[1], "cpu.cfs_quota_us")) is not null)
            {
                return (fields[1], CgroupVersion.V1);
            }

            // Children get cpu.max only when the root lists cpu in its subtree_control.
            if (fields[2] == "cgroup2" && read(Path.Combine(fields[1], "cgroup.subtree_control")) is { } control
                && control.Split(' ', '\n').Contains("cpu"))
            {
                v2 ??= fields[1];
            }
        }

        return v2 is null ? null : (v2, CgroupVersion.V2);
    }

    /// <summary>The cpu controller's root, or null where there is none or no root to use it (stale cleanup then has nothing to do).</summary>
    public static string? TryFindRoot()
    {
        try
        {
            return Find().Root;
        }
        catch (PipelineInputException)
        {
            return null;
        }
    }

    private static string? ReadIfThere(string path) => File.Exists(path) ? File.ReadAllText(path) : null;
}
