using System.Globalization;
using System.Text.Json;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Harness.Emulation;
using PipelineActors.Planning;

namespace PipelineActors.Harness;

/// <summary>What <c>pipeline bench</c> measures.</summary>
public sealed record BenchOptions
{
    public required string ModelPath { get; init; }

    public IReadOnlyDictionary<string, long[]>? InputSizes { get; init; }

    public required IReadOnlyList<int> Nodes { get; init; }

    public int ThreadsPerNode { get; init; } = 1;

    public long Frames { get; init; } = 200;

    /// <summary>Seconds each bare loop and each replica runs.</summary>
    public double LoopSeconds { get; init; } = 15;

    public string? BinaryFolder { get; init; }

    public Action<string>? Progress { get; init; }

    public string? LogFile { get; init; }

    /// <summary>Also run the most workers once more, killing one, to show recovery over time.</summary>
    public bool WithKillRun { get; init; }

    /// <summary>With <see cref="Emulation"/>: what the planned row minimises (<c>--objective</c>). Latency runs one frame in flight.</summary>
    public PlanObjective Objective { get; init; } = PlanObjective.Throughput;

    /// <summary>Emulated devices for every pipeline run (one entry per worker, so every count in <see cref="Nodes"/> equals it).</summary>
    public EmulationSpec? Emulation { get; init; }

    /// <summary>
    /// With <see cref="Emulation"/>: the codecs (as <c>--codec</c> spells them) the planned configuration and the equal split
    /// run with, one row each; the other configurations run exact.
    /// </summary>
    public IReadOnlyList<string> Codecs { get; init; } = [Transfer.TransferSpec.Exact];
}

/// <summary>One configuration's figures.</summary>
public sealed record BenchRow(
    string Configuration,
    int Nodes,
    double FramesPerSecond,
    double SpeedupOverBareLoop,
    double ScalingEfficiency,
    double VersusNTimesBareLoop,
    double? VersusConcurrentReplicas,
    double LatencyP50Ms,
    IReadOnlyList<long> BytesPerFrameOnLinks,
    IReadOnlyList<double> CpuSecondsPerFrameOnNodes,
    double HeadCpuSecondsPerFrame,
    IReadOnlyList<long> RssBytesPerNode,
    long Lost)
{
    public IReadOnlyList<double> StageBusyPercent { get; init; } = [];

    public IReadOnlyList<double> LatencyPercentiles { get; init; } = [];

    /// <summary>What the planner's cost model predicts for this configuration (with <c>--emulate</c>); null otherwise.</summary>
    public double? PredictedFramesPerSecond { get; init; }

    /// <summary>The cost model's one-frame latency for this configuration (with <c>--emulate</c>); null otherwise.</summary>
    public double? PredictedLatencyMs { get; init; }

    /// <summary>The transfer codec on every cut of the run (<c>--codecs</c>), <c>exact</c> unless the row says otherwise.</summary>
    public string Codec { get; init; } = Transfer.TransferSpec.Exact;

    /// <summary>
    /// Each node's CPU per frame against its stage's bare loop, in <see cref="CpuSecondsPerFrameOnNodes"/>' order (pipeline
    /// rows of a bench without <c>--emulate</c>); empty otherwise.
    /// </summary>
    public IReadOnlyList<NodeOverhead> NodeOverheads { get; init; } = [];
}

/// <summary>How one compared configuration placed its stages, and what the cost model said of it.</summary>
/// <param name="Stages">One line per stage: worker, nodes, predicted compute.</param>
public sealed record BenchPlanRow(
    string Configuration,
    IReadOnlyList<int> Workers,
    IReadOnlyList<int> Cuts,
    IReadOnlyList<string> Stages,
    double PredictedFramesPerSecond,
    string Bottleneck)
{
    /// <summary>One line per hop that carries bytes: devices, bytes a frame, the link's busy time a frame.</summary>
    public IReadOnlyList<string> Hops { get; init; } = [];
}

/// <summary>N whole-model replicas at once on the same cores: their summed frames/s and each one's resident memory.</summary>
public sealed record ReplicaRow(int Nodes, double Fps, long RssPerReplica);

