using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Cluster;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.DataPath.Sink.Decoders;
using PipelineActors.Harness.Chaos;
using PipelineActors.Harness.Emulation;
using PipelineActors.Onnx.Cost;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.Hosting.Jobs;

namespace PipelineActors.Harness;

/// <summary>What <c>pipeline run</c> does: a local cluster on 127.0.0.1, a model, a source, and optional faults.</summary>
public sealed record LocalRunOptions
{
    public required string ModelPath { get; init; }

    public IReadOnlyDictionary<string, long[]>? InputSizes { get; init; }

    public int Workers { get; init; } = 3;

    public long Frames { get; init; } = 300;

    /// <summary>Camera rate of the synthetic source; 0 reads frames as fast as the pipeline takes them.</summary>
    public double FramesPerSecond { get; init; } = 30;

    public int IntraOpThreads { get; init; } = 1;

    public int? Window { get; init; }

    public double? KillWorkerAfterSeconds { get; init; }

    public double? AddWorkerAfterSeconds { get; init; }

    /// <summary>Soak: SIGKILL this many random stage-hosting workers at random times (3-7 s apart), starting a fresh worker after each.</summary>
    public int SoakKills { get; init; }

    public IResultWriter? Results { get; init; }

    /// <summary>Frame source spec (see <see cref="SourceSpec.Kinds"/>); anything but synthetic needs the model's profile.</summary>
    public string Source { get; init; } = "synthetic";

    /// <summary>Where to write one JSON line per frame (decoded as the model profile says); null for none, "-" for stdout.</summary>
    public string? ResultsPath { get; init; }

    public bool Pin { get; init; } = true;

    /// <summary>Cores for worker i (taskset list); overrides the default pinning when given.</summary>
    public Func<int, string?>? CoresOf { get; init; }

    public string? BinaryFolder { get; init; }

    public string? ModelCache { get; init; }

    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    public Action<string>? Progress { get; init; }

    /// <summary>Draw results on the frames (their pixels ride on each outcome): given the profile and the writer, the writer to use.</summary>
    public Func<ModelProfile, IResultWriter, IResultWriter>? Annotate { get; init; }

    /// <summary>Called with the monitor's snapshot twice a second (the dashboard of <c>pipeline run --monitor</c>).</summary>
    public Action<MonitorSnapshot>? OnSnapshot { get; init; }

    /// <summary>
    /// Wraps the audited results writer: the sink writes through it before the audit counts, so a fault it injects
    /// (a dropped, repeated or swapped result) must show in the report. For tests of the report's own counters.
    /// </summary>
    public Func<IResultWriter, IResultWriter>? BeforeAudit { get; init; }

    /// <summary>Serve Prometheus metrics: this process on this port, worker i on port + 1 + i.</summary>
    public int? MetricsPort { get; init; }

    /// <summary>The address every process's metrics bind; null: 127.0.0.1.</summary>
    public string? MetricsAddress { get; init; }

    /// <summary>Where this process's Akka log goes (null: the console).</summary>
    public string? LogFile { get; init; }

    /// <summary>Emulated devices and links, one entry per worker (<c>--emulate</c>); null runs every worker at full speed.</summary>
    public EmulationSpec? Emulation { get; init; }

    /// <summary>
    /// Cut the model where this says and put stage i on worker <c>Workers[i]</c> (a plan's cuts and device order); null leaves
    /// both to the balanced split, one stage per worker in address order.
    /// </summary>
    public StagePlacement? Placement { get; init; }

    /// <summary>Chaos soak (<c>--chaos</c>): stream an endless source for this many minutes while killing, pausing,
    /// restarting, adding and removing workers; null for an ordinary run.</summary>
    public double? ChaosMinutes { get; init; }

    /// <summary>Seed of the chaos soak's actions (<c>--chaos-seed</c>); null draws one (printed, to replay the soak).</summary>
    public int? ChaosSeed { get; init; }

