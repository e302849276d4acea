using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PipelineActors.Onnx.Graph;
using Spectre.Console;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Harness;
using PipelineActors.Harness.Emulation;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.ControlPath.Planning;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline run</c>: the main job on an embedded default, a local cluster on 127.0.0.1.</summary>
internal static class RunCommand
{
    public const string DefaultModel = "blazeface-back-256.onnx";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create(CliContext context)
    {
        var nodes = new Option<int>("--nodes") { Description = "Worker processes to start (each hosts one stage).", DefaultValueFactory = _ => 3 };
        var model = new Option<string?>("--model") { Description = $"ONNX model to run (default: the bundled {DefaultModel})." };
        var frames = new Option<long>("--frames") { Description = "Frames the source produces.", DefaultValueFactory = _ => 300 };
        var source = new Option<string>("--source") { Description = $"Frame source: {SourceSpec.Kinds}; all but synthetic go through "
            + $"ffmpeg or the picture decoder and the model's profile.", DefaultValueFactory = _ => "synthetic" };
        var fps = new Option<double>("--fps") { Description = "Camera rate of the source; 0 = as fast as the pipeline takes frames.",
            DefaultValueFactory = _ => 30 };
        var input = CommonOptions.Input();
        var threads = CommonOptions.Threads();
        var window = new Option<int?>("--window") { Description = "Frames in flight at most (default: workers + 1)." };
        var kill = new Option<double?>("--kill-worker-after") { Description = "SIGKILL the worker hosting the middle stage this many "
            + "seconds after the first result." };
        var add = new Option<double?>("--add-worker-after") { Description = "Start one more worker this many seconds after the first result." };
        var soak = new Option<int>("--soak-kills") { Description = "Soak test: SIGKILL this many random stage-hosting workers at random "
            + "times (3-7 s apart) in one stream, replacing each." };
        var results = new Option<string?>("--results") { Description = "Write one JSON line per frame to this file ('-' for stdout)." };
        var json = new Option<bool>("--json") { Description = "Print the summary as one JSON object." };
        var annotate = new Option<string?>("--annotate") { Description = "Write each frame with the detector's boxes drawn on it as PNG "
            + "into this folder." };
        var dashboard = new Option<bool>("--monitor") { Description = "Show the live monitoring dashboard in place of the progress line." };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Serve Prometheus metrics at http://HOST:PORT/metrics "
            + "(workers on the following ports)." };
        var metricsAddress = new Option<string?>("--metrics-address")
        {
            Description = $"Address the metrics bind (default {MetricsEndpoint.DefaultAddress}, this machine only; 0.0.0.0 for all).",
        };
        var emulate = CommonOptions.Emulate();
        var plan = new Option<string>("--plan")
        {
            Description = "balanced: equal measured cost per stage, one stage per worker in address order; planned: the planner's cuts and "
                + "worker order for the workers as measured (a calibration loop inside each emulated device first).",
            DefaultValueFactory = _ => "balanced",
        };
        var chaos = new Option<double?>("--chaos")
        {
            Description = "Chaos soak for this many minutes: an endless source while random workers are killed, paused past the failure "
                + "detector's pause, restarted, added and removed every few seconds; prints what came through and each node's memory.",
        };
        var chaosSeed = new Option<int?>("--chaos-seed") { Description = "Seed of the chaos soak's actions (default: a random one, printed)." };
        var cuts = new Option<string?>("--cuts")
        {
            Description = "Cut the model at these positions from 'pipeline inspect' (comma separated; or balanced:N on FLOPs), one stage per "
                + "worker in order, instead of the measured balanced split (which may cut elsewhere on every run); N cuts need --nodes N+1.",
        };
        var codec = new Option<string>("--codec")
        {
            Description = "Codec on every cut tensor between stages, named as pipeline fidelity --codec names it (int8, int4:percentile+zstd, "
                + "fp16, lz4, ...; not pca or pool2); int8 and int4 are calibrated first on frames of the source. exact: zero suppression only.",
            DefaultValueFactory = _ => Transfer.TransferSpec.Exact,
        };
        var fidelity = new Option<double?>("--fidelity")
        {
            Description = "Fidelity budget (above 0, at most 1): each hop gets the codec a frame spends least time on over its link among those "
                + "whose fidelity against the exact model, measured first on frames of the source, is at least this (e.g. 0.99); not with --codec.",
        };
        var firstHop = CommonOptions.FirstHop();
        var command = new Command("run", "Run the model as a pipeline on a local cluster (127.0.0.1): this process ingests, N worker "
            + "processes host the stages.")
        {
            nodes, model, frames, source, fps, input, threads, window, kill, add, soak, results, json, metricsPort, metricsAddress, dashboard,
            annotate, emulate, plan, chaos, chaosSeed, cuts, codec, fidelity, firstHop,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var modelPath = parse.GetValue(model) ?? BundledModel(DefaultModel);
            var rate = parse.GetValue(fps);
            if (!double.IsFinite(rate) || rate < 0 || (rate > 0 && rate < 0.01) || rate > 10_000 || parse.GetValue(frames) < 1)
            {
                throw new PipelineInputException("--fps must be 0 (as fast as the pipeline takes frames) or 0.01 to 10000, and --frames at least 1.");
            }

            if (parse.GetValue(window) is < 1)
            {
                throw new PipelineInputException($"--window {parse.GetValue(window)} lets no frame in flight; give at least 1.");
            }

            var planned = parse.GetValue(plan) switch
            {
                "planned" => true,
                "balanced" => false,
                var other => throw new PipelineInputException($"--plan takes planned or balanced, not '{other}'."),
            };
            if (planned && parse.GetValue(nodes) < 1)
            {
                throw new PipelineInputException($"--nodes must be at least 1, not {parse.GetValue(nodes)}.");
            }

            CheckChaos(parse.GetValue(chaos), parse.GetValue(chaosSeed), parse.GetValue(kill), parse.GetValue(add), parse.GetValue(soak));
            var transfer = CutCodecPlan.Parse(parse.GetValue(codec)!); // a bad name is one sentence before anything starts
            var budget = parse.GetValue(fidelity);
            if (budget is { } b)
            {
                CutCodecChoice.CheckBudget(b);
            }

            if (budget is not null && transfer.ChangesTheWire)
            {
                throw new PipelineInputException($"--fidelity lets each hop's codec be chosen and --codec {transfer.Text} fixes one for "
                    + $"all; give one of them.");
            }

            var hop = Transfer.FirstHop.Parse(parse.GetValue(firstHop));
            var emulation = parse.GetValue(emulate) is { } spec ? EmulationSpec.Parse(spec).RequireWorkers(parse.GetValue(nodes)) : null;
            var modelFile = OnnxModelFile.Load(modelPath); // a clear error before anything starts
            StagePlacement? fixedCuts = null;
            if (parse.GetValue(cuts) is { } cutText)
            {
                if (planned)
                {
                    throw new PipelineInputException("--cuts fixes where the model is cut and --plan planned lets the planner choose; "
                        + "give one of them.");
                }

                var analysis = ModelAnalysis.Analyze(modelFile, InputSizes.ParseOverrides(parse.GetValue(input) ?? []));
                var positions = CutModel.CutsOf(analysis, cutText, "--cuts");
                if (positions.Count + 1 != parse.GetValue(nodes))
                {
                    throw new PipelineInputException(
                        $"--cuts {cutText} makes {positions.Count + 1} stages, one per worker, so it needs --nodes "
                            + $"{positions.Count + 1}, not {parse.GetValue(nodes)}.");
                }

                fixedCuts = new StagePlacement(positions, [.. Enumerable.Range(0, positions.Count + 1)]);
            }

            var resultsPath = parse.GetValue(results);
            var quiet = parse.GetValue(json) || resultsPath == "-";
            var options = new LocalRunOptions
            {
                ModelPath = modelPath,
                InputSizes = InputSizes.ParseOverrides(parse.GetValue(input) ?? []),
                Workers = parse.GetValue(nodes),
                Frames = parse.GetValue(frames),
                FramesPerSecond = parse.GetValue(fps),
                IntraOpThreads = CommonOptions.CheckThreads(parse.GetValue(threads)),
                Window = parse.GetValue(window),
                KillWorkerAfterSeconds = parse.GetValue(kill),
                AddWorkerAfterSeconds = parse.GetValue(add),
                SoakKills = Math.Max(0, parse.GetValue(soak)),
                MetricsPort = parse.GetValue(metricsPort),
                MetricsAddress = parse.GetValue(metricsAddress) is { } address ? CheckedAddress(address) : null,
                ResultsPath = resultsPath,
                Annotate = parse.GetValue(annotate) is { } folder
                    ? (profile, inner) => new AnnotatingResultWriter(inner, profile, folder)
                    : null,
                Source = parse.GetValue(source)!,
                Progress = quiet ? null : line => context.Console.MarkupLine($"[grey]{Markup.Escape(line)}[/]"),
                LogFile = PrivateFiles.LogFile("run"),
                Emulation = emulation,
                ChaosMinutes = parse.GetValue(chaos),
                ChaosSeed = parse.GetValue(chaosSeed),
                Codec = transfer.Text,
                Fidelity = budget,
                FirstHop = hop.Text,
                Placement = fixedCuts,
            };
            PricedConfiguration? chosen = null;
            IReadOnlyList<string> chosenStages = [];
            if (planned)
            {
                var planning = DevicePlanning.MeasureAsync(new DevicePlanningOptions
                {
                    ModelPath = modelPath,
                    InputSizes = options.InputSizes,
                    Workers = options.Workers,
                    IntraOpThreads = options.IntraOpThreads,
                    Emulation = emulation,
                    Progress = options.Progress,
                }).GetAwaiter().GetResult();
                if (budget is { } fidelityBudget)
                {
                    if (options.Source == "synthetic" || !File.Exists(Runtime.DataPath.Preprocessing.ModelProfile.PathFor(modelPath)))
                    {
                        // Fidelity needs real frames and the model's profile; without them the hops are still chosen within the
                        // budget once the plan is made, but the planner cuts on exact bytes.
                        options.Progress?.Invoke("the planner cuts on exact bytes: weighing codecs at every cut needs a real source and "
                            + "the model's profile");
                    }
                    else
                    {
                        planning = PlannedCodecs.Measure(
                            planning, modelPath, parse.GetValue(input)
                                ?? [], options.Source, fidelityBudget, options.IntraOpThreads, options.Progress);
                    }
                }

                chosen = planning.Planned();
                foreach (var line in planning.DescribeHops(chosen))
                {
                    options.Progress?.Invoke($"planned {line}");
                }

                chosenStages = planning.Describe(chosen);
                options = options with { Placement = chosen.Placement };
                options.Progress?.Invoke($"planned: {string.Join("; ", chosenStages)}; predicted {chosen.PredictedFramesPerSecond:0.00} frames/s");
            }

            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                cancel.Cancel();
            };
            RunReport report;
            try
            {
                if (parse.GetValue(dashboard) && !quiet)
                {
                    RunReport? done = null;
                    context.Console.Live(new Spectre.Console.Text("starting the cluster...")).StartAsync(async live =>
                    {
                        done = await LocalRun.RunAsync(
                            options with
                            {
                                Progress = null,
                                OnSnapshot = snapshot =>
                                {
                                    live.UpdateTarget(MonitorView.Render(snapshot));
                                    live.Refresh();
                                },
                            },
                            cancel.Token);
                    }).GetAwaiter().GetResult();
                    report = done!;
                }
                else
                {
                    report = LocalRun.RunAsync(options, cancel.Token).GetAwaiter().GetResult();
                }
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or Akka.Actor.AskTimeoutException)
            {
                // The run failed on its own (the cluster lost its head, nothing answered): one sentence, the log has the rest.
                context.Error.WriteLine($"error: the run failed: {e.Message}");
                return 1;
            }