/// <summary>A benchmark's method, machine and figures.</summary>
public sealed record BenchReport(string Model, string Machine, string Method, double BareLoopFps, double BareLoopFpsAfter,
    double BareLoopP50Ms, long BareLoopRssBytes, IReadOnlyList<BenchRow> Rows, IReadOnlyList<ReplicaRow> Replicas)
{
    /// <summary>With a report: a run on the most workers with one worker SIGKILLed, for the throughput-over-time plot.</summary>
    public RunReport? KillRun { get; init; }

    /// <summary>The pipeline runs' emulation per worker (<c>--emulate</c>); empty without it.</summary>
    public IReadOnlyList<EmulatedWorkerRow> Emulation { get; init; } = [];

    /// <summary>With <c>--emulate</c>: each compared configuration's placement and prediction.</summary>
    public IReadOnlyList<BenchPlanRow> Plans { get; init; } = [];

    /// <summary>With <c>--emulate</c>: each worker's whole-model time, measured inside its device before planning.</summary>
    public IReadOnlyList<DeviceSpeed> DeviceSpeeds { get; init; } = [];

    /// <summary>With <c>--emulate</c>: each worker's segment times, measured inside its device as stages of their own (blocks are priced
    /// from them).</summary>
    public IReadOnlyList<SegmentTimes> SegmentTimes { get; init; } = [];

    /// <summary>With <c>--emulate</c>: the planned row's objective, <c>throughput</c> or <c>latency</c>.</summary>
    public string? Objective { get; init; }
}

/// <summary>
/// Measures, in one run: the bare inference loop (the baseline), the pipeline on 1..N workers,
/// and N concurrent whole-model replicas on the same cores (the data-parallel alternative and,
/// on one machine, the fair ceiling). Every worker and replica is pinned to its own core(s); the
/// ingest process is left unpinned and its CPU is reported. The bare loop runs first and last to
/// show the machine's drift.
/// </summary>
public static class Bench
{
    public static async Task<BenchReport> RunAsync(BenchOptions options, CancellationToken cancellation = default)
    {
        var say = options.Progress ?? (_ => { });
        foreach (var n in options.Nodes)
        {
            options.Emulation?.RequireWorkers(n);
        }

        if (options.Emulation is { } compared)
        {
            return await CompareAsync(options, compared, cancellation);
        }

        var cores = Environment.ProcessorCount;
        var coresFor = CoreMap(options);

        say($"bare loop: the whole model, {options.ThreadsPerNode} thread(s), pinned to core(s) {coresFor(0)}, {options.LoopSeconds:0} s");
        var bare = (await Loops(options, 1, coresFor, cancellation))[0];
        var rows = new List<BenchRow>();
        var replicas = new List<ReplicaRow>();
        IReadOnlyList<EmulatedWorkerRow> emulation = [];
        foreach (var n in options.Nodes.Order())
        {
            say($"pipeline on {n} worker(s), each pinned to its own core(s); {options.Frames} frames as fast as the pipeline takes them");
            var run = await LocalRun.RunAsync(PipelineRun(options, n, coresFor, options.Emulation), cancellation);
            emulation = run.Emulation;

            double? versusReplicas = null;
            if (n > 1)
            {
                say($"{n} concurrent whole-model replicas on the same cores, {options.LoopSeconds:0} s");
                var loops = await Loops(options, n, coresFor, cancellation);
                var sum = loops.Sum(l => l.FramesPerSecond);
                replicas.Add(new ReplicaRow(n, Math.Round(sum, 2), (long)loops.Average(l => l.PeakRssBytes)));
                versusReplicas = Math.Round(run.FramesPerSecond / sum, 3);
            }

            say($"the {run.StageFiles.Count} stage(s) of pipeline x{n} alone: each stage file in a bare loop pinned to its worker's core(s), "
                + $"one after another, {StageLoopSeconds(options):0} s each");
            var stageLoops = await StageLoops(options, run, cancellation);
            rows.Add(RowOf($"pipeline x{n}", n, run, bare.FramesPerSecond, versusReplicas) with
            {
                NodeOverheads = NodeOverhead.Of(run.Nodes, run.Stages, stageLoops),
            });
        }

        RunReport? killRun = null;
        var most = options.Nodes.Max();
        if (options.WithKillRun && most > 1)
        {
            say($"pipeline on {most} workers again, SIGKILLing the middle stage's worker after 4 s, to show recovery over time");
            killRun = await LocalRun.RunAsync(
                new LocalRunOptions
                {
                    ModelPath = options.ModelPath,
                    InputSizes = options.InputSizes,
                    Workers = most,
                    // Long enough to show steady state before and after the kill (about 14 s).
                    Frames = Math.Max(options.Frames * 3, (long)(rows.Max(x => x.FramesPerSecond) * 14)),
                    FramesPerSecond = 0,
                    IntraOpThreads = options.ThreadsPerNode,
                    CoresOf = coresFor,
                    BinaryFolder = options.BinaryFolder,
                    LogFile = options.LogFile,
                    KillWorkerAfterSeconds = 4,
                    Emulation = options.Emulation,
                },
                cancellation);
        }

        say("bare loop again, to see how much the machine drifted during the run");
        var bareAfter = (await Loops(options, 1, coresFor, cancellation))[0];
        var method = string.Join(" ", [
            $"One run on this machine ({cores} cores). Baseline: ONNX Runtime over the whole model in a loop in one process "
                + $"({options.ThreadsPerNode} intra-op thread(s), optimizations on, spinning off),",
            $"pinned with taskset, {options.LoopSeconds:0} s after 5 warm-up runs, run first and last.",
            $"Pipeline: 'pipeline run' with N worker processes, worker i pinned to core(s) i*T..i*T+T-1 (mod {cores}), the "
                + $"ingest/coordinator process unpinned (its CPU is reported),",
            $"{options.Frames} synthetic frames read as fast as the pipeline takes them, throughput = (results - 1) / (last result - first result).",
            "Replicas: N bare loops at once on the same cores, frames/s summed (the data-parallel alternative; on one machine also the "
                + "fair ceiling, since processes sharing a machine slow each other down).",
            OverheadMethod(options, rows),
            options.Emulation is { } spec
                ? $"Emulated workers (pipeline runs only; the bare loop and replicas run at full speed): {spec}; latency is added by the application."
                : "",
        ]).TrimEnd();
        return new BenchReport(Path.GetFileName(options.ModelPath), Machine(cores), method, Math.Round(bare.FramesPerSecond, 2),
            Math.Round(bareAfter.FramesPerSecond, 2), Math.Round(bare.P50Ms, 2), bare.PeakRssBytes, rows, replicas)
        {
            KillRun = killRun,
            Emulation = emulation,
        };
    }

