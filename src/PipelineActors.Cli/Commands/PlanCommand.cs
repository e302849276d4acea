using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PipelineActors.Harness;
using PipelineActors.Harness.Emulation;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Graph;
using PipelineActors.Planning;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline plan</c>: the best plan for a what-if table of blocks, devices and links, under the cost model.</summary>
internal static class PlanCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create(CliContext context)
    {
        var table = new Option<string>("--table")
        {
            Description = "JSON table: inputBytes, blocks (outputBytes, ms per device type), devices (one source), links; " +
                "optional defaultLink, sink.",
        };
        var model = new Option<string?>("--model")
        {
            Description = "Plan this ONNX model on the workers of --emulate instead of a table: its per-node times measured here, each "
                + "worker's speed by a calibration loop inside its emulated device, links from the spec (the head sends frames, takes results).",
        };
        var emulate = CommonOptions.Emulate();
        var input = CommonOptions.Input();
        var objective = new Option<string?>("--objective")
        {
            Description = "throughput (least period; the default) or latency (least one-frame latency; the default with --min-fps).",
        };
        var minFps = new Option<double?>("--min-fps") { Description = "Least latency among plans of at least this many frames/s." };
        var maxReplicas = new Option<int>("--max-replicas")
        {
            Description = "Devices the last stage may be replicated on (frames go to whichever has credit); 1 for none.",
            DefaultValueFactory = _ => 1,
        };
        var json = new Option<bool>("--json") { Description = "Print the plan as one JSON object." };
        var fidelity = new Option<double?>("--fidelity")
        {
            Description = "Fidelity budget (above 0, at most 1): a hop may carry a block's output with any of its table codecs whose fidelity "
                + "is at least this, the one a frame spends least time on; overrides the table's fidelity.",
        };
        var command = new Command("plan", "Choose devices, their order, block ranges and replicas for a table of measured blocks, devices and links.")
        {
            table, model, emulate, input, objective, minFps, maxReplicas, json, fidelity,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var request = new PlanRequest(
                Objective(parse.GetValue(objective), parse.GetValue(minFps)),
                parse.GetValue(minFps),
                parse.GetValue(maxReplicas));
            var problem = (parse.GetValue(table), parse.GetValue(model)) switch
            {
                ({ } path, null) => PlanTable.Read(path),
                (null, { } modelPath) =>
                    Measured(modelPath, parse.GetValue(emulate), parse.GetValue(input) ?? [], parse.GetValue(json) ? null : context),
                (null, null) => throw new PipelineInputException("Give --table FILE (a what-if table) or --model M with --emulate SPEC."),
                _ => throw new PipelineInputException("Give --table or --model, not both: a table already lists the blocks."),
            };
            if (parse.GetValue(fidelity) is { } budget)
            {
                problem = problem.WithFidelity(Runtime.ControlPath.Planning.CutCodecChoice.CheckBudget(budget));
            }

            var result = Planner.Plan(problem, request);
            if (parse.GetValue(json))
            {
                context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(ToJson(problem, request, result), Json));
                return 0;
            }

            Render(context.Console, problem, request, result);
            return 0;
        }));
        return command;
    }

    /// <summary>The problem for a real model on emulated workers, measured here (as <c>bench --emulate</c> measures it).</summary>
    private static PlanProblem Measured(string modelPath, string? spec, string[] input, CliContext? progress)
    {
        if (spec is null)
        {
            throw new PipelineInputException(
                "--model plans on emulated workers: add --emulate SPEC, one entry per worker (e.g. \"cpu=1.0;cpu=0.4\").");
        }

        OnnxModelFile.Load(modelPath);
        var emulation = EmulationSpec.Parse(spec);
        var planning = DevicePlanning.MeasureAsync(new DevicePlanningOptions
        {
            ModelPath = modelPath,
            InputSizes = InputSizes.ParseOverrides(input),
            Workers = emulation.Workers.Count,
            Emulation = emulation,
            Progress = progress is null ? null : line => progress.Console.MarkupLine($"[grey]{Markup.Escape(line)}[/]"),
        }).GetAwaiter().GetResult();
        return planning.Problem;
    }

    /// <summary><c>--objective</c>'s value: throughput or latency; with neither given, latency when a frames/s floor is.</summary>
    internal static PlanObjective Objective(string? text, double? minFps) => text switch
    {
        null => minFps is null ? PlanObjective.Throughput : PlanObjective.Latency,
        "throughput" => PlanObjective.Throughput,
        "latency" => PlanObjective.Latency,
        _ => throw new PipelineInputException($"--objective must be throughput or latency, not '{text}'."),
    };

    private static void Render(IAnsiConsole console, PlanProblem problem, PlanRequest request, PlanResult result)
    {
        var figures = result.Figures;
        var source = problem.Devices[problem.SourceIndex].Name;
        var results = problem.Sink is null ? "results stay on the last stage's device" : $"results go to {problem.Sink}";
        console.MarkupLine($"[bold]{Markup.Escape(problem.Model ?? "model")}[/]: {problem.BlockCount} blocks, {problem.DeviceCount} devices, " +
            $"frames start on {Markup.Escape(source)}, {Markup.Escape(results)}");
        console.MarkupLine(Markup.Escape(string.Create(
            CultureInfo.InvariantCulture,
            $"objective {Describe(request)}; {result.Method}; planned in {result.Elapsed.TotalMilliseconds:0.0} ms")));

        var grid = new Table().Border(TableBorder.Rounded)
            .AddColumn("stage", c => c.RightAligned())
            .AddColumn("device(s)")
            .AddColumn("blocks")
            .AddColumn("compute ms", c => c.RightAligned())
            .AddColumn("replicas", c => c.RightAligned())
            .AddColumn("hop to")
            .AddColumn("hop bytes", c => c.RightAligned())
            .AddColumn("hop ms", c => c.RightAligned())
            .AddColumn("link busy ms", c => c.RightAligned());
        foreach (var stage in figures.Stages.Select((s, i) => (s, i)))
        {
            var hop = figures.Hops.FirstOrDefault(h => h.FromStage == stage.i);
            var to = hop is null ? "-" : hop.ToStage < 0 ? $"sink {problem.Sink}" : Devices(problem, figures.Stages[hop.ToStage].Stage);
            grid.AddRow(
                stage.i.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(Devices(problem, stage.s.Stage)),
                Markup.Escape(Blocks(problem, stage.s.Stage)),
                Ms(stage.s.ComputeMs) + (stage.s.Stage.IsReplicated ? $" ({string.Join(" / ", stage.s.ReplicaMs.Select(Ms))})" : ""),
                stage.s.Stage.Devices.Count.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(to),
                hop is null ? "-" : HopBytes(hop),
                hop is null ? "-" : Ms(hop.HopMs),
                hop is null ? "-" : Ms(hop.OccupancyMs));
        }

        console.Write(grid);
        console.MarkupLine(Markup.Escape(string.Create(
            CultureInfo.InvariantCulture,
            $"period {Ms(figures.PeriodMs)} ms ({Fps(figures)} frames/s), latency {Ms(figures.LatencyMs)} ms; " +
            $"bottleneck: {figures.Bottleneck.Description}")));
        var ratio = double.IsNaN(result.BoundRatio)
            ? ""
            : string.Create(CultureInfo.InvariantCulture, $"; the plan's period is {result.BoundRatio:0.00}x it");
        console.MarkupLine(Markup.Escape(string.Create(
            CultureInfo.InvariantCulture,
            $"bound: compute alone spread over all {problem.DeviceCount} devices by speed, {Ms(result.BoundPeriodMs)} ms a frame{ratio}")));
    }

    /// <summary>A hop's bytes: exact, or what its codec sends and the codec's name.</summary>
    private static string HopBytes(HopFigures hop)
    {
        var coded = hop.Links.Where(l => l.Codec != "exact").ToList();
        return coded.Count == 0
            ? Format.Bytes(hop.Bytes)
            : $"{Format.Bytes(coded.Max(l => l.Bytes))} {string.Join(",", coded.Select(l => l.Codec).Distinct())} ({Format.Bytes(hop.Bytes)} exact)";
    }

    private static object ToJson(PlanProblem problem, PlanRequest request, PlanResult result)
    {
        var figures = result.Figures;
        return new
        {
            model = problem.Model,
            objective = Describe(request),
            minFps = request.MinFps,
            maxReplicas = request.MaxReplicas,
            exact = result.Exact,
            method = result.Method,
            planningMs = Math.Round(result.Elapsed.TotalMilliseconds, 3),
            source = problem.Devices[problem.SourceIndex].Name,
            sink = problem.Sink,
            sourceSendsFrame = figures.Plan.Stages[0].BlockCount == 0,
            periodMs = figures.PeriodMs,
            framesPerSecond = figures.PeriodMs > 0 ? figures.FramesPerSecond : (double?)null,
            latencyMs = figures.LatencyMs,
            bottleneck = figures.Bottleneck.Description,
            boundPeriodMs = result.BoundPeriodMs,
            boundRatio = double.IsNaN(result.BoundRatio) ? (double?)null : result.BoundRatio,

            // Stages that compute; a source that only sends the frame shows as sourceSendsFrame and the first hop.
            stages = figures.Stages.Where(s => s.Stage.BlockCount > 0).Select(s => new
            {
                device = Devices(problem, s.Stage),
                devices = s.Stage.IsReplicated ? s.Stage.Devices.Select(d => problem.Devices[d].Name).ToList() : null,
                firstBlock = s.Stage.FirstBlock,
                lastBlock = s.Stage.EndBlock - 1,
                firstBlockName = problem.Blocks[s.Stage.FirstBlock].Name,
                lastBlockName = problem.Blocks[s.Stage.EndBlock - 1].Name,
                computeMs = s.ComputeMs,
                replicas = s.Stage.Devices.Count,
                replicaMs = s.Stage.IsReplicated ? s.ReplicaMs : null,
                shares = s.Stage.IsReplicated ? s.Shares : null,
            }),
            hops = figures.Hops.Select(h => new
            {
                from = Devices(problem, figures.Stages[h.FromStage].Stage),
                to = h.ToStage < 0 ? problem.Sink : Devices(problem, figures.Stages[h.ToStage].Stage),
                toSink = h.ToStage < 0,
                bytes = h.Bytes,
                codec = string.Join(",", h.Links.Select(l => l.Codec).Distinct()),
                codedBytes = h.Links.Count == 0 ? h.Bytes : h.Links.Max(l => l.Bytes),
                hopMs = h.HopMs,
                occupancyMs = h.OccupancyMs,
                links = h.Links.Select(l => new
                {
                    from = problem.Devices[l.FromDevice].Name,
                    to = problem.Devices[l.ToDevice].Name,
                    share = l.Share,
                    codec = l.Codec,
                    bytes = l.Bytes,
                    hopMs = l.HopMs,
                    occupancyMs = l.OccupancyMs,
                }),
            }),
        };
    }

    private static string Describe(PlanRequest request) => request.Objective switch
    {
        PlanObjective.Latency when request.MinFps is { } fps => string.Create(CultureInfo.InvariantCulture, $"latency at >= {fps:0.###} frames/s"),
        PlanObjective.Latency => "latency",
        _ when request.MinFps is { } fps => string.Create(CultureInfo.InvariantCulture, $"throughput at >= {fps:0.###} frames/s"),
        _ => "throughput",
    };

    private static string Devices(PlanProblem problem, PlanStage stage) => string.Join("+", stage.Devices.Select(d => problem.Devices[d].Name));

    private static string Blocks(PlanProblem problem, PlanStage stage) => stage.BlockCount switch
    {
        0 => "none (sends the frame)",
        1 => $"{problem.Blocks[stage.FirstBlock].Name} ({stage.FirstBlock})",
        _ => $"{problem.Blocks[stage.FirstBlock].Name}..{problem.Blocks[stage.EndBlock - 1].Name} ({stage.FirstBlock}-{stage.EndBlock - 1})",
    };

    private static string Ms(double ms) => ms.ToString("0.###", CultureInfo.InvariantCulture);

    private static string Fps(PlanFigures figures) =>
        figures.PeriodMs > 0 ? figures.FramesPerSecond.ToString("0.##", CultureInfo.InvariantCulture) : "unbounded";
}