            if (chosen is not null)
            {
                report = report with
                {
                    PlannedStages = chosenStages,
                    PredictedFramesPerSecond = Math.Round(chosen.PredictedFramesPerSecond, 2),
                };
            }

            if (parse.GetValue(json))
            {
                context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(report, Json));
            }
            else
            {
                Render(context.Console, report);
                context.Console.MarkupLine($"[grey]cluster log: {Markup.Escape(options.LogFile)}[/]");
            }

            if (options.KillWorkerAfterSeconds is not null && report.InFlightAtKill is not > 0)
            {
                throw new PipelineInputException("No frame was in flight when the worker was killed, so the run shows nothing about "
                    + "recovery; raise --fps or --frames.");
            }

            return report.Clean ? 0 : 1;
        }));
        return command;
    }

    /// <summary>A soak's minutes in range, and no other fault injection beside it (the soak does its own kills and joins).</summary>
    private static void CheckChaos(double? minutes, int? seed, double? kill, double? add, int soakKills)
    {
        if (minutes is null)
        {
            if (seed is not null)
            {
                throw new PipelineInputException("--chaos-seed seeds a chaos soak; give --chaos MINUTES with it.");
            }

            return;
        }

        if (!double.IsFinite(minutes.Value) || minutes <= 0 || minutes > Harness.Chaos.ChaosRun.MaximumMinutes)
        {
            throw new PipelineInputException(
                $"--chaos takes minutes above 0 and at most {Harness.Chaos.ChaosRun.MaximumMinutes:0}, not "
                    + $"{minutes.Value.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (kill is not null || add is not null || soakKills > 0)
        {
            throw new PipelineInputException("--chaos kills, pauses, adds and removes workers itself; drop --kill-worker-after, "
                + "--add-worker-after and --soak-kills.");
        }
    }

    /// <summary>A model shipped beside the binary (copied from the repository's models/ folder).</summary>
    public static string BundledModel(string file)
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "models", file);
        return File.Exists(beside) ? beside : Path.Combine("models", file);
    }

    private static void Render(IAnsiConsole console, RunReport r)
    {
        var summary = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn("", c => c.RightAligned()).HideHeaders();
        void Row(string k, string v) => summary.AddRow(k, v);
        Row("model", Markup.Escape(r.Model));
        Row("codec on the cuts", Markup.Escape(r.Codec));
        Row("first hop (bytes per frame)",
            $"{Markup.Escape(r.FirstHop)} ({Format.Bytes(r.FirstHopBytesPerFrame)}; raw {Format.Bytes(r.FirstHopRawBytesPerFrame)})");
        Row("workers / stages", $"{r.Workers} / {r.Parts}");
        Row("frames in", r.FramesIn.ToString(CultureInfo.InvariantCulture));
        Row("results out", r.ResultsOut.ToString(CultureInfo.InvariantCulture));
        Row("lost", Color(r.Lost));
        Row("duplicated (delivered twice)", Color(r.Duplicated));
        Row("out of order", Color(r.OutOfOrder));
        Row("skipped (live source, pipeline full)", r.Skipped.ToString(CultureInfo.InvariantCulture));
        Row("failed", Color(r.Failed));
        Row("re-sent after deadline / replayed on a new plan", $"{r.Resent} / {r.Replayed}");
        Row("duplicate results dropped by the sink", r.DuplicatesDropped.ToString(CultureInfo.InvariantCulture));
        Row("throughput", $"{r.FramesPerSecond:0.00} frames/s");
        Row("latency p50 / p95 / p99", $"{r.LatencyP50Ms:0.0} / {r.LatencyP95Ms:0.0} / {r.LatencyP99Ms:0.0} ms");
        if (r.KilledNode is not null)
        {
            Row("killed (SIGKILL)", $"{r.KilledNode} with {r.InFlightAtKill} frame(s) in flight");
            Row("recovery: kill -> first result via the replacement", r.RecoveryToFirstResultMs is { } a ? $"{a:0} ms" : "-");
            Row("recovery: kill -> throughput back to steady", r.RecoveryToSteadyMs is { } b ? $"{b:0} ms" : "-");
        }

        if (r.SoakKills.Count > 0)
        {
            var recovered = r.SoakKills.Where(k => k.RecoveryMs is not null).Select(k => k.RecoveryMs!.Value).Order().ToList();
            Row("soak kills (SIGKILL, random worker, random time)",
                $"{r.SoakKills.Count}, {r.SoakKills.Count(k => k.InFlight > 0)} with frames in flight");
            Row("soak: recovery to a result via the new plan (min / median / max)", recovered.Count == 0 ? "-"
                : $"{recovered[0]:0} / {recovered[recovered.Count / 2]:0} / {recovered[^1]:0} ms");
        }

        if (r.AddedNode is not null)
        {
            Row("joined mid-stream", Markup.Escape(r.AddedNode));
        }

        console.Write(summary);
        var stages = new Table().Border(TableBorder.Simple)
            .AddColumn("stage").AddColumn("node").AddColumn("nodes")
            .AddColumn("frames", c => c.RightAligned()).AddColumn("compute ms p50", c => c.RightAligned())
            .AddColumn("in/frame", c => c.RightAligned()).AddColumn("out/frame", c => c.RightAligned()).AddColumn("busy", c => c.RightAligned());
        foreach (var s in r.Stages)
        {
            stages.AddRow(
                s.Index.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(s.Node),
                Markup.Escape(s.Layers.Split(' ')[0]),
                s.Frames.ToString(CultureInfo.InvariantCulture),
                s.ComputeMsP50.ToString("0.00", CultureInfo.InvariantCulture),
                Format.Bytes(s.BytesInPerFrame),
                Format.Bytes(s.BytesOutPerFrame),
                $"{s.BusyPercent:0.0} %");
        }

        console.Write(stages);
        if (r.Chaos is { } chaos)
        {
            RenderChaos(console, chaos);
        }

        if (r.HopCodecs.Count > 0)
        {
            var hops = new Table().Border(TableBorder.Simple)
                .AddColumn("split").AddColumn("hop", c => c.RightAligned()).AddColumn("codec").AddColumn("bytes/frame", c => c.RightAligned())
                .AddColumn("exact", c => c.RightAligned()).AddColumn("fidelity (hop / split)", c => c.RightAligned()).AddColumn("why");
            foreach (var h in r.HopCodecs)
            {
                hops.AddRow(
                    $"{h.Parts} parts",
                    h.Hop.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(h.Codec),
                    Format.Bytes(h.BytesPerFrame),
                    Format.Bytes(h.ExactBytesPerFrame),
                    string.Create(CultureInfo.InvariantCulture, $"{h.Fidelity:0.0000} / {h.SplitFidelity:0.0000}"),
                    Markup.Escape(h.Reason));
            }

            console.MarkupLine($"each hop's codec within the fidelity budget {r.FidelityBudget?.ToString(CultureInfo.InvariantCulture)} "
                + $"({Markup.Escape(r.FidelityMeasure ?? "")}):");
            console.Write(hops);
        }

        if (r.Emulation.Count > 0)
        {
            var emulated = new Table().Border(TableBorder.Simple)
                .AddColumn("emulated worker").AddColumn("node").AddColumn("cpu (cores)", c => c.RightAligned())
                .AddColumn("link", c => c.RightAligned()).AddColumn("latency (added by the application)", c => c.RightAligned());
            foreach (var e in r.Emulation)
            {
                emulated.AddRow(
                    Markup.Escape(e.Worker),
                    Markup.Escape(e.Node ?? e.Address),
                    e.Cpu is { } cpu ? cpu.ToString("0.###", CultureInfo.InvariantCulture) : "full",
                    e.LinkMbit is { } link ? $"{link.ToString("0.###", CultureInfo.InvariantCulture)} Mbit/s" : "unshaped",
                    e.LatencyMs > 0 ? $"{e.LatencyMs.ToString("0.###", CultureInfo.InvariantCulture)} ms" : "-");
            }

            console.Write(emulated);
        }

        foreach (var e in r.Events)
        {
            console.MarkupLine($"[grey]{Markup.Escape(e)}[/]");
        }
    }

    /// <summary>The metrics address as given, once it is known to be one (a bad one is one sentence before anything starts).</summary>
    private static string CheckedAddress(string address)
    {
        _ = MetricsEndpoint.ListenHost(address);
        return address;
    }

    private static void RenderChaos(IAnsiConsole console, Harness.Chaos.ChaosReport c)
    {
        var soak = new Table().Border(TableBorder.Rounded).Title("chaos soak").AddColumn("").AddColumn("", col => col.RightAligned()).HideHeaders();
        string N(long value) => value.ToString(CultureInfo.InvariantCulture);
        soak.AddRow("minutes / seed", $"{c.Minutes.ToString("0.##", CultureInfo.InvariantCulture)} / {N(c.Seed)}");
        soak.AddRow("kills (SIGKILL) / pauses (SIGSTOP, SIGCONT)", $"{N(c.Kills)} / {N(c.Pauses)}");
        soak.AddRow("restarts (SIGTERM, start) / joins / leaves", $"{N(c.Restarts)} / {N(c.Joins)} / {N(c.Leaves)}");
        soak.AddRow("exits nobody asked for (downed while paused), replaced", N(c.UnaskedExits));
        soak.AddRow("frames in / out", $"{N(c.FramesIn)} / {N(c.FramesOut)}");
        soak.AddRow("lost / duplicated / out of order", $"{Color(c.Lost)} / {Color(c.Duplicated)} / {Color(c.OutOfOrder)}");
        soak.AddRow("failed", Color(c.Failed));
        soak.AddRow("verdict", c.Clean ? "[green]clean[/]" : "[red]unclean[/]");
        console.Write(soak);
        var memory = new Table().Border(TableBorder.Simple).Title($"resident memory (VmRSS, every {ChaosRunSampleSeconds} s)")
            .AddColumn("process").AddColumn("node").AddColumn("pid", col => col.RightAligned()).AddColumn("samples", col => col.RightAligned())
            .AddColumn("first", col => col.RightAligned()).AddColumn("last", col => col.RightAligned()).AddColumn("max", col => col.RightAligned());
        foreach (var m in c.Memory)
        {
            memory.AddRow(
                Markup.Escape(m.Process),
                Markup.Escape(m.Node ?? "-"),
                N(m.Pid),
                N(m.Samples),
                Format.Bytes(m.FirstBytes),
                Format.Bytes(m.LastBytes),
                Format.Bytes(m.MaxBytes));
        }

        console.Write(memory);
    }

    private static readonly string ChaosRunSampleSeconds = Harness.Chaos.ChaosRun.SampleInterval.TotalSeconds.ToString("0",
        CultureInfo.InvariantCulture);

    private static string Color(long value) => value == 0 ? "[green]0[/]" : $"[red]{value}[/]";
}
