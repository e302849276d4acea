using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using PipelineActors.Harness.Emulation;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Stages;

namespace PipelineActors.Harness;

/// <summary>A worker's measured times for consecutive segments of the model, each run as a stage of its own inside its device.</summary>
/// <param name="Bounds">Node positions: segment s is nodes [Bounds[s], Bounds[s + 1]).</param>
/// <param name="MeanMs">Segment s's wall time per run on this worker, over a loop of many quota periods.</param>
/// <param name="Cached">Whether the figures came from the cache rather than a measurement in this run.</param>
public sealed record SegmentTimes(int Worker, IReadOnlyList<int> Bounds, IReadOnlyList<double> MeanMs, bool Cached = false)
{
    public double TotalMs => MeanMs.Sum();
}

/// <summary>
/// What a device's segment times depend on, and so what they are cached by: the model's SHA-256, the device's CPU quota, the
/// intra-op threads, the segment bounds, the input sizes and the machine's CPU. The link does not change compute and is left out.
/// </summary>
public sealed record DeviceTimesKey(string ModelSha256, double? Cpu, int IntraOpThreads, IReadOnlyList<int> Bounds, string InputSizes, string Machine)
{
    /// <summary>One line holding every field, in a fixed order and invariant culture.</summary>
    public string Canonical => string.Join(
        '|',
        // The figure's kind: mean wall time per run over the loop (version 2; version 1 kept medians, blind to throttling).
        "mean-wall-v2",
        ModelSha256.ToLowerInvariant(),
        Cpu is { } cpu ? "cpu=" + cpu.ToString("R", CultureInfo.InvariantCulture) : "cpu=full",
        "threads=" + IntraOpThreads.ToString(CultureInfo.InvariantCulture),
        "bounds=" + string.Join(',', Bounds.Select(b => b.ToString(CultureInfo.InvariantCulture))),
        "input=" + InputSizes,
        "machine=" + Machine);

    /// <summary>The cache file's name: the model's SHA prefix (to find a model's entries by eye) and a hash of the whole key.</summary>
    public string FileName =>
        $"{ModelSha256[..Math.Min(12, ModelSha256.Length)].ToLowerInvariant()}-"
        + $"{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical)))[..16]}.json";

    /// <summary>Input size overrides as one invariant string, sorted by name so the same sizes give the same key.</summary>
    public static string DescribeInputSizes(IReadOnlyDictionary<string, long[]>? sizes) => sizes is not { Count: > 0 }
        ? "declared"
        : string.Join(' ', sizes.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => $"{kv.Key}={string.Join(',', kv.Value.Select(v => v.ToString(CultureInfo.InvariantCulture)))}"));

    /// <summary>This machine's CPU model (from /proc/cpuinfo) and core count.</summary>
    public static string ThisMachine()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return $"{cpu ?? "unknown CPU"} x{Environment.ProcessorCount}";
    }
}

/// <summary>Segment times on disk, one file per <see cref="DeviceTimesKey"/>: a device is measured once per model and spec.</summary>
public sealed class DeviceTimesCache(string folder)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public string Folder { get; } = folder;

    /// <summary><c>$XDG_CACHE_HOME/pipelineactors/device-times</c>, else <c>~/.cache/pipelineactors/device-times</c>.</summary>
    public static DeviceTimesCache Default()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return new DeviceTimesCache(Path.Combine(root, "pipelineactors", "device-times"));
    }

    /// <summary>The cached segment times for this key; null when there are none, or the file is for another key or damaged.</summary>
    public IReadOnlyList<double>? TryRead(DeviceTimesKey key)
    {
        var path = Path.Combine(Folder, key.FileName);
        try
        {
            var entry = File.Exists(path) ? JsonSerializer.Deserialize<Entry>(File.ReadAllText(path)) : null;
            return entry is not null && entry.Key == key.Canonical && entry.MeanMs.Count + 1 == key.Bounds.Count
                && entry.MeanMs.All(ms => ms > 0 && double.IsFinite(ms))
                    ? entry.MeanMs
                    : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Write(DeviceTimesKey key, IReadOnlyList<double> meanMs)
    {
        Directory.CreateDirectory(Folder);
        var path = Path.Combine(Folder, key.FileName);
        var temporary = path + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(new Entry(key.Canonical, meanMs.ToList(), DateTimeOffset.UtcNow), Json));
        File.Move(temporary, path, overwrite: true);
    }

    private sealed record Entry(string Key, List<double> MeanMs, DateTimeOffset MeasuredAt);
}

