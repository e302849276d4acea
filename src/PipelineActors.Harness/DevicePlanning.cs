using System.Globalization;
using System.Text.Json;
using PipelineActors.Harness.Emulation;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Planning;

namespace PipelineActors.Harness;

/// <summary>Where a run's stages go: the node positions the model is cut at, and the worker (by index) that hosts each stage.</summary>
public sealed record StagePlacement(IReadOnlyList<int> Cuts, IReadOnlyList<int> Workers)
{
    public int Parts => Workers.Count;
}

/// <summary>A worker's time for the whole model, measured by a bare loop inside its emulated device.</summary>
public sealed record DeviceSpeed(int Worker, double WholeModelMs, long Frames);

/// <summary>One configuration as the cost model prices it: where its stages go and its predicted figures.</summary>
public sealed record PricedConfiguration(string Name, StagePlacement Placement, PlanFigures Figures)
{
    public double PredictedFramesPerSecond => Figures.FramesPerSecond;
}

/// <summary>
/// The planner's view of a local run. Devices: the head (the frame source and the sink; it runs no block, so its memory is 0)
/// and one device per worker. A block's time on a worker is its share of the model's measured per-node times (FLOPs where the
/// runtime's node names cannot be traced) times that worker's measured whole-model time, so a slowed worker is priced as it
/// measured, not as its quota says. Links come from the emulation spec: a hop between two workers crosses both their shaped
/// links, so it gets the narrower rate; its latency is the sender's (the application adds it on send); an unshaped link counts
/// as <see cref="UnshapedMbps"/>. Runtime plans have no replicated stages (the runtime runs one stage per worker).
/// </summary>
public sealed class DevicePlanning
{
    /// <summary>What an unshaped link (loopback or a veth without a rate) is priced at.</summary>
    public const double UnshapedMbps = 10_000;

    public const string HeadDevice = "head";

    /// <summary>The head runs no block: priced far above any worker so no bound or heuristic leans on it.</summary>
    private const double HeadBlockMs = 1e7;

    /// <summary>Block k is nodes [points[k], points[k + 1]): the boundaries are the model's cut positions.</summary>
    private readonly int[] _points;

    private DevicePlanning(ModelAnalysis analysis, NodeTimes? times, PlanProblem problem, int[] points, IReadOnlyList<DeviceSpeed> speeds)
    {
        Analysis = analysis;
        Times = times;
        Problem = problem;
        _points = points;
        Speeds = speeds;
    }

    public ModelAnalysis Analysis { get; }

    /// <summary>The model's per-node times in one session, null where they could not be traced to nodes (then FLOPs stand in).</summary>
    public NodeTimes? Times { get; }

    public PlanProblem Problem { get; }

    public IReadOnlyList<DeviceSpeed> Speeds { get; }

    /// <summary>Each worker's measured segment times, when the blocks were priced from them; empty otherwise.</summary>
    public IReadOnlyList<SegmentTimes> Segments { get; private init; } = [];

    public int Workers => Speeds.Count;

    public static string WorkerDevice(int worker) => string.Create(CultureInfo.InvariantCulture, $"worker-{worker}");

