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
/// intra-op threads). <c>pipeline-node --bench-loop MODEL</c> runs it in a process of its own.
/// </summary>
public static class BareLoop
{
    public static BareLoopResult Run(string modelPath, int threads, double seconds, IReadOnlyDictionary<string, long[]>? sizes = null)
    {
        var graph = new ModelGraph(OnnxModelFile.Load(modelPath).Model);
        var inputs = InputSizes.Resolve(graph, sizes);
        using var session = new StageSession(modelPath, threads);
        var frame = inputs.Select((t, i) => new FrameTensor(t.Name, t.ElementType, t.Shape, HostTensor.Deterministic(t, 5 + i).Data)).ToList();
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
        return new BareLoopResult(samples.Count, elapsed, samples.Count / elapsed, (self.TotalProcessorTime - cpuStart).TotalSeconds, self.PeakWorkingSet64, Percentiles.At(sorted, 0.5));
    }

    /// <summary>Runs the loop in this process and prints the result as one JSON line (the node's bench mode).</summary>
    public static int Main(string[] args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var model = Arg("--bench-loop") ?? throw new PipelineInputException("--bench-loop needs a model path.");
        var threads = int.Parse(Arg("--threads") ?? "1", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Arg("--seconds") ?? "10", CultureInfo.InvariantCulture);
        var sizes = Arg("--input") is { } input ? InputSizes.ParseOverrides(input.Split(' ')) : null;
        var result = Run(model, threads, seconds, sizes);
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }
}
