using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using PipelineActors.Onnx.Stages;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Onnx.Cost;

/// <summary>Measured latency of the per-frame nodes [<see cref="From"/>, <see cref="To"/>) run as a standalone model.</summary>
public sealed record SegmentTiming(int From, int To, double MedianMs, double P90Ms);

/// <summary>
/// Measured cost of a model cut at its segment boundaries: what the balancer (and later the
/// planner) uses instead of FLOPs when asked. A stage's cost is the sum of its segments.
/// </summary>
public sealed record LatencyProfile(
    string Format,
    string? ModelSha256,
    int IntraOpThreads,
    int Runs,
    Dictionary<string, long[]> InputSizes,
    double WholeModelMs,
    IReadOnlyList<SegmentTiming> Segments)
{
    public const string CurrentFormat = "pipelineactors.profile/1";

    /// <summary>Every node timed inside one session over the whole model; segments are sums of their nodes.</summary>
    public const string NodesMethod = "nodes in the whole model";

    /// <summary>Each segment timed as a standalone model.</summary>
    public const string SegmentsMethod = "segments as standalone models";

    /// <summary>How the segments were timed (<see cref="NodesMethod"/> or <see cref="SegmentsMethod"/>); null in older files.</summary>
    public string? Method { get; init; }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>Positions where segments meet (cut positions the measured balancer may use).</summary>
    [JsonIgnore]
    public IReadOnlyList<int> Boundaries => Segments.Skip(1).Select(s => s.From).ToList();

    [JsonIgnore]
    public double SumOfSegmentsMs => Segments.Sum(s => s.MedianMs);

    /// <summary>Measured milliseconds of nodes [from, to); both must be segment boundaries (or 0 / the node count).</summary>
    public double CostMs(int from, int to) => Segments.Where(s => s.From >= from && s.To <= to).Sum(s => s.MedianMs);

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static LatencyProfile Load(string path, ModelAnalysis analysis)
    {
        LatencyProfile? profile;
        try
        {
            profile = JsonSerializer.Deserialize<LatencyProfile>(File.ReadAllText(path), Json);
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new PipelineInputException($"'{path}' is not a profile written by 'pipeline profile' ({e.Message.Split('\n')[0]}).");
        }

        if (profile is null || profile.Format != CurrentFormat || profile.Segments.Count == 0)
        {
            throw new PipelineInputException($"'{path}' is not a profile written by 'pipeline profile'.");
        }

        if (analysis.SourceSha256 is not null && profile.ModelSha256 != analysis.SourceSha256)
        {
            throw new PipelineInputException($"Profile '{path}' was measured on another model (SHA-256 differs); run 'pipeline profile' "
                + $"on this one.");
        }

        if (profile.Segments[^1].To != analysis.NodeCount)
        {
            throw new PipelineInputException($"Profile '{path}' does not cover this model's {analysis.NodeCount} nodes; run 'pipeline "
                + $"profile' again.");
        }

        return profile;
    }
}

/// <summary>Times models in ONNX Runtime the way a stage runs them: warm up, then the median of repeated runs.</summary>
public static class LatencyProfiler
{
    /// <summary>Segment boundaries: the single-tensor cuts, or every cut where a model has too few of them.</summary>
    public static IReadOnlyList<int> DefaultBoundaries(ModelAnalysis analysis)
    {
        var single = analysis.Cuts.Where(c => c.IsSingleTensor).Select(c => c.Position).ToList();
        return single.Count >= 8 ? single : analysis.Cuts.Select(c => c.Position).ToList();
    }

    /// <summary>
    /// Measures what each stage would cost. First choice: time every node inside one session over the whole model
    /// (ONNX Runtime's own profiler), so fused operators (Conv+ReLU, Gemm+ReLU) and layout changes cost what they cost
    /// in a stage, and every cut gets a price. Where the profiler's node names cannot be traced back to the model's
    /// nodes, each segment between single-tensor cuts is timed as a model of its own instead (slower, and it
    /// overcharges segments that break a fusion).
    /// </summary>
    public static LatencyProfile Measure(ModelAnalysis analysis, int intraOpThreads, int runs, IProgress<(int Done, int Total)>? progress = null) =>
        NodeTimes.Measure(analysis, intraOpThreads, runs, progress) is { } nodes
            ? FromNodeTimes(analysis, intraOpThreads, runs, nodes)
            : MeasureSegments(analysis, intraOpThreads, runs, progress);