    /// <summary>The planning problem for these measurements and links.</summary>
    /// <param name="inputBytes">What the head sends per frame (image inputs as uint8 pixels).</param>
    public static DevicePlanning Build(
        ModelAnalysis analysis,
        NodeTimes? times,
        long inputBytes,
        IReadOnlyList<DeviceSpeed> speeds,
        EmulationSpec? spec,
        string? model = null,
        IReadOnlyList<SegmentTimes>? segments = null)
    {
        if (spec is not null && spec.Workers.Count != speeds.Count)
        {
            throw new ArgumentException($"{speeds.Count} measured workers against {spec.Workers.Count} emulated ones.", nameof(speeds));
        }

        var n = analysis.NodeCount;
        int[] points = [0, .. analysis.Cuts.Select(c => c.Position).Where(p => p > 0 && p < n).Distinct().Order(), n];
        var wholeMs = times?.SumMedianMs(0, n) ?? 0;
        double Share(int from, int to) => times is not null && wholeMs > 0
            ? times.SumMedianMs(from, to) / wholeMs
            : analysis.TotalFlops > 0 ? (double)analysis.FlopsBetween(from, to) / analysis.TotalFlops : (double)(to - from) / n;
        var outputBytes = analysis.Graph.OutputNames.Sum(o => analysis.Shapes.TryGet(o, out var t) ? t.WireBytes : 0);
        var blocks = new List<PlanBlock>();
        for (var k = 0; k + 1 < points.Length; k++)
        {
            var share = Share(points[k], points[k + 1]);
            var ms = new Dictionary<string, double>(StringComparer.Ordinal) { [HeadDevice] = HeadBlockMs };
            foreach (var speed in speeds)
            {
                ms[WorkerDevice(speed.Worker)] = segments?.FirstOrDefault(t => t.Worker == speed.Worker) is { } measured
                    ? BlockMs(measured, points[k], points[k + 1], Share)
                    : share * speed.WholeModelMs;
            }

            var bytes = k + 2 == points.Length ? outputBytes : analysis.CutAt(points[k + 1]).WireBytes;
            blocks.Add(new PlanBlock(analysis.Graph.Order[points[k + 1] - 1].Name, bytes, ms));
        }

        var devices = new List<PlanDevice> { new(HeadDevice, HeadDevice, IsSource: true, MemoryMiB: 0) };
        devices.AddRange(speeds.Select(s => new PlanDevice(WorkerDevice(s.Worker), WorkerDevice(s.Worker))));
        double Rate(int worker) => spec?.Workers[worker].LinkMbit ?? UnshapedMbps;
        double Latency(int worker) => spec?.Workers[worker].LatencyMs ?? 0;
        var links = new List<PlanLink>();
        for (var a = 0; a < speeds.Count; a++)
        {
            links.Add(new PlanLink(HeadDevice, WorkerDevice(a), Rate(a), 0));
            links.Add(new PlanLink(WorkerDevice(a), HeadDevice, Rate(a), Latency(a)));
            for (var b = 0; b < speeds.Count; b++)
            {
                if (a != b)
                {
                    links.Add(new PlanLink(WorkerDevice(a), WorkerDevice(b), Math.Min(Rate(a), Rate(b)), Latency(a)));
                }
            }
        }

        var problem = new PlanProblem(inputBytes, blocks, devices, links, sink: HeadDevice, model: model);
        return new DevicePlanning(analysis, times, problem, points, speeds) { Segments = segments ?? [] };
    }

    /// <summary>
    /// Block [from, to)'s time on a worker from its measured segment times: the time of the segment holding it, times the
    /// block's share of that segment (from the per-node times, else FLOPs). A stage's price is then what its segments cost
    /// run as stages of their own on that device.
    /// </summary>
    public static double BlockMs(SegmentTimes measured, int from, int to, Func<int, int, double> share)
    {
        var bounds = measured.Bounds;
        var s = 0;
        while (s + 2 < bounds.Count && bounds[s + 1] <= from)
        {
            s++;
        }

        if (from < bounds[s] || to > bounds[s + 1])
        {
            throw new ArgumentException($"Block {from}..{to - 1} crosses a segment bound.", nameof(from));
        }

        var whole = share(bounds[s], bounds[s + 1]);
        return whole > 0 ? measured.MeanMs[s] * share(from, to) / whole : measured.MeanMs[s] * (to - from) / (bounds[s + 1] - bounds[s]);
    }

    /// <summary>The node positions the blocks end at, block by block (the last is the model's end).</summary>
    public IReadOnlyList<int> BlockEnds => _points[1..];

    /// <summary>
    /// The same measurements with codecs on the blocks' outputs (by block index) that the planner may use within
    /// <paramref name="budget"/> (a hop takes the one a frame spends least time on; see <see cref="PlanProblem.Hop"/>).
    /// </summary>
    public DevicePlanning WithCodecs(IReadOnlyDictionary<int, IReadOnlyList<PlanCodec>> codecs, double budget)
    {
        var blocks = Problem.Blocks.Select((b, k) => codecs.TryGetValue(k, out var c) ? b with { Codecs = c } : b).ToList();
        var problem = new PlanProblem(Problem.InputBytes, blocks, Problem.Devices, Problem.Links, Problem.DefaultLink, Problem.Sink,
            Problem.Model, budget);
        return new DevicePlanning(Analysis, Times, problem, _points, Speeds) { Segments = Segments };
    }

    /// <summary>The planner's plan for the objective, without replicated stages (the runtime runs one stage per worker).</summary>
    public PricedConfiguration Planned(PlanObjective objective = PlanObjective.Throughput)
    {
        var result = Planner.Plan(Problem, new PlanRequest(objective, MaxReplicas: 1));
        return Priced("planned", result.Figures.Plan);
    }

