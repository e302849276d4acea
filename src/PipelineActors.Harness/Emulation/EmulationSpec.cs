using System.Globalization;
using PipelineActors.Onnx;

namespace PipelineActors.Harness.Emulation;

/// <summary>How one worker is slowed: a CPU quota, a shaped link, an added delay; all null or zero is full speed.</summary>
/// <param name="Cpu">CPU quota as a fraction of one core (cgroups), or null for no quota.</param>
/// <param name="LinkMbit">Rate of the worker's link in and out (tc tbf), or null for an unshaped link.</param>
/// <param name="LatencyMs">
/// One-way delay the application adds on the worker's link: netem is missing on these machines, so the kernel adds none.
/// </param>
public sealed record WorkerEmulation(double? Cpu = null, double? LinkMbit = null, double LatencyMs = 0)
{
    /// <summary>A worker with no quota, no shaping and no delay.</summary>
    public static WorkerEmulation FullSpeed { get; } = new();

    public bool IsFullSpeed => Cpu is null && LinkMbit is null && LatencyMs == 0;

    /// <summary>The entry as <c>--emulate</c> takes it (empty for full speed).</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (Cpu is { } cpu)
        {
            parts.Add($"cpu={cpu.ToString(CultureInfo.InvariantCulture)}");
        }

        if (LinkMbit is { } link)
        {
            parts.Add($"link={link.ToString(CultureInfo.InvariantCulture)}");
        }

        if (LatencyMs != 0)
        {
            parts.Add($"latency={LatencyMs.ToString(CultureInfo.InvariantCulture)}");
        }

        return string.Join(',', parts);
    }
}

/// <summary>
/// The <c>--emulate</c> flag: one entry per worker, separated by ';', each a ','-list of <c>cpu=F</c> (fraction of one core),
/// <c>link=Mbit</c> and <c>latency=MS</c>; an empty entry is a full-speed worker.
/// Example: <c>"cpu=1.0;cpu=0.5,link=20;cpu=0.25"</c>.
/// </summary>
public sealed class EmulationSpec
{
    /// <summary>The smallest quota: the kernel refuses a CFS quota under 1 ms per 100 ms period.</summary>
    public const double MinCpu = 0.01;

    /// <summary>The slowest link: tc's rate is set in whole kbit/s, and a slower link starves even TCP's handshake.</summary>
    public const double MinLinkMbit = 0.01;

    /// <summary>The longest added delay (a minute): longer is a typo, not a link.</summary>
    public const double MaxLatencyMs = 60_000;

    private EmulationSpec(IReadOnlyList<WorkerEmulation> workers)
    {
        Workers = workers;
    }

    public IReadOnlyList<WorkerEmulation> Workers { get; }

    /// <summary>True when some worker has a <c>link=</c>: the run then needs network namespaces.</summary>
    public bool HasLinks => Workers.Any(w => w.LinkMbit is not null);

    /// <summary>True when some worker has a <c>cpu=</c>: the run then needs cgroups.</summary>
    public bool HasQuotas => Workers.Any(w => w.Cpu is not null);

    /// <summary>Parses the flag; <paramref name="cores"/> bounds <c>cpu=</c> (default: this machine's).</summary>
    /// <exception cref="PipelineInputException">The text is not a valid spec; the message is one sentence.</exception>
    public static EmulationSpec Parse(string text, int? cores = null)
    {
        var limit = cores ?? Environment.ProcessorCount;
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new PipelineInputException("--emulate is empty; give one entry per worker, e.g. \"cpu=1.0;cpu=0.5,link=20;cpu=0.25\".");
        }

        var entries = text.Split(';');
        var workers = new List<WorkerEmulation>(entries.Length);
        for (var i = 0; i < entries.Length; i++)
        {
            workers.Add(ParseEntry(entries[i].Trim(), i + 1, limit));
        }

        return new EmulationSpec(workers);
    }

    /// <summary>The spec for a run with this many workers; a count that differs is the user's mistake.</summary>
    /// <exception cref="PipelineInputException">The spec has a different number of entries.</exception>
    public EmulationSpec RequireWorkers(int workers)
    {
        if (Workers.Count != workers)
        {
            throw new PipelineInputException(
                $"--emulate has {Workers.Count} entr{(Workers.Count == 1 ? "y" : "ies")} but the run has {workers} worker(s); " +
                "give one entry per worker (an empty entry is a full-speed worker).");
        }

        return this;
    }

    public override string ToString() => string.Join(';', Workers.Select(w => w.ToString()));

    private static WorkerEmulation ParseEntry(string entry, int number, int cores)
    {
        double? cpu = null;
        double? link = null;
        double? latency = null;
        foreach (var raw in entry.Split(','))
        {
            var part = raw.Trim();
            if (part.Length == 0)
            {
                continue;
            }

            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw Error(number, entry, $"'{part}' is not key=value (keys: cpu, link, latency)");
            }

            var key = part[..equals].Trim().ToLowerInvariant();
            var value = part[(equals + 1)..].Trim();
            switch (key)
            {
                case "cpu":
                    Once(cpu, key, number, entry);
                    cpu = Number(key, value, number, entry);
                    if (cpu <= 0 || cpu > cores)
                    {
                        throw Error(number, entry, $"cpu must be above 0 and at most {cores} (this machine's cores), not {value}");
                    }

                    if (cpu < MinCpu)
                    {
                        throw Error(number, entry, $"cpu must be at least {Invariant(MinCpu)}, the smallest quota, not {value}");
                    }

                    break;
                case "link":
                    Once(link, key, number, entry);
                    link = Number(key, value, number, entry);
                    if (link < MinLinkMbit)
                    {
                        throw Error(number, entry, $"link must be at least {Invariant(MinLinkMbit)} Mbit/s, not {value}");
                    }

                    break;
                case "latency":
                    Once(latency, key, number, entry);
                    latency = Number(key, value, number, entry);
                    if (latency < 0 || latency > MaxLatencyMs)
                    {
                        throw Error(number, entry, $"latency must be between 0 and {Invariant(MaxLatencyMs)} ms, not {value}");
                    }

                    break;
                default:
                    throw Error(number, entry, $"'{key}' is not a key; use cpu, link or latency");
            }
        }

        return new WorkerEmulation(cpu, link, latency ?? 0);
    }

    private static void Once(double? seen, string key, int number, string entry)
    {
        if (seen is not null)
        {
            throw Error(number, entry, $"{key} is given twice");
        }
    }

    private static double Number(string key, string value, int number, string entry)
    {
        // TryParse accepts "NaN" and "Infinity"; neither is a speed.
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) || !double.IsFinite(parsed))
        {
            throw Error(number, entry, $"{key} must be a finite number, not '{value}'");
        }

        return parsed;
    }

    private static string Invariant(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static PipelineInputException Error(int number, string entry, string what) =>
        new($"--emulate entry {number} ('{entry}'): {what}.");
}