    /// <summary>
    /// The transfer layer's codec on every cut (<c>--codec</c>, names as <c>pipeline fidelity --codec</c> takes them);
    /// null or <c>exact</c> is the exact wire (zero suppression only).
    /// </summary>
    public string? Codec { get; init; }

    /// <summary>What the source's pictures cross to the first stage as (<c>--first-hop</c>): <c>raw</c> uint8 pixels or <c>jpeg:Q</c>.</summary>
    public string FirstHop { get; init; } = Transfer.FirstHop.Raw;

    /// <summary>Frames of the source the codec's quantisers are calibrated on before the run (read from a second opening of it).</summary>
    public int CalibrationFrames { get; init; } = CutCodecPlan.DefaultCalibrationFrames;

    /// <summary>
    /// A fidelity budget (<c>--fidelity F</c>): each hop gets the codec that costs a frame least time on its link among those
    /// whose measured fidelity on the calibration frames is at least F (<see cref="CutCodecChoice"/>); null: <see cref="Codec"/>.
    /// </summary>
    public double? Fidelity { get; init; }
}

/// <summary>
/// Starts a local cluster: this process is the coordinator and ingest node, the workers are child
/// processes of the built node binary, each pinned to its own core where the machine has enough.
/// Submits the run as a job to the cluster's registry (<see cref="LocalRunJob"/>), so the head's job host streams it as
/// it would a submitted job, watches it (faults, workers added) and reports (<c>LocalRunReport.cs</c>).
/// </summary>
public static partial class LocalRun
{
    /// <summary>
    /// What an emulated worker's cgroup weighs, in ordinary tasks: on a machine shared with other load a group counts as one
    /// task, so that load, not the quota, would set the worker's speed; with this weight the quota decides.
    /// </summary>
    public const double EmulatedWorkerWeight = 100;