    private static LatencyProfile FromNodeTimes(ModelAnalysis analysis, int intraOpThreads, int runs, NodeTimes nodes)
    {
        var bounds = Bounds(analysis, analysis.Cuts.Select(c => c.Position));
        var segments = new List<SegmentTiming>();
        for (var i = 0; i + 1 < bounds.Count; i++)
        {
            segments.Add(new SegmentTiming(bounds[i], bounds[i + 1], nodes.SumMedianMs(bounds[i], bounds[i + 1]),
                nodes.SumP90Ms(bounds[i], bounds[i + 1])));
        }

        return Profile(analysis, intraOpThreads, runs, nodes.WholeModelMs, segments, LatencyProfile.NodesMethod);
    }

    private static LatencyProfile MeasureSegments(ModelAnalysis analysis, int intraOpThreads, int runs, IProgress<(int Done, int Total)>? progress)
    {
        var bounds = Bounds(analysis, DefaultBoundaries(analysis));
        var total = bounds.Count; // segments plus the whole model
        var segments = new List<SegmentTiming>();
        for (var i = 0; i + 1 < bounds.Count; i++)
        {
            var stage = StageExtractor.ExtractRange(analysis, bounds[i], bounds[i + 1]);
            var (median, p90) = Time(stage.Model.ToByteArray(), stage.Inputs.Select((t, k) => HostTensor.Deterministic(t, 3 + k)).ToList(),
                intraOpThreads, runs);
            segments.Add(new SegmentTiming(bounds[i], bounds[i + 1], median, p90));
            progress?.Report((i + 1, total));
        }

        var (wholeMs, _) = Time(analysis.Graph.Model.ToByteArray(),
            analysis.Shapes.InputSizes.Select((t, k) => HostTensor.Deterministic(t, 3 + k)).ToList(), intraOpThreads, runs);
        progress?.Report((total, total));
        return Profile(analysis, intraOpThreads, runs, wholeMs, segments, LatencyProfile.SegmentsMethod);
    }

    /// <summary>0, the given cut positions, and the node count: the edges of the segments.</summary>
    private static List<int> Bounds(ModelAnalysis analysis, IEnumerable<int> cuts) => [0, .. cuts, analysis.NodeCount];

    private static LatencyProfile Profile(ModelAnalysis analysis, int intraOpThreads, int runs, double wholeMs,
        IReadOnlyList<SegmentTiming> segments, string method) =>
        new(
            LatencyProfile.CurrentFormat,
            analysis.SourceSha256,
            intraOpThreads,
            runs,
            analysis.Shapes.InputSizes.ToDictionary(t => t.Name, t => t.Shape),
            wholeMs,
            segments)
        { Method = method };

    /// <summary>Median and 90th percentile latency in milliseconds, after warm-up runs (the first runs are 2-4x slower).</summary>
    public static (double MedianMs, double P90Ms) Time(byte[] model, IReadOnlyList<HostTensor> inputs, int intraOpThreads, int runs)
    {
        using var runner = new OrtSession(model, intraOpThreads, optimize: true);
        var table = inputs.ToDictionary(t => t.Name, StringComparer.Ordinal);
        for (var i = 0; i < 3; i++)
        {
            runner.Run(table);
        }

        var samples = new double[Math.Max(1, runs)];
        for (var i = 0; i < samples.Length; i++)
        {
            var start = Stopwatch.GetTimestamp();
            runner.Run(table);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        Array.Sort(samples);
        return (Percentiles.At(samples, 0.5), Percentiles.At(samples, 0.9));
    }
}