    private static BenchRow RowOf(string configuration, int n, RunReport run, double bareFps, double? versusReplicas) => new(
        configuration,
        n,
        run.FramesPerSecond,
        Math.Round(run.FramesPerSecond / bareFps, 3),
        Math.Round(run.FramesPerSecond / bareFps / n, 3),
        Math.Round(run.FramesPerSecond / (n * bareFps), 3),
        versusReplicas,
        run.LatencyP50Ms,
        run.Stages.Take(run.Stages.Count - 1).Select(s => s.BytesOutPerFrame).ToList(),
        run.Nodes.Select(x => x.CpuSecondsPerFrame).ToList(),
        run.HeadCpuSecondsPerFrame,
        run.Nodes.Select(x => x.RssBytes).ToList(),
        run.Lost)
    {
        StageBusyPercent = run.Stages.Select(s => s.BusyPercent).ToList(),
        LatencyPercentiles = run.LatencyPercentiles,
    };

    /// <summary>Seconds each stage runs alone in its bare loop: a few, at most the bare loop's.</summary>
    private static double StageLoopSeconds(BenchOptions options) => Math.Min(options.LoopSeconds, 5);

    /// <summary>
    /// Each stage file of the run's final plan in a bare loop of its own (<c>pipeline-node --bench-loop FILE --stage</c>), with a
    /// worker's threads, pinned to the core(s) of the worker that hosted it, one stage after another so that each runs alone
    /// (on a 2-core Xeon, ResNet-50's two halves run at once took 104 ms of CPU a frame together, the whole model alone 76); in
    /// stage order. Empty when the run's stages cannot be matched to their files.
    /// </summary>
    private static async Task<IReadOnlyList<BareLoopResult>> StageLoops(BenchOptions options, RunReport run, CancellationToken cancellation)
    {
        if (run.StageFiles.Count != run.Stages.Count)
        {
            return [];
        }

        var threads = options.ThreadsPerNode.ToString(CultureInfo.InvariantCulture);
        var seconds = StageLoopSeconds(options).ToString(CultureInfo.InvariantCulture);
        var loops = new List<BareLoopResult>();
        for (var i = 0; i < run.Stages.Count; i++)
        {
            using var process = NodeProcess.Start(
                $"stage-loop-{i}",
                ["--bench-loop", run.StageFiles[i], "--stage", "--threads", threads, "--seconds", seconds],
                run.Nodes.FirstOrDefault(node => node.Node == run.Stages[i].Node)?.Cores,
                options.BinaryFolder);
            await process.WaitForExitAsync(cancellation);
            loops.Add(process.Output.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{')) is { } line
                ? JsonSerializer.Deserialize<BareLoopResult>(line)!
                : throw new InvalidOperationException($"The bare loop of {process.Name} printed no result: {process.Output.Trim()}"));
        }

        return loops;
    }

    /// <summary>How the per-node overhead and the CPU per MB of a link are derived, with this run's CPU per MB per node.</summary>
    private static string OverheadMethod(BenchOptions options, IReadOnlyList<BenchRow> rows)
    {
        var measured = rows.Where(r => r.NodeOverheads.Count > 0).Select(r => $"{r.Configuration}: " + string.Join(", ", r.NodeOverheads
            .Where(o => o.Stage is not null)
            .OrderBy(o => o.Stage)
            .Select(o => string.Create(CultureInfo.InvariantCulture,
                $"stage {o.Stage} {(o.OverheadCpuMsPerMB is { } perMb ? $"{perMb:0.0} ms/MB" : "-")} "
                + $"({(o.BytesInPerFrame + o.BytesOutPerFrame) / 1e6:0.000} MB a frame)"))));
        return string.Join(" ", [
            "Node CPU per frame: each worker process's CPU time from the poll that saw the first result to the end of the run, over the",
            "results delivered in that span (CPU times come from /proc in 10 ms ticks); +ingest: the same for this process (the source,",
            "ingest, coordinator, sink and the run's polling).",
            "Bare stage CPU per frame: right after each pipeline run, each stage file as its worker ran it in a bare loop of its own",
            $"(one ONNX Runtime session, {options.ThreadsPerNode} intra-op thread(s), pinned to that worker's core(s), one stage at a time,",
            $"{StageLoopSeconds(options):0} s after 5 warm-up runs): the loop process's CPU time over its runs, not wall time.",
            "Overhead per node = (node CPU per frame - bare stage CPU per frame) / bare stage CPU per frame (transport, copies, actors; aim <= 5 %).",
            "CPU per MB on each end of a link = (node CPU per frame - bare stage CPU per frame) / MB (10^6 bytes) the node's stage",
            "received and sent per frame (an upper bound: it charges all of the node's excess, per-frame messages and idle cluster work",
            $"included, to the bytes); measured here: {string.Join("; ", measured)}.",
        ]);
    }

    /// <summary>
    /// <c>bench --emulate</c>: on the emulated workers, in one run, the planner's plan, the balanced equal split (stage i on
    /// worker i), whole-model replicas (one bare loop per device, all at once) and the fastest device alone, each measured and
    /// predicted by the planner's cost model from calibration loops run inside the devices first.
    /// </summary>
    /// <summary>Node i's cores: its own <c>ThreadsPerNode</c> of them, wrapping round where the machine has fewer.</summary>
    private static Func<int, string> CoreMap(BenchOptions options)
    {
        var cores = Environment.ProcessorCount;
        return index => string.Join(
            ",",
            Enumerable.Range(index * options.ThreadsPerNode, options.ThreadsPerNode)
                .Select(c => (c % cores).ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>One measured pipeline run of the bench: its frames as fast as the pipeline takes them, each node pinned.</summary>
    private static LocalRunOptions PipelineRun(
        BenchOptions options, int workers, Func<int, string> coresOf, EmulationSpec? emulation, StagePlacement? placement = null) => new()
    {
        ModelPath = options.ModelPath,
        InputSizes = options.InputSizes,
        Workers = workers,
        Frames = options.Frames,
        FramesPerSecond = 0,
        IntraOpThreads = options.ThreadsPerNode,
        CoresOf = coresOf,
        BinaryFolder = options.BinaryFolder,
        LogFile = options.LogFile,
        Emulation = emulation,
        Placement = placement,
    };

    private static async Task<BenchReport> CompareAsync(BenchOptions options, EmulationSpec spec, CancellationToken cancellation)
    {
        var say = options.Progress ?? (_ => { });
        var n = spec.Workers.Count;
        var cores = Environment.ProcessorCount;
        var coresFor = CoreMap(options);

        say($"bare loop: the whole model, {options.ThreadsPerNode} thread(s), pinned to core(s) {coresFor(0)}, full speed, "
            + $"{options.LoopSeconds:0} s");
        var bare = (await Loops(options, 1, coresFor, cancellation))[0];
        var calibrationSeconds = Math.Max(3, options.LoopSeconds / 3);
        say($"calibrating: a bare loop inside each of the {n} emulated devices at once, {calibrationSeconds:0} s");
        var planningOptions = new DevicePlanningOptions
        {
            ModelPath = options.ModelPath,
            InputSizes = options.InputSizes,
            Workers = n,
            IntraOpThreads = options.ThreadsPerNode,
            Emulation = spec,
            CoresOf = coresFor,
            CalibrationSeconds = calibrationSeconds,
            // Short loops ask for a quick bench: at least 5 quota periods (0.5 s) a segment, at most the default 1.5 s.
            SegmentSeconds = Math.Clamp(options.LoopSeconds / 4, 0.5, 1.5),
            BinaryFolder = options.BinaryFolder,
            Progress = say,
        };
        var planning = await DevicePlanning.MeasureAsync(planningOptions, cancellation);
        var latency = options.Objective == PlanObjective.Latency;
        var planned = planning.Planned(options.Objective);
        var equal = planning.EqualSplit(n);
        var single = planning.Chain("single", [], [planning.FastestWorker]);
        var replicasPredicted = planning.Replicas();
        var compared = new List<PricedConfiguration> { planned, equal, single };
        if (latency)
        {
            // Each other device alone too: with the source's worker first, "local only" against "edge only" (ScissionLite's comparison).
            compared.AddRange(Enumerable.Range(0, n).Where(w => w != planning.FastestWorker)
                .Select(w => planning.Chain(SingleOn(w), [], [w])));
        }

        var rows = new List<BenchRow>();
        IReadOnlyList<EmulatedWorkerRow> emulation = [];
        // The planned configuration runs once per codec, and so does the equal split: the planner prices the exact wire, so its
        // plan may keep the model on one device (no cut for a codec to work on), while the equal split always cuts. Only exact
        // rows carry a prediction.
        var runs = compared.SelectMany(c =>
            (c == planned || c == equal ? options.Codecs : [Transfer.TransferSpec.Exact]).Select(codec => (c, codec)));
        foreach (var (configuration, codec) in runs)
        {
            var name = codec == Transfer.TransferSpec.Exact ? configuration.Name : $"{configuration.Name} with {codec}";
            say($"{name}: {string.Join("; ", [.. planning.Describe(configuration), .. planning.DescribeHops(configuration)])}; "
                + $"predicted {configuration.PredictedFramesPerSecond:0.00} frames/s, {configuration.Figures.LatencyMs:0.0} ms a frame (exact wire)");
            var run = await LocalRun.RunAsync(
                PipelineRun(options, n, coresFor, spec, configuration.Placement) with { Window = latency ? 1 : null, Codec = codec },
                cancellation);
            emulation = run.Emulation;
            say($"{name}: measured {run.FramesPerSecond:0.00} frames/s, p50 {run.LatencyP50Ms:0.0} ms");
            var exact = codec == Transfer.TransferSpec.Exact;
            rows.Add(RowOf(configuration.Name, configuration.Placement.Parts, run, bare.FramesPerSecond, null) with
            {
                PredictedFramesPerSecond = exact ? Math.Round(configuration.PredictedFramesPerSecond, 2) : null,
                PredictedLatencyMs = exact ? Math.Round(configuration.Figures.LatencyMs, 2) : null,
                Codec = codec,
            });
        }

        say($"replicas: the whole model in a bare loop inside each of the {n} emulated devices at once, {options.LoopSeconds:0} s");
        var replicaLoops = await DevicePlanning.CalibrateAsync(
            planningOptions with { CalibrationSeconds = options.LoopSeconds, Progress = null },
            LocalRun.InputSizesFor(options.ModelPath, options.InputSizes),
            cancellation);
        var replicaFps = replicaLoops.Sum(l => l.Frames > 0 ? 1000 / l.WholeModelMs : 0);
        rows.Insert(rows.FindLastIndex(r => r.Configuration == equal.Name) + 1, new BenchRow(
            "replicas",
            n,
            Math.Round(replicaFps, 2),
            Math.Round(replicaFps / bare.FramesPerSecond, 3),
            Math.Round(replicaFps / bare.FramesPerSecond / n, 3),
            Math.Round(replicaFps / (n * bare.FramesPerSecond), 3),
            null,
            Math.Round(replicaLoops.Average(l => l.WholeModelMs), 2),
            [],
            [],
            0,
            [],
            0)
        {
            PredictedFramesPerSecond = Math.Round(replicasPredicted.FramesPerSecond, 2),
            PredictedLatencyMs = Math.Round(replicasPredicted.LatencyMs, 2),
        });

        say("bare loop again, to see how much the machine drifted during the run");
        var bareAfter = (await Loops(options, 1, coresFor, cancellation))[0];
        var method = string.Join(" ", [
            $"One run on this machine ({cores} cores). Emulated workers ({n}): {spec}.",
            $"Calibration: a bare loop of the whole model inside each worker's cgroup and namespace, all at once, {calibrationSeconds:0} s.",
            planning.Segments.Count > 0
                ? $"Block times: the model cut into {planning.Segments[0].MeanMs.Count} segments at block bounds, each written as a stage file and "
                    + $"timed as a session of its own inside every worker's device, all devices at once "
                    + $"({planningOptions.SegmentSeconds:0.#} s a segment, "
                    + "wall time per run; cached by model SHA-256 and device spec); a block's time = its segment's time x its share of "
                    + "the segment's per-node times."
                : "Each block's time on a worker = its share of the per-node times measured in one ONNX Runtime session x that worker's "
                    + "whole-model time.",
            latency
                ? "Objective latency: the planned row is the planner's least-latency plan; every pipeline run keeps one frame in flight, "
                    + "so its p50 is one frame's latency without queueing."
                : "",
            $"Links from the spec (unshaped: {DevicePlanning.UnshapedMbps:0} Mbit/s; a worker-to-worker hop gets the narrower of the two;",
            "latency is added by the application).",
            $"planned: the planner's {(latency ? "latency" : "throughput")} plan, no replicated stages (the runtime runs one stage per worker),",
            "cuts and worker order as planned;",
            options.Codecs.Count == 1 && options.Codecs[0] == Transfer.TransferSpec.Exact
                ? ""
                : $"the planned configuration and the equal split once per codec ({string.Join(", ", options.Codecs)}: the codec, and its layer "
                    + "rewritten into the stages, on every cut, calibrated on 16 synthetic frames; no prediction, since the cost model "
                    + "prices the exact wire), the others exact;",
            "equal-split: the runtime's balanced split (equal measured cost per stage plus the transfer price), stage i on worker i;",
            $"single: the whole model on the fastest worker ({DevicePlanning.WorkerDevice(planning.FastestWorker)}) alone;",
            $"replicas: a bare loop of the whole model in every device at once for {options.LoopSeconds:0} s, frames/s summed (no frame transfer).",
            $"Pipeline runs: 'pipeline run' with {options.Frames} synthetic frames as fast as the pipeline takes them,",
            "throughput = (results - 1) / (last result - first result).",
            "Predicted: the planner's cost model (period = the slowest stage or link occupancy).",
        ]);
        return new BenchReport(
            Path.GetFileName(options.ModelPath),
            Machine(cores),
            method,
            Math.Round(bare.FramesPerSecond, 2),
            Math.Round(bareAfter.FramesPerSecond, 2),
            Math.Round(bare.P50Ms, 2),
            bare.PeakRssBytes,
            rows,
            [])
        {
            Emulation = emulation,
            DeviceSpeeds = planning.Speeds.Select(d => d with { WholeModelMs = Math.Round(d.WholeModelMs, 2) }).ToList(),
            SegmentTimes = planning.Segments.Select(t => t with { MeanMs = t.MeanMs.Select(ms => Math.Round(ms, 2)).ToList() }).ToList(),
            Objective = latency ? "latency" : "throughput",
            Plans = compared.Select(c => new BenchPlanRow(
                c.Name,
                c.Placement.Workers,
                c.Placement.Cuts,
                planning.Describe(c),
                Math.Round(c.PredictedFramesPerSecond, 2),
                c.Figures.Bottleneck.Description) { Hops = planning.DescribeHops(c) }).ToList(),
        };
    }

    /// <summary>The row of worker <paramref name="worker"/> alone (besides <c>single</c>, the fastest alone) in a latency bench.</summary>
    public static string SingleOn(int worker) => string.Create(CultureInfo.InvariantCulture, $"single-worker-{worker}");

    /// <summary>The machine in words: cores, CPU model, memory, OS.</summary>
    private static string Machine(int cores)
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30);
        return $"{cores} cores ({cpu ?? "unknown CPU"}), {memory} GiB, {Environment.OSVersion}";
    }

    private static Task<List<BareLoopResult>> Loops(BenchOptions options, int count, Func<int, string> coresFor, CancellationToken cancellation) =>
        BareLoops.RunAsync(
            options.ModelPath,
            options.InputSizes,
            options.ThreadsPerNode,
            options.LoopSeconds,
            count,
            coresFor,
            options.BinaryFolder,
            null,
            cancellation);
}