    public static async Task<RunReport> RunAsync(LocalRunOptions options, CancellationToken cancellation = default)
    {
        if (options.Workers < 1)
        {
            throw new Onnx.PipelineInputException($"--nodes must be at least 1, not {options.Workers}.");
        }

        var say = options.Progress ?? (_ => { });
        // This user's own folder (0700), not a fixed one in /tmp where another user could plant links (review S3).
        var store = Path.Combine(PrivateFiles.RunFolder(), "store");
        var maxWorkers = options.Workers + (options.AddWorkerAfterSeconds is null ? 0 : 1) + (options.ChaosMinutes is null ? 0
            : ChaosRun.ExtraWorkers);
        var profile = File.Exists(ModelProfile.PathFor(options.ModelPath)) ? ModelProfile.ForModel(options.ModelPath) : null;
        if (profile is null && options.Source != "synthetic")
        {
            throw new Onnx.PipelineInputException(
                $"Source '{SourceCredentials.Redact(options.Source)}' needs the model's profile "
                + $"({Path.GetFileName(ModelProfile.PathFor(options.ModelPath))}: input size, layout, normalisation) beside the model.");
        }

        FirstHopPlan.RequireProfile(Transfer.FirstHop.Parse(options.FirstHop), profile);
        if (profile is not null && options.Source != "synthetic")
        {
            // Checked before the model is cut and workers start: a wrong path or a missing ffmpeg is one sentence at once.
            // Sources open lazily (ffmpeg starts on the first read), so this costs nothing.
            using var probe = SourceSpec.Parse(options.Source, profile, new FrameSourceOptions(Uint8Pixels: true));
        }

        if (options.Emulation is { } emulation)
        {
            emulation.RequireWorkers(options.Workers);
            if (maxWorkers != options.Workers || options.SoakKills > 0 || options.ChaosMinutes is not null)
            {
                throw new Onnx.PipelineInputException(
                    "--emulate gives one entry per worker started at the beginning, "
                    + "so it cannot go with --add-worker-after, --soak-kills or --chaos; drop one.");
            }
        }

        // Created before anything else starts and disposed after the workers have stopped (the finally below runs first):
        // every cgroup, namespace and veth goes, on success, failure and Ctrl-C alike.
        using var devices = options.Emulation is { } spec ? EmulatedDevices.Create(spec) : null;
        foreach (var quota in devices?.Workers.Select(w => w.Quota).OfType<CpuQuota>() ?? [])
        {
            quota.SetWeight(EmulatedWorkerWeight);
        }

        if (devices is not null)
        {
            say($"emulating {devices.Spec} (head on {devices.HeadAddress})");
        }

        say($"cutting {Path.GetFileName(options.ModelPath)} for 1..{maxWorkers} workers");
        var sizes = InputSizesFor(options.ModelPath, options.InputSizes);
        var balance = JobBuilder.MeasuredBalance(options.IntraOpThreads);
        if (options.Placement is { } placement)
        {
            CheckPlacement(placement, options.Workers);

            // The plan's split takes its place among the balanced ones, which recovery falls back to when a worker is lost.
            var measured = balance;
            balance = (analysis, parts) => parts == placement.Parts ? placement.Cuts : measured(analysis, parts);
        }

        var prepared = JobBuilder.Prepare(
            options.ModelPath, sizes, maxWorkers, store, balance, normalisation: profile is null ? null : Normalisation(profile));
        var codec = CutCodecPlan.Parse(options.Codec ?? Transfer.TransferSpec.Exact);
        CodecChoiceReport? codecChoice = null;
        if (options.Fidelity is { } budget)
        {
            if (codec.ChangesTheWire)
            {
                throw new Onnx.PipelineInputException(
                    $"--fidelity lets each hop's codec be chosen and --codec {codec.Text} fixes one for all; give one of them.");
            }

            say($"choosing each hop's codec within the fidelity budget {budget.ToString(CultureInfo.InvariantCulture)} "
                + $"on {options.CalibrationFrames} frame(s) of the source");
            using var calibration = OpenSource(options, profile, prepared, options.CalibrationFrames, framesPerSecond: 0);
            (prepared, codecChoice) = CutCodecChoice.Apply(
                prepared, budget, calibration, options.CalibrationFrames, HopLinks(options), profile, options.IntraOpThreads, say);
            foreach (var hop in codecChoice.Hops.Where(h => h.Parts == options.Workers))
            {
                say($"hop {hop.Hop + 1}: {hop.Codec} ({hop.Reason})");
            }
        }
        else if (codec.ChangesTheWire)
        {
            // Calibrated on the run's own source, opened a second time, as pipeline fidelity calibrates on its first frames.
            say($"calibrating the {codec.Text} codec on {options.CalibrationFrames} frame(s) of the source");
            using var calibration = OpenSource(options, profile, prepared, options.CalibrationFrames, framesPerSecond: 0);
            prepared = CutLayerPlan.Apply(prepared, codec, calibration, options.CalibrationFrames, options.IntraOpThreads);
        }

        // Here, before any worker starts, so a model whose source sends no picture is one sentence; the job runner applies it
        // again (to the same effect) as it does for a submitted job.
        prepared = FirstHopPlan.Apply(prepared, Transfer.FirstHop.Parse(options.FirstHop), profile);

        using var metrics = options.MetricsPort is { } metricsPort ? MetricsEndpoint.Start(metricsPort, options.MetricsAddress) : null;
        await using var cluster = await LocalCluster.StartAsync(options, devices, maxWorkers, say);
        var head = cluster.Head;
        var monitor = options.OnSnapshot is null ? null : head.System.ActorOf(MonitorActor.Props(), "monitor");
        var workers = cluster.Workers;
        ChaosRun? chaos = null;
        LocalRunJob? released = null;
        try
        {
            await cluster.StartWorkersAsync(options.Workers, say);

            var window = options.Window ?? Math.Max(2, options.Workers + 1);
            if (options.Annotate is not null && profile?.Decoder is null)
            {
                throw new Onnx.PipelineInputException("--annotate needs a model whose profile names a decoder (a detector such as the "
                    + "bundled BlazeFace or PaddleOCR detector).");
            }

            if (options.ChaosMinutes is { } minutes)
            {
                chaos = ChaosRun.Create(minutes, options, head.System, workers, cluster.LaunchAnother, say);
            }

            // Lost, duplicated and out of order are counted where results land, by an audit that shares nothing
            // with the ingest's or the sink's bookkeeping; the job's destinations (or the caller's writer) sit behind it.
            AuditingResultWriter? audited = null;
            var hooks = new JobRunHooks
            {
                Model = prepared,
                // A soak's source has no end of its own: the soak ends it when its minutes are over.
                Source = model =>
                {
                    var frames = options.ChaosMinutes is null ? options.Frames : long.MaxValue;
                    var source = OpenSource(options, profile, model, frames, options.FramesPerSecond, endless: chaos is not null);
                    return chaos is null ? source : chaos.Wrap(source);
                },
                Results = destinations =>
                {
                    audited = new AuditingResultWriter(options.Results ?? destinations);
                    IResultWriter results = options.BeforeAudit is { } fault ? fault(audited) : audited;
                    return options.Annotate is { } annotate ? annotate(profile!, results) : results;
                },
                // The pixels ride on each frame's outcome to the writer that draws on them.
                Ingest = s => s with { PixelsToSink = options.Annotate is not null },
            };
            var job = await LocalRunJob.SubmitAsync(head, options, sizes, ResultDestinationsOf(options), window, hooks);
            say($"submitted job {LocalRunJob.Name} to the cluster's job registry; see it with: pipeline job status --name {LocalRunJob.Name} "
                + $"--seed {head.SeedUri} --tls {cluster.MonitorFolder}");
            var session = await job.StartedAsync(head, TimeSpan.FromMinutes(2));
            released = job;

            var clock = Stopwatch.StartNew();
            // CPU is counted from the first result on, so model loading and warm-up are not charged to frames.
            var headCpuStart = 0.0;
            var workerCpuStart = new Dictionary<NodeProcess, double>();
            long deliveredAtCpuStart = 0;
            long? killTicks = null;
            long? inFlightAtKill = null;
            string? killed = null;
            string? added = null;
            double? firstResultAt = null;
            var random = new Random(Environment.TickCount);
            var soak = new List<(int Number, string Node, long InFlight, long Ticks)>();
            double? nextSoakKill = null;
            long shownEpoch = -1;
            TimeSpan? unansweredSince = null;
            while (!session.Completed.IsCompleted)
            {
                await Task.WhenAny(session.Completed, Task.Delay(500, cancellation));
                if (session.Completed.IsFaulted)
                {
                    await session.Completed; // the ingest failed: its reason, not a timeout asking a stopped actor
                }

                cancellation.ThrowIfCancellationRequested();
                if (clock.Elapsed > (chaos?.Timeout(options.Timeout) ?? options.Timeout))
                {
                    throw new TimeoutException($"The run did not finish within {options.Timeout.TotalSeconds:0} s.");
                }

                if (head.System.WhenTerminated.IsCompleted)
                {
                    // Asking the stopped ingest would only time out; say what happened (the log has who downed it and why).
                    throw new InvalidOperationException(
                        $"The cluster downed this run's head node (coordinator and ingest) {clock.Elapsed.TotalSeconds:0} s into the run: "
                        + $"a member judged it unreachable; see {options.LogFile ?? "the console log"}.");
                }

                // A progress poll that goes unanswered is no failure of the run: on a starved machine (a soak at a load
                // of 30 on 2 cores) the ingest answered a 10 s ask late, and that ended the run with a stack trace.
                // Only a minute without one answer ends it, in one sentence.
                IngestStats ingest;
                SinkStats sink;
                try
                {
                    ingest = await session.IngestStatsAsync();
                    sink = await session.SinkCountersAsync();
                    unansweredSince = null;
                }
                catch (AskTimeoutException)
                {
                    unansweredSince ??= clock.Elapsed;
                    if (clock.Elapsed - unansweredSince > TimeSpan.FromMinutes(1))
                    {
                        throw new TimeoutException(
                            $"The head's ingest and sink answered no progress poll for {(clock.Elapsed - unansweredSince.Value).TotalSeconds:0} s; "
                            + $"see {options.LogFile ?? "the console log"}.");
                    }

                    say($"{clock.Elapsed.TotalSeconds,5:0.0} s  the ingest or sink did not answer a progress poll in 10 s; still waiting");
                    continue;
                }

                if (monitor is not null)
                {
                    options.OnSnapshot!(await monitor.Ask<MonitorSnapshot>(GetMonitorSnapshot.Instance, TimeSpan.FromSeconds(5), cancellation));
                }

                if (firstResultAt is null && sink.Delivered > 0)
                {
                    firstResultAt = clock.Elapsed.TotalSeconds;
                    headCpuStart = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
                    foreach (var w in workers)
                    {
                        workerCpuStart[w] = w.CpuSeconds;
                    }

                    deliveredAtCpuStart = sink.Delivered;
                }

                if (firstResultAt is not null)
                {
                    chaos?.Tick(DateTime.UtcNow);
                }

                if (ingest.Epoch != shownEpoch && ingest.Plan is { } shown)
                {
                    shownEpoch = ingest.Epoch;
                    say($"plan epoch {shown.Epoch} ({shown.Reason.Text()}): {string.Join(" -> ", shown.Placements.Select(p => p.Node))}");
                }

                say($"{clock.Elapsed.TotalSeconds,5:0.0} s  in {ingest.Accepted}  out {sink.Delivered}  skipped {ingest.Skipped}  resent "
                    + $"{ingest.Resent}  epoch {ingest.Epoch}");

                if (options.KillWorkerAfterSeconds is { } killAfter && killTicks is null && firstResultAt is { } first
                    && clock.Elapsed.TotalSeconds >= first + killAfter && ingest.Plan is { } plan)
                {
                    var victimNode = plan.Placements[plan.Placements.Count / 2].Node;
                    var victim = workers.FirstOrDefault(w => !w.HasExited && LocalCluster.NodeOf(w) == victimNode)
                        ?? throw new InvalidOperationException($"No worker process hosts {victimNode}.");

                    // Kill while frames are in flight, so the kill tests recovery (a fast model at a
                    // camera rate leaves the pipeline empty much of the time).
                    inFlightAtKill = ingest.Accepted - (ingest.DeliveredThrough + 1);
                    for (var tries = 0; inFlightAtKill <= 0 && tries < 2000; tries++)
                    {
                        await Task.Delay(1, cancellation);
                        var now = await session.IngestStatsAsync();
                        inFlightAtKill = now.Accepted - (now.DeliveredThrough + 1);
                    }

                    victim.Kill();
                    killTicks = Stopwatch.GetTimestamp();
                    killed = victimNode;
                    say($"SIGKILL {victim.Name} ({victimNode}), hosting stage {plan.Placements.Count / 2}, with {inFlightAtKill} frame(s) in flight");
                }

                if (options.SoakKills > soak.Count && firstResultAt is { } soakStart && ingest.Plan is { } soakPlan)
                {
                    nextSoakKill ??= clock.Elapsed.TotalSeconds + 3 + (4 * random.NextDouble());
                    if (clock.Elapsed.TotalSeconds >= nextSoakKill)
                    {
                        var target = soakPlan.Placements[random.Next(soakPlan.Placements.Count)].Node;
                        var process = workers.FirstOrDefault(w => !w.HasExited && LocalCluster.NodeOf(w) == target);
                        if (process is not null)
                        {
                            process.Kill();
                            soak.Add((soak.Count + 1, target, ingest.Accepted - (ingest.DeliveredThrough + 1), Stopwatch.GetTimestamp()));
                            say($"soak kill {soak.Count}/{options.SoakKills}: SIGKILL {process.Name} ({target}); starting a fresh worker");
                            cluster.LaunchAnother();
                        }

                        nextSoakKill = null;
                    }
                }

                if (options.AddWorkerAfterSeconds is { } addAfter && added is null && firstResultAt is { } f2
                    && clock.Elapsed.TotalSeconds >= f2 + addAfter)
                {
                    var extra = cluster.LaunchAnother();
                    added = extra.Name;
                    say($"started {extra.Name} to join the running pipeline");
                }
            }

            var finalIngest = await session.IngestStatsAsync();
            var finalSink = await session.SinkStatsAsync();
            var stages = await StageRows(finalIngest.Plan);
            job.Release(); // the runner ends the supervisor's job (from the ingest's node) now that the stages' counters are read
            var frames = Math.Max(1, finalSink.Delivered - deliveredAtCpuStart);
            var nodes = workers.Where(w => !w.HasExited).Select(w =>
            {
                var cpu = w.CpuSeconds - workerCpuStart.GetValueOrDefault(w);
                // Microseconds: bench sets this against a stage's bare loop, and a 5 ms stage rounded to 0.1 ms is 2 % off.
                return new NodeRow(LocalCluster.NodeOf(w) ?? w.Name, w.Cores, Math.Round(cpu, 2), Math.Round(cpu / frames, 6), w.RssBytes);
            }).ToList();
            var headCpu = (Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - headCpuStart) / frames;
            if (added is not null)
            {
                added = LocalCluster.NodeOf(workers[^1]) ?? added;
            }

            var soakKills = soak.Select(k =>
            {
                var first = finalSink.Deliveries.FirstOrDefault(d => d.Ticks > k.Ticks && d.Epoch > EpochAt(finalIngest, k.Ticks));
                double? recovery = first.Ticks > 0 ? Math.Round((first.Ticks - k.Ticks) * 1000.0 / Stopwatch.Frequency, 0) : null;
                return new SoakKill(k.Number, k.Node, k.InFlight, recovery);
            }).ToList();
            var report = Report(options, finalIngest, finalSink, audited!.Read(finalIngest.Accepted), stages, killed, inFlightAtKill,
                killTicks, added) with
            {
                Nodes = nodes,
                HeadCpuSecondsPerFrame = Math.Round(headCpu, 4),
                SoakKills = soakKills,
                StageFiles = prepared.Splits.FirstOrDefault(split => split.Parts == stages.Count)?.Stages.OrderBy(st => st.Index)
                    .Select(st => prepared.FilesBySha[st.File.Sha256]).ToList() ?? [],
                Emulation = devices is null ? [] : EmulationRows(devices, workers),
                FidelityBudget = codecChoice?.Budget,
                FidelityMeasure = codecChoice?.Measure,
                HopCodecs = codecChoice is null ? [] : [.. codecChoice.Hops.Select(h => HopCodecRow.Of(h, codecChoice))],
                Codec = codecChoice is null ? CutCodecPlan.Parse(options.Codec ?? Transfer.TransferSpec.Exact).Text
                    : string.Join(
                        ",", codecChoice.Hops.Where(h => h.Parts == stages.Count).Select(h => h.Codec).DefaultIfEmpty(Transfer.TransferSpec.Exact)),
            };
            return chaos is null ? report : report with { Chaos = chaos.Report(report, DateTime.UtcNow) };
        }
        catch when (chaos is not null)
        {
            // A soak that fails part-way still tells what it did and what the nodes held.
            say(chaos.Totals(DateTime.UtcNow));
            throw;
        }
        finally
        {
            released?.Release();
            head.JobHooks.Remove(LocalRunJob.Name);
            chaos?.Monkey.ResumeAll(DateTime.UtcNow); // the cluster's disposal then stops the workers, then the head
        }
    }