    /// <summary>A chain of stages cut at these node positions, stage i on worker <paramref name="workers"/>[i].</summary>
    public PricedConfiguration Chain(string name, IReadOnlyList<int> cuts, IReadOnlyList<int> workers)
    {
        if (cuts.Count + 1 != workers.Count)
        {
            throw new ArgumentException($"{cuts.Count} cuts make {cuts.Count + 1} stages, not {workers.Count}.", nameof(cuts));
        }

        var ends = new List<int>();
        foreach (var cut in cuts)
        {
            var end = Array.IndexOf(_points, cut);
            ends.Add(end > 0 ? end : throw new ArgumentException($"No block ends at node {cut}.", nameof(cuts)));
        }

        ends.Add(Problem.BlockCount);
        return Priced(name, Plan.Chain(Problem, [0, .. workers.Select(w => w + 1)], [0, .. ends]));
    }

    /// <summary>
    /// The runtime's balanced split over <paramref name="parts"/> workers, stage i on worker i: equal measured cost per stage (plus
    /// the transfer price), as <see cref="JobBuilder.MeasuredBalance"/> cuts it, from the times measured here.
    /// </summary>
    public PricedConfiguration EqualSplit(int parts)
    {
        var cost = Times is { } times
            ? Balancer.WithTransferCost(Analysis, times.SumMedianMs, JobBuilder.TransferMsPerByte)
            : Balancer.WithTransferCost(Analysis, JobBuilder.TransferFlopsPerByte);
        return Chain("equal-split", Balancer.Balance(Analysis, parts, cost), Enumerable.Range(0, parts).ToList());
    }

    /// <summary>The whole model on every worker at once, frames taken by demand: capacity is the sum of 1 / t.</summary>
    public PlanFigures Replicas() => PlanEvaluator.Evaluate(
        Problem,
        new Plan([new PlanStage([0], 0, 0), new PlanStage(Enumerable.Range(1, Workers).ToList(), 0, Problem.BlockCount)]));

    /// <summary>The worker with the least measured whole-model time.</summary>
    public int FastestWorker => Speeds.MinBy(s => s.WholeModelMs)!.Worker;

