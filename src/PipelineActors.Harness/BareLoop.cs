using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Onnx.Cost;

namespace PipelineActors.Harness;

/// <summary>What one bare inference loop measured.</summary>
public sealed record BareLoopResult(long Frames, double Seconds, double FramesPerSecond, double CpuSeconds, long PeakRssBytes, double P50Ms);

/// <summary>
/// The baseline a user would otherwise run: ONNX Runtime over the whole model in a loop, in one
/// process, with the same session settings as a stage (optimizations on, no spinning, the given
/// intra-op threads). <c>pipeline-node --bench-loop MODEL</c> runs it in a process of its own; with <c>--stage</c> the model is
/// one stage file of a split, as bench times each stage alone against its worker's CPU.
/// </summary>
public static class BareLoop
{
    /// <param name="stageFile">
    /// The model is one stage of a split (<c>--stage</c>): its inputs are what the stage before it sends, in the shapes the
    /// split was made for, not the whole model's.
    /// </param>
    public static BareLoopResult Run(
        string modelPath, int threads, double seconds, IReadOnlyDictionary<string, long[]>? sizes = null, bool stageFile = false)
    {
        // Parsed first, so a missing or broken file is one sentence rather than ONNX Runtime's exception.
        var model = OnnxModelFile.Load(modelPath).Model;
        using var session = new StageSession(modelPath, threads);
        var inputs = stageFile ? session.WarmUpInputs() : InputSizes.Resolve(new ModelGraph(model), sizes);
        var frame = inputs.Select((t, i) => HostTensor.Deterministic(t, 5 + i)).ToList();
        session.WarmUp(inputs, runs: 5);
        var self = Process.GetCurrentProcess();
        var cpuStart = self.TotalProcessorTime;
        var samples = new List<double>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            var start = Stopwatch.GetTimestamp();
            session.Run(frame);
            samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        var elapsed = clock.Elapsed.TotalSeconds;
        self.Refresh();
        var sorted = Percentiles.Sorted(samples);
        return new BareLoopResult(samples.Count, elapsed, samples.Count / elapsed, (self.TotalProcessorTime - cpuStart).TotalSeconds,
            self.PeakWorkingSet64, Percentiles.At(sorted, 0.5));
    }

    /// <summary>Runs the loop in this process and prints the result as one JSON line (the node's bench mode).</summary>
    public static int Main(string[] args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var model = Arg("--bench-loop") ?? throw new PipelineInputException("--bench-loop needs a model path.");
        var threads = int.Parse(Arg("--threads") ?? "1", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Arg("--seconds") ?? "10", CultureInfo.InvariantCulture);
        var sizes = Arg("--input") is { } input ? InputSizes.ParseOverrides(input.Split(' ')) : null;
        var result = Run(model, threads, seconds, sizes, stageFile: args.Contains("--stage"));
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }
}

/// <summary>
/// What one segment of the model measured in <see cref="SegmentLoop"/>, as a session of its own: wall time per run over the
/// whole loop (it includes the quota's throttled slices, which a median of short runs that fit in one slice leaves out), and the median run.
/// </summary>
public sealed record SegmentLoopResult(string File, double MeanMs, double MedianMs, int Runs);

/// <summary>The node's segment bench mode's one line of output.</summary>
public sealed record SegmentLoopReport(IReadOnlyList<SegmentLoopResult> Segments);

/// <summary>
/// Times consecutive segments of a model, each a standalone stage file run as a session of its own with a stage's settings,
/// one after another in this process: <c>pipeline-node --bench-segments FOLDER</c> runs it inside an emulated device, so a
/// segment's time includes what the device and running as a separate stage cost it (layout reorders at its edges, caches lost
/// between quota slices), which a share of the whole model's time leaves out.
/// </summary>
public static class SegmentLoop
{
    /// <summary>Each <c>segment-NN.onnx</c> in <paramref name="folder"/>, in name order: 2 warm-up runs, then runs for <paramref
    /// name="seconds"/> (at least 3).</summary>
    public static IReadOnlyList<SegmentLoopResult> Run(string folder, int threads, double seconds)
    {
        var results = new List<SegmentLoopResult>();
        foreach (var file in Directory.GetFiles(folder, "segment-*.onnx").Order(StringComparer.Ordinal))
        {
            using var session = new StageSession(file, threads);
            var inputs = session.WarmUpInputs();
            var frame = inputs.Select((t, i) => HostTensor.Deterministic(t, 5 + i)).ToList();
            session.WarmUp(inputs, runs: 2);
            var samples = new List<double>();
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds || samples.Count < 3)
            {
                var start = Stopwatch.GetTimestamp();
                session.Run(frame);
                samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }

            var elapsedMs = clock.Elapsed.TotalMilliseconds;
            results.Add(new SegmentLoopResult(Path.GetFileName(file), elapsedMs / samples.Count,
                Percentiles.At(Percentiles.Sorted(samples), 0.5), samples.Count));
        }

        return results;
    }

    /// <summary>Runs the segments in this process and prints the results as one JSON line (the node's segment bench mode).</summary>
    public static int Main(string[] args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var folder = Arg("--bench-segments") ?? throw new PipelineInputException("--bench-segments needs a folder of segment-NN.onnx files.");
        var threads = int.Parse(Arg("--threads") ?? "1", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Arg("--seconds") ?? "1", CultureInfo.InvariantCulture);
        Console.WriteLine(JsonSerializer.Serialize(new SegmentLoopReport(Run(folder, threads, seconds))));
        return 0;
    }
}