    /// <summary>The input sizes a run uses: those given, else the model profile's (beside the model), else the model's own.</summary>
    public static IReadOnlyDictionary<string, long[]>? InputSizesFor(string modelPath, IReadOnlyDictionary<string, long[]>? given)
    {
        var profile = File.Exists(ModelProfile.PathFor(modelPath)) ? ModelProfile.ForModel(modelPath) : null;
        return given is { Count: > 0 } || profile is null ? given : new Dictionary<string, long[]> { [profile.Input] = profile.Shape };
    }

    private static void CheckPlacement(StagePlacement placement, int workers)
    {
        if (placement.Workers.Count == 0 || placement.Cuts.Count != placement.Parts - 1
            || placement.Workers.Any(w => w < 0 || w >= workers) || placement.Workers.Distinct().Count() != placement.Parts)
        {
            throw new ArgumentException(
                $"A placement needs one distinct worker of 0..{workers - 1} per stage and one cut fewer than stages.", nameof(placement));
        }
    }

    /// <summary>The profile's normalisation as the first stage applies it to uint8 pixels: pixel * scale/std - mean/std.</summary>
    public static PixelNormalisation Normalisation(ModelProfile profile) => profile.FirstStageNormalisation();

    /// <summary>
    /// The job's result destinations: <c>--results</c> (a file, or <c>-</c> for stdout), none when the caller writes them
    /// itself. A run starts its file afresh, as it always has: a job's file destination appends and resumes after its last id.
    /// </summary>
    private static IReadOnlyList<string> ResultDestinationsOf(LocalRunOptions options)
    {
        if (options.Results is not null || options.ResultsPath is not { } path)
        {
            return [];
        }

        if (path != "-")
        {
            File.Delete(path);
        }

        return [path];
    }