    /// <summary>One line per stage: which worker, which nodes, its predicted compute.</summary>
    public IReadOnlyList<string> Describe(PricedConfiguration configuration)
    {
        var lines = new List<string>();
        foreach (var stage in configuration.Figures.Stages.Where(s => s.Stage.BlockCount > 0))
        {
            var device = Problem.Devices[stage.Stage.Devices[0]].Name;
            lines.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"{device}: nodes {_points[stage.Stage.FirstBlock]}..{_points[stage.Stage.EndBlock] - 1}, {stage.ComputeMs:0.0##} ms predicted"));
        }

        return lines;
    }

    /// <summary>One line per hop that carries bytes: from which device to which, the bytes and the link's busy time a frame.</summary>
    public IReadOnlyList<string> DescribeHops(PricedConfiguration configuration)
    {
        var lines = new List<string>();

        // A hop to stage -1 is the results' hop to the sink.
        string Name(int stage) => stage < 0 || stage >= configuration.Figures.Plan.Stages.Count
            ? Problem.Devices[Problem.SinkIndex].Name
            : Problem.Devices[configuration.Figures.Plan.Stages[stage].Devices[0]].Name;
        foreach (var hop in configuration.Figures.Hops.Where(h => h.Bytes > 0))
        {
            lines.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"hop {Name(hop.FromStage)} -> {Name(hop.ToStage)}: {Coded(hop)}, {hop.OccupancyMs:0.0##} ms on the link"));
        }

        return lines;
    }

    private static string Coded(HopFigures hop) => hop.Links.FirstOrDefault(l => l.Codec != "exact") is { } coded
        ? string.Create(CultureInfo.InvariantCulture, $"{coded.Bytes} bytes with {coded.Codec} ({hop.Bytes} exact)")
        : string.Create(CultureInfo.InvariantCulture, $"{hop.Bytes} bytes");

    private PricedConfiguration Priced(string name, Plan plan)
    {
        var stages = plan.Stages.Where(s => s.BlockCount > 0).ToList();
        if (stages.Any(s => s.IsReplicated) || stages.Any(s => s.Devices[0] == Problem.SourceIndex))
        {
            throw new InvalidOperationException("A runtime plan runs each stage on one worker and none on the head.");
        }

        var cuts = stages.Skip(1).Select(s => _points[s.FirstBlock]).ToList();
        var placement = new StagePlacement(cuts, stages.Select(s => s.Devices[0] - 1).ToList());
        return new PricedConfiguration(name, placement, PlanEvaluator.Evaluate(Problem, plan));
    }

    /// <summary>
    /// Measures what planning a run needs: the model's per-node times in this process, then every worker's whole-model time
    /// from bare loops run at once, each inside its emulated device (its cgroup and namespace), as the workers will run.
    /// </summary>
    public static async Task<DevicePlanning> MeasureAsync(DevicePlanningOptions options, CancellationToken cancellation = default)
    {
        var say = options.Progress ?? (_ => { });
        var sizes = LocalRun.InputSizesFor(options.ModelPath, options.InputSizes);
        var analysis = ModelAnalysis.Analyze(OnnxModelFile.Load(options.ModelPath), sizes);
        say("timing the model's nodes in this process, for each block's share of the model");
        var times = NodeTimes.Measure(analysis, options.IntraOpThreads, runs: 10);
        var speeds = await CalibrateAsync(options, sizes, cancellation);
        foreach (var s in speeds)
        {
            say(string.Create(
                CultureInfo.InvariantCulture,
                $"{WorkerDevice(s.Worker)} measured {s.WholeModelMs:0.0} ms per frame for the whole model ({s.Frames} frames)"));
        }

        IReadOnlyList<SegmentTimes>? segments = null;
        if (options.Emulation is { } spec && options.SegmentSeconds > 0)
        {
            var n = analysis.NodeCount;
            int[] points = [0, .. analysis.Cuts.Select(c => c.Position).Where(p => p > 0 && p < n).Distinct().Order(), n];
            var wholeMs = times?.SumMedianMs(0, n) ?? 0;
            double Cost(int from, int to) => times is not null && wholeMs > 0 ? times.SumMedianMs(from, to) : analysis.FlopsBetween(from, to);
            var bounds = DeviceStageTimes.ChooseBounds(points, Cost, options.MaxSegments);
            using var devices = EmulatedDevices.Create(spec.RequireWorkers(options.Workers));
            foreach (var quota in devices.Workers.Select(w => w.Quota).OfType<CpuQuota>())
            {
                quota.SetWeight(LocalRun.EmulatedWorkerWeight);
            }

            segments = await DeviceStageTimes.MeasureAsync(
                options, analysis, bounds, options.Cache ?? DeviceTimesCache.Default(), i => devices.Workers[i].Wrap, cancellation);
            foreach (var t in segments)
            {
                var each = string.Join(", ", t.MeanMs.Select((ms, i) => string.Create(
                    CultureInfo.InvariantCulture, $"nodes {t.Bounds[i]}..{t.Bounds[i + 1] - 1} {ms:0.0} ms")));
                say(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{WorkerDevice(t.Worker)} segments{(t.Cached ? " (cached)" : "")}: {each}; sum {t.TotalMs:0.0} ms"));
            }
        }

        // Image inputs travel as uint8 pixels (the first stage normalises them), a quarter of their float size.
        var inputBytes = analysis.Shapes.InputSizes.Sum(t =>
            t.ElementType == Onnx.Proto.TensorProto.Types.DataType.Float && t.Shape.Length == 4
            && (t.Shape[1] is 1 or 3 or 4 || t.Shape[3] is 1 or 3 or 4)
                ? t.Bytes / 4
                : t.Bytes);
        return Build(analysis, times, inputBytes, speeds, options.Emulation, Path.GetFileName(options.ModelPath), segments);
    }

    /// <summary>The per-worker bare loops of <see cref="MeasureAsync"/>; with emulation, inside each worker's device.</summary>
    public static async Task<IReadOnlyList<DeviceSpeed>> CalibrateAsync(
        DevicePlanningOptions options, IReadOnlyDictionary<string, long[]>? sizes, CancellationToken cancellation = default)
    {
        using var devices = options.Emulation is { } spec ? EmulatedDevices.Create(spec.RequireWorkers(options.Workers)) : null;
        foreach (var quota in devices?.Workers.Select(w => w.Quota).OfType<CpuQuota>() ?? [])
        {
            quota.SetWeight(LocalRun.EmulatedWorkerWeight);
        }

        var loops = await BareLoops.RunAsync(
            options.ModelPath, sizes, options.IntraOpThreads, options.CalibrationSeconds, options.Workers, options.CoresOf, options.BinaryFolder,
            i => devices is null ? null : devices.Workers[i].Wrap, cancellation);
        return loops.Select((l, i) => new DeviceSpeed(i, l.Frames > 0 ? 1000 * l.Seconds / l.Frames : double.PositiveInfinity, l.Frames)).ToList();
    }
}