/// <summary>
/// Measures each worker's time for consecutive segments of the model inside its emulated device: the segments are written as
/// standalone stage files and run one after another by <c>pipeline-node --bench-segments</c> in every device at once, as the
/// workers will run. Cached by <see cref="DeviceTimesKey"/>.
/// </summary>
public static class DeviceStageTimes
{
    /// <summary>At most this many segments: enough to price an early stage as its own, few enough to stay within seconds.</summary>
    public const int MaxSegments = 8;

    /// <summary>
    /// Segment bounds among the block boundaries <paramref name="points"/> (first 0, last the node count): at most
    /// <paramref name="maxSegments"/> segments of about equal cost, each at least one block.
    /// </summary>
    public static IReadOnlyList<int> ChooseBounds(IReadOnlyList<int> points, Func<int, int, double> cost, int maxSegments = MaxSegments)
    {
        var blocks = points.Count - 1;
        if (blocks <= maxSegments)
        {
            return points.ToList();
        }

        var total = cost(points[0], points[^1]);
        var bounds = new List<int> { points[0] };
        for (var k = 1; k < blocks; k++)
        {
            var segmentsLeft = maxSegments - (bounds.Count - 1);
            var blocksLeft = blocks - k;
            var done = cost(points[0], points[k]);
            // Close a segment once it reaches its equal share, or when every remaining block must be a segment of its own.
            if (segmentsLeft > 1 && (done >= total * bounds.Count / maxSegments || blocksLeft < segmentsLeft))
            {
                bounds.Add(points[k]);
            }
        }

        bounds.Add(points[^1]);
        return bounds;
    }

    public static async Task<IReadOnlyList<SegmentTimes>> MeasureAsync(
        DevicePlanningOptions options,
        ModelAnalysis analysis,
        IReadOnlyList<int> bounds,
        DeviceTimesCache cache,
        Func<int, Func<string, IReadOnlyList<string>, (string Program, IReadOnlyList<string> Arguments)>?> wrapOf,
        CancellationToken cancellation = default)
    {
        var say = options.Progress ?? (_ => { });
        var sha = analysis.SourceSha256 ?? OnnxModelFile.Sha256Hex(File.ReadAllBytes(options.ModelPath));
        var machine = DeviceTimesKey.ThisMachine();
        var sizes = DeviceTimesKey.DescribeInputSizes(options.InputSizes);
        var keys = Enumerable.Range(0, options.Workers)
            .Select(w => new DeviceTimesKey(sha, options.Emulation?.Workers[w].Cpu, options.IntraOpThreads, bounds, sizes, machine))
            .ToList();
        var cached = keys.Select(cache.TryRead).ToList();
        if (cached.All(c => c is not null))
        {
            say($"segment times for every worker from the cache ({cache.Folder})");
            return cached.Select((c, w) => new SegmentTimes(w, bounds, c!, Cached: true)).ToList();
        }

        var folder = Directory.CreateTempSubdirectory("pipeline-segments-").FullName;
        try
        {
            for (var s = 0; s + 1 < bounds.Count; s++)
            {
                var stage = StageExtractor.ExtractRange(analysis, bounds[s], bounds[s + 1]);
                await File.WriteAllBytesAsync(
                    Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"segment-{s:D2}.onnx")),
                    Google.Protobuf.MessageExtensions.ToByteArray(stage.Model),
                    cancellation);
            }

            var seconds = options.SegmentSeconds;
            var lines = await NodeRuns.RunAsync(
                ["--bench-segments", folder, "--threads", options.IntraOpThreads.ToString(CultureInfo.InvariantCulture),
                    "--seconds", seconds.ToString(CultureInfo.InvariantCulture)],
                "segments",
                options.Workers,
                options.CoresOf,
                options.BinaryFolder,
                wrapOf,
                cancellation,
                onStarted: () => say(string.Create(
                    CultureInfo.InvariantCulture,
                    $"timing {bounds.Count - 1} segments as stages of their own inside each of the {options.Workers} devices at once, "
                    + $"{seconds:0.#} s each (about {(bounds.Count - 1) * (seconds + 0.5):0} s)")));
            var measured = lines.Select((line, w) =>
            {
                var results = JsonSerializer.Deserialize<SegmentLoopReport>(line)!.Segments;
                if (results.Count + 1 != bounds.Count)
                {
                    throw new InvalidOperationException($"Worker {w} timed {results.Count} segments, not {bounds.Count - 1}.");
                }

                return new SegmentTimes(w, bounds, results.Select(r => r.MeanMs).ToList());
            }).ToList();
            for (var w = 0; w < measured.Count; w++)
            {
                cache.Write(keys[w], measured[w].MeanMs);
            }

            return measured;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