    private static List<EmulatedWorkerRow> EmulationRows(EmulatedDevices devices, List<NodeProcess> workers) =>
        devices.Workers.Select(w => new EmulatedWorkerRow(
            workers[w.Index].Name,
            LocalCluster.NodeOf(workers[w.Index]),
            w.BindAddress.ToString(),
            w.Settings.Cpu,
            w.Settings.LinkMbit,
            w.Settings.LatencyMs)).ToList();

    /// <summary>
    /// The link a split's hop crosses, as the planner prices it: a hop between two workers crosses both their shaped links, so
    /// it gets the narrower rate and the sender's latency. The placed split's hops are known (stage i on its planned worker, or
    /// worker i: the supervisor places stages in address order); any other split is a recovery plan whose workers are not
    /// known ahead, so its hops get the run's narrowest link. Without emulation every hop is loopback.
    /// </summary>
    private static Func<int, int, HopLink?> HopLinks(LocalRunOptions options)
    {
        var workers = options.Emulation?.Workers;
        HopLink Of(int worker) => new(workers?[worker].LinkMbit ?? DevicePlanning.UnshapedMbps, workers?[worker].LatencyMs ?? 0);
        var narrowest = workers is null ? Of(0) : Enumerable.Range(0, workers.Count).Select(Of).MinBy(l => l.Mbps);
        return (parts, hop) =>
        {
            if (parts != options.Workers)
            {
                return narrowest;
            }

            var (from, to) = options.Placement is { } placed ? (placed.Workers[hop], placed.Workers[hop + 1]) : (hop, hop + 1);
            return new HopLink(Math.Min(Of(from).Mbps, Of(to).Mbps), Of(from).LatencyMs);
        };
    }

    /// <summary>The run's source: synthetic, or the spec through the model's profile; <paramref name="endless"/> for a soak's.</summary>
    private static IFrameSource OpenSource(
        LocalRunOptions options, ModelProfile? profile, PreparedModel prepared, long frames, double framesPerSecond, bool endless = false)
    {
        if (options.Source == "synthetic" || profile is null)
        {
            return new SyntheticSource(prepared.SourceInputs, framesPerSecond, endless ? null : frames);
        }

        var pixels = prepared.SourceInputs.Any(t => t.ElementType == Onnx.Proto.TensorProto.Types.DataType.Uint8);
        return new LimitedSource(
            SourceSpec.Parse(options.Source, profile,
                new FrameSourceOptions(Uint8Pixels: pixels, Frames: frames, FramesPerSecond: framesPerSecond > 0 ? framesPerSecond : null)),
            frames);
    }

}