/// <summary>What <see cref="DevicePlanning.MeasureAsync"/> measures: the model, the workers and their emulation.</summary>
public sealed record DevicePlanningOptions
{
    public required string ModelPath { get; init; }

    public IReadOnlyDictionary<string, long[]>? InputSizes { get; init; }

    public required int Workers { get; init; }

    public int IntraOpThreads { get; init; } = 1;

    public EmulationSpec? Emulation { get; init; }

    /// <summary>Cores for worker i (taskset list), as the run will pin it; null leaves it unpinned.</summary>
    public Func<int, string?> CoresOf { get; init; } = _ => null;

    /// <summary>Seconds each worker's calibration loop runs.</summary>
    public double CalibrationSeconds { get; init; } = 4;

    public string? BinaryFolder { get; init; }

    public Action<string>? Progress { get; init; }

    /// <summary>
    /// Seconds each segment is timed inside each emulated device (<see cref="DeviceStageTimes"/>); 0 prices blocks as shares
    /// of the whole-model calibration instead.
    /// </summary>
    public double SegmentSeconds { get; init; } = 1.5;

    public int MaxSegments { get; init; } = DeviceStageTimes.MaxSegments;

    /// <summary>Where measured segment times are kept; null for <see cref="DeviceTimesCache.Default"/>.</summary>
    public DeviceTimesCache? Cache { get; init; }
}

/// <summary>Bare inference loops (<c>pipeline-node --bench-loop</c>) in processes of their own, all at once.</summary>
internal static class BareLoops
{
    public static async Task<List<BareLoopResult>> RunAsync(
        string modelPath,
        IReadOnlyDictionary<string, long[]>? sizes,
        int threads,
        double seconds,
        int count,
        Func<int, string?> coresOf,
        string? binaryFolder,
        Func<int, Func<string, IReadOnlyList<string>, (string Program, IReadOnlyList<string> Arguments)>?>? wrapOf,
        CancellationToken cancellation)
    {
        var args = new List<string>
        {
            "--bench-loop", modelPath,
            "--threads", threads.ToString(CultureInfo.InvariantCulture),
            "--seconds", seconds.ToString(CultureInfo.InvariantCulture),
        };
        if (sizes is { Count: > 0 })
        {
            args.AddRange(["--input", string.Join(" ", sizes.Select(kv => $"{kv.Key}={string.Join(",", kv.Value)}"))]);
        }

        var lines = await NodeRuns.RunAsync(args, "loop", count, coresOf, binaryFolder, wrapOf, cancellation);
        return lines.Select(line => JsonSerializer.Deserialize<BareLoopResult>(line)!).ToList();
    }
}

/// <summary>Node processes in a bench mode, all at once, each printing one JSON line as its result.</summary>
internal static class NodeRuns
{
    public static async Task<List<string>> RunAsync(
        IReadOnlyList<string> args,
        string name,
        int count,
        Func<int, string?> coresOf,
        string? binaryFolder,
        Func<int, Func<string, IReadOnlyList<string>, (string Program, IReadOnlyList<string> Arguments)>?>? wrapOf,
        CancellationToken cancellation,
        Action? onStarted = null)
    {
        var processes = Enumerable.Range(0, count)
            .Select(i => NodeProcess.Start($"{name}-{i}", args, coresOf(i), binaryFolder, wrap: wrapOf?.Invoke(i)))
            .ToList();
        try
        {
            onStarted?.Invoke();
            await Task.WhenAll(processes.Select(p => p.WaitForExitAsync(cancellation)));
            return processes.Select(p => p.Output.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'))
                ?? throw new InvalidOperationException($"The {name} process printed no result: {p.Output.Trim()}")).ToList();
        }
        finally
        {
            processes.ForEach(p => p.Dispose());
        }
    }
}
