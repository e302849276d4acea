using System.Globalization;

namespace PipelineActors.Harness.Chaos;

/// <summary>One process's resident memory over a soak: the first and last sample, the largest, and how many were taken.</summary>
public sealed record ResidentMemoryRow(string Process, string? Node, int Pid, long FirstBytes, long LastBytes, long MaxBytes, int Samples);

/// <summary>
/// Samples the resident memory (VmRSS in <c>/proc/PID/status</c>) of the soak's processes every interval, keeping the
/// first, last and largest sample of each: a node that leaks shows as a last sample well above its first.
/// </summary>
public sealed class ResidentMemorySampler(TimeSpan interval)
{
    private readonly Dictionary<int, ResidentMemoryRow> _rows = [];
    private readonly List<int> _order = [];
    private DateTime? _lastSampleUtc;

    public TimeSpan Interval { get; } = interval;

    /// <summary>
    /// The resident bytes in the text of a <c>/proc/PID/status</c> file (its <c>VmRSS: N kB</c> line), or null when it
    /// has none (a zombie, or a kernel thread).
    /// </summary>
    public static long? ParseVmRss(string status)
    {
        foreach (var line in status.Split('\n'))
        {
            if (!line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line["VmRSS:".Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0 || !long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return null;
            }

            var unit = fields.Length > 1 ? fields[1] : "kB";
            return unit switch
            {
                "kB" => value * 1024,
                "mB" or "MB" => value * 1024 * 1024,
                "B" => value,
                _ => null,
            };
        }

        return null;
    }

    /// <summary>The resident bytes of a running process now, or null when it has gone (or this is not Linux).</summary>
    public static long? ReadVmRss(int pid)
    {
        try
        {
            return ParseVmRss(File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status"));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Samples every process given when an interval has passed since the last sample (or on the first call, or when forced).</summary>
    /// <returns>True when it sampled.</returns>
    public bool SampleIfDue(DateTime nowUtc, IEnumerable<(string Process, string? Node, int Pid)> processes, bool force = false)
    {
        if (!force && _lastSampleUtc is { } last && nowUtc - last < Interval)
        {
            return false;
        }

        _lastSampleUtc = nowUtc;
        foreach (var (process, node, pid) in processes)
        {
            if (ReadVmRss(pid) is { } bytes)
            {
                Record(process, node, pid, bytes);
            }
        }

        return true;
    }

    /// <summary>Adds one sample of a process (keyed by its pid; a later node address replaces an unknown one).</summary>
    public void Record(string process, string? node, int pid, long bytes)
    {
        if (_rows.TryGetValue(pid, out var row))
        {
            _rows[pid] = row with
            {
                Node = row.Node ?? node,
                LastBytes = bytes,
                MaxBytes = Math.Max(row.MaxBytes, bytes),
                Samples = row.Samples + 1,
            };
        }
        else
        {
            _rows[pid] = new ResidentMemoryRow(process, node, pid, bytes, bytes, bytes, 1);
            _order.Add(pid);
        }
    }

    /// <summary>Every process sampled, in the order each was first seen.</summary>
    public IReadOnlyList<ResidentMemoryRow> Rows => _order.Select(pid => _rows[pid]).ToList();
}
