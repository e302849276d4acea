using System.Globalization;
using System.Text.RegularExpressions;

namespace PipelineActors.Harness.Emulation;

/// <summary>
/// Names of what an emulation creates (network namespaces, veth ends, cgroups): "pae", the owner's pid (5 base-36 digits),
/// a per-process run number (2), a role letter and the worker's index (2). 13 characters fit Linux's 15-character interface
/// names, and the pid lets a later run remove what a crashed one left without touching a live run's.
/// </summary>
internal static partial class EmulationNames
{
    public const string Prefix = "pae";

    public const char NamespaceRole = 'n';

    public const char HostEndRole = 'h';

    public const char WorkerEndRole = 'w';

    public const char CgroupRole = 'c';

    private const string Digits = "0123456789abcdefghijklmnopqrstuvwxyz";

    private static int _runs;

    /// <summary>A fresh run tag for this process: "pae" + pid + run number.</summary>
    public static string NewRunTag() => RunTag(Environment.ProcessId, Interlocked.Increment(ref _runs));

    public static string RunTag(int pid, int run) => Prefix + Base36(pid, 5) + Base36(run % (36 * 36), 2);

    public static string Of(string runTag, char role, int index) => runTag + role + Base36(index, 2);

    /// <summary>The pid that owns a name of ours, or null when the name is not ours.</summary>
    public static int? OwnerOf(string name)
    {
        var match = NamePattern().Match(name);
        if (!match.Success)
        {
            return null;
        }

        var pid = 0L;
        foreach (var c in match.Groups[1].Value)
        {
            pid = pid * 36 + Digits.IndexOf(c, StringComparison.Ordinal);
        }

        return pid > int.MaxValue ? null : (int)pid;
    }

    /// <summary>True for a name of ours whose owner process is gone (a crashed or killed run).</summary>
    public static bool IsStale(string name) => OwnerOf(name) is { } pid && !Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}");

    private static string Base36(int value, int width)
    {
        var chars = new char[width];
        var rest = (long)value;
        for (var i = width - 1; i >= 0; i--)
        {
            chars[i] = Digits[(int)(rest % 36)];
            rest /= 36;
        }

        if (rest != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"does not fit {width} base-36 digits");
        }

        return new string(chars);
    }

    [GeneratedRegex("^pae([0-9a-z]{5})[0-9a-z]{2}[nhwc][0-9a-z]{2}$")]
    private static partial Regex NamePattern();
}
