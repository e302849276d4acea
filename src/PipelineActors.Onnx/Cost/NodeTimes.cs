using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Onnx.Cost;

/// <summary>
/// Milliseconds each per-frame node takes inside one ONNX Runtime session over the whole model, from the runtime's own
/// profiler, with optimizations on as a stage runs them. The optimizer renames what it rewrites: a Conv fused with its
/// ReLU and moved to the blocked layout appears as "RELU_OUTPUT_nchwc", a fused Gemm as "fused GEMM_NAME"; each name
/// is traced back to the model node (or the node producing the tensor) it came from. Kernels the optimizer inserted
/// (layout reorders) belong to no node and are left out.
/// </summary>
public sealed class NodeTimes
{
    /// <summary>Below this share of kernel time traced back to model nodes, the timings are not trusted.</summary>
    public const double MinimumAttributed = 0.8;

    private readonly double[] _medianMs;
    private readonly double[] _p90Ms;

    private NodeTimes(double[] medianMs, double[] p90Ms, double wholeModelMs, double attributedShare)
    {
        _medianMs = medianMs;
        _p90Ms = p90Ms;
        WholeModelMs = wholeModelMs;
        AttributedShare = attributedShare;
    }

    /// <summary>Median wall time of one run of the whole model.</summary>
    public double WholeModelMs { get; }

    /// <summary>Share of the profiled kernel time that was traced back to a model node.</summary>
    public double AttributedShare { get; }

    public double MedianMs(int position) => _medianMs[position];

    /// <summary>Milliseconds of nodes [from, to).</summary>
    public double SumMedianMs(int from, int to) => Sum(_medianMs, from, to);

    public double SumP90Ms(int from, int to) => Sum(_p90Ms, from, to);

    /// <summary>Profiles 3 warm-up runs and <paramref name="runs"/> timed ones; null where under <see cref="MinimumAttributed"/> of the
    /// time maps to nodes.</summary>
    public static NodeTimes? Measure(ModelAnalysis analysis, int intraOpThreads, int runs, IProgress<(int Done, int Total)>? progress = null)
    {
        const int warmUp = 3;
        runs = Math.Max(1, runs);
        var total = warmUp + runs + 1;
        var prefix = Path.Combine(Path.GetTempPath(), $"pipelineactors-profile-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var settings = new OrtSessionSettings(intraOpThreads, optimize: true) { ProfilePrefix = prefix };
        string? file = null;
        var wall = new double[runs];
        try
        {
            using var session = new OrtSession(analysis.Graph.Model.ToByteArray(), settings);
            var inputs = analysis.Shapes.InputSizes;
            var values = inputs.Select((t, k) => OrtTensors.Deterministic(t, 3 + k)).ToList();
            try
            {
                var names = inputs.Select(t => t.Name).ToList();
                for (var i = 0; i < warmUp + runs; i++)
                {
                    var start = Stopwatch.GetTimestamp();
                    using (session.Run(names, values, session.OutputNames))
                    {
                    }

                    if (i >= warmUp)
                    {
                        wall[i - warmUp] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    }

                    progress?.Report((i + 1, total));
                }
            }
            finally
            {
                values.ForEach(v => v.Dispose());
            }

            file = session.EndProfiling();
            var result = Parse(analysis, File.ReadAllBytes(Path.IsPathRooted(file) ? file : Path.GetFullPath(file)), warmUp, runs, Median(wall));
            progress?.Report((total, total));
            return result;
        }
        finally
        {
            if (file is not null)
            {
                File.Delete(Path.IsPathRooted(file) ? file : Path.GetFullPath(file));
            }
        }
    }

    /// <summary>Reads a profile of <paramref name="warmUp"/> + <paramref name="runs"/> runs in Chrome trace format.</summary>
    public static NodeTimes? Parse(ModelAnalysis analysis, byte[] profileJson, int warmUp, int runs, double wholeModelMs)
    {
        var graph = analysis.Graph;
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var position = 0; position < graph.Order.Count; position++)
        {
            if (graph.Order[position].Name.Length > 0)
            {
                byName.TryAdd(graph.Order[position].Name, position);
            }
        }

        using var json = JsonDocument.Parse(profileJson);
        var runStarts = new List<(long Start, long End)>();
        var kernels = new List<(long Ts, long Dur, string Name)>();
        foreach (var e in json.RootElement.EnumerateArray())
        {
            var category = e.TryGetProperty("cat", out var cat) ? cat.GetString() : null;
            var name = e.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "";
            var ts = e.TryGetProperty("ts", out var t) ? t.GetInt64() : 0;
            var dur = e.TryGetProperty("dur", out var d) ? d.GetInt64() : 0;
            if (category == "Session" && name == "model_run")
            {
                runStarts.Add((ts, ts + dur));
            }
            else if (category == "Node" && name.EndsWith("_kernel_time", StringComparison.Ordinal))
            {
                kernels.Add((ts, dur, name[..^"_kernel_time".Length]));
            }
        }

        if (runStarts.Count < warmUp + runs)
        {
            return null;
        }

        runStarts.Sort();
        var perRun = new double[runs][];
        for (var r = 0; r < runs; r++)
        {
            perRun[r] = new double[graph.Order.Count];
        }

        double attributed = 0, all = 0;
        foreach (var (ts, dur, name) in kernels)
        {
            var run = runStarts.FindIndex(warmUp, s => ts >= s.Start && ts <= s.End) - warmUp;
            if (run < 0)
            {
                continue; // a warm-up run
            }

            all += dur;
            var position = Trace(graph, byName, name);
            if (position >= 0)
            {
                attributed += dur;
                perRun[run][position] += dur / 1000.0;
            }
        }

        if (all <= 0 || attributed / all < MinimumAttributed)
        {
            return null;
        }

        var median = new double[graph.Order.Count];
        var p90 = new double[graph.Order.Count];
        var samples = new double[runs];
        for (var position = 0; position < median.Length; position++)
        {
            for (var r = 0; r < runs; r++)
            {
                samples[r] = perRun[r][position];
            }

            Array.Sort(samples);
            median[position] = Percentiles.At(samples, 0.5);
            p90[position] = Percentiles.At(samples, 0.9);
        }

        return new NodeTimes(median, p90, wholeModelMs, attributed / all);
    }

    /// <summary>The model node an optimized kernel came from, or -1.</summary>
    private static int Trace(Graph.ModelGraph graph, Dictionary<string, int> byName, string kernel)
    {
        // "fused NODE" keeps a node's name; "TENSOR_nchwc" names the tensor the fused kernel writes.
        var name = kernel.StartsWith("fused ", StringComparison.Ordinal) ? kernel["fused ".Length..] : kernel;
        name = name.EndsWith("_nchwc", StringComparison.Ordinal) ? name[..^"_nchwc".Length] : name;
        return byName.TryGetValue(name, out var position) ? position : graph.ProducerPosition(name);
    }

    private static double Sum(double[] values, int from, int to)
    {
        var sum = 0.0;
        for (var i = from; i < to; i++)
        {
            sum += values[i];
        }

        return sum;
    }

    private static double Median(double[] values)
    {
        return Percentiles.At(Percentiles.Sorted(values), 0.5);
    }
}
