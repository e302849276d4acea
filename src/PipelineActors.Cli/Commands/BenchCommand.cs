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

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline bench</c>: the pipeline against the bare loop and concurrent replicas, measured in one run.</summary>
internal static class BenchCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        IncludeFields = true };

    public static Command Create(CliContext context)
    {
        var model = new Option<string?>("--model") { Description = $"ONNX model (default: the bundled {RunCommand.DefaultModel})." };
        var nodes = new Option<string>("--nodes") { Description = "Worker counts to measure, comma separated (e.g. 1,2).",
            DefaultValueFactory = _ => "1,2" };
        var threads = new Option<int>("--threads-per-node") { Description = "ONNX Runtime intra-op threads (and cores) per worker and "
            + "per bare loop.", DefaultValueFactory = _ => 1 };
        var frames = new Option<long>("--frames") { Description = "Frames per pipeline run.", DefaultValueFactory = _ => 200 };
        var seconds = new Option<double>("--loop-seconds") { Description = "Seconds each bare loop and replica set runs.",
            DefaultValueFactory = _ => 15 };
        var input = CommonOptions.Input();
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object." };
        var report = new Option<string?>("--report") { Description = "Write PNG plots and a Markdown summary to this folder (adds a run "
            + "with a worker kill)." };
        var emulate = CommonOptions.Emulate();
        emulate.Description += " In bench the pipeline runs are emulated (--nodes defaults to the spec's count); the bare loop and replicas are not.";
        var objective = new Option<string?>("--objective")
        {
            Description = "With --emulate: what the planned row minimises, throughput (the default) or latency (then every run keeps one "
                + "frame in flight and each device alone is a row too).",
        };
        var codecs = new Option<string?>("--codecs")
        {
            Description = "With --emulate: codecs the planned configuration and the equal split run with, one row each, comma separated, as "
                + "run --codec takes them (e.g. exact,int8+zstd,pool2; default exact); the other configurations run exact.",
        };
        var command = new Command(
            "bench",
            "Measure pipeline throughput against the bare inference loop and N concurrent replicas, and each node's CPU per frame against "
                + "its stage run alone, in one run, with every node pinned.")
        {
            model, nodes, threads, frames, seconds, input, json, report, emulate, objective, codecs,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var modelPath = parse.GetValue(model) ?? RunCommand.BundledModel(RunCommand.DefaultModel);
            OnnxModelFile.Load(modelPath);
            var counts = new List<int>();
            foreach (var part in parse.GetValue(nodes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                counts.Add(int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1
                    ? n
                    : throw new PipelineInputException($"--nodes takes positive whole numbers separated by commas; '{part}' is not one."));
            }

            var emulation = parse.GetValue(emulate) is { } spec ? EmulationSpec.Parse(spec) : null;
            var goal = PlanCommand.Objective(parse.GetValue(objective), null);
            if (parse.GetValue(objective) is not null && emulation is null)
            {
                throw new PipelineInputException("--objective chooses the planned row of bench --emulate; add --emulate SPEC (e.g. "
                    + "\"cpu=0.25;cpu=1.0,link=20\").");
            }
            if (parse.GetValue(codecs) is not null && emulation is null)
            {
                throw new PipelineInputException(
                    "--codecs compares codecs on the planned row of bench --emulate; add --emulate SPEC (e.g. \"cpu=0.25;cpu=1.0,link=20\").");
            }

            var compared = Codecs(parse.GetValue(codecs));

            if (emulation is not null)
            {
                // The spec names each worker, so it sets the worker count; a --nodes given as well must agree with it.
                if (parse.GetResult(nodes) is null or { Implicit: true })
                {
                    counts = [emulation.Workers.Count];
                }

                foreach (var n in counts)
                {
                    emulation.RequireWorkers(n);
                }
            }

            var quiet = parse.GetValue(json);
            var options = new BenchOptions
            {
                ModelPath = modelPath,
                InputSizes = InputSizes.ParseOverrides(parse.GetValue(input) ?? []),
                Nodes = counts,
                ThreadsPerNode = CommonOptions.CheckThreads(parse.GetValue(threads)),
                Frames = Math.Max(20, parse.GetValue(frames)),
                LoopSeconds = Math.Max(2, parse.GetValue(seconds)),
                Progress = quiet ? null : line => context.Console.MarkupLine($"[grey]{Markup.Escape(line)}[/]"),
                LogFile = PrivateFiles.LogFile("bench"),
                WithKillRun = parse.GetValue(report) is not null,
                Emulation = emulation,
                Objective = goal,
                Codecs = compared,
            };
            var result = Bench.RunAsync(options).GetAwaiter().GetResult();
            if (parse.GetValue(report) is { } folder)
            {
                BenchReportWriter.Write(result, folder);
                if (!quiet)
                {
                    context.Console.MarkupLine($"wrote the report to {Markup.Escape(folder)}");
                }
            }

            if (quiet)
            {
                context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(result, Json));
                return 0;
            }

            Render(context.Console, result);
            return 0;
        }));
        return command;
    }

    /// <summary>The codecs of <c>--codecs</c>, each checked as <c>run --codec</c> checks it, in order and without repeats.</summary>
    private static List<string> Codecs(string? text)
    {
        if (text is null)
        {
            return [Transfer.TransferSpec.Exact];
        }

        var codecs = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(c => Runtime.ControlPath.Planning.CutCodecPlan.Parse(c).Text).Distinct(StringComparer.Ordinal).ToList();
        return codecs.Count > 0
            ? codecs
            : throw new PipelineInputException("--codecs names no codec; give some, comma separated (e.g. exact,int8+zstd,pool2).");
    }

    /// <summary>A node's overhead as a signed percentage, <c>-</c> where it hosted no stage.</summary>
    internal static string Percent(double? overhead) =>
        overhead is { } p ? p.ToString("+0.0 '%';-0.0 '%';0.0 '%'", CultureInfo.InvariantCulture) : "-";

    internal static void Render(IAnsiConsole console, BenchReport r)
    {
        console.MarkupLine($"[bold]{Markup.Escape(r.Model)}[/] on {Markup.Escape(r.Machine)}");
        console.MarkupLine($"[grey]method: {Markup.Escape(r.Method)}[/]");
        foreach (var e in r.Emulation)
        {
            var link = e.LinkMbit is { } mbit ? $"{mbit.ToString(CultureInfo.InvariantCulture)} Mbit/s" : "unshaped";
            var cpu = e.Cpu is { } cores ? cores.ToString(CultureInfo.InvariantCulture) : "full";
            var latency = e.LatencyMs.ToString(CultureInfo.InvariantCulture);
            console.MarkupLine($"emulated {Markup.Escape(e.Worker)}: cpu {cpu}, link {link}, latency {latency} ms (added by the application)");
        }

        foreach (var d in r.DeviceSpeeds)
        {
            console.MarkupLine($"calibrated worker-{d.Worker}: {d.WholeModelMs:0.0} ms per frame for the whole model ({d.Frames} frames)");
        }

        foreach (var p in r.Plans)
        {
            console.MarkupLine(
                $"{Markup.Escape(p.Configuration)}: {Markup.Escape(string.Join("; ", p.Stages))}; bottleneck {Markup.Escape(p.Bottleneck)}");
        }

        console.MarkupLine($"bare loop: {r.BareLoopFps:0.00} frames/s (p50 {r.BareLoopP50Ms:0.0} ms, {Format.Bytes(r.BareLoopRssBytes)} "
            + $"resident); again at the end: {r.BareLoopFpsAfter:0.00} frames/s");
        var predicted = r.Rows.Any(row => row.PredictedFramesPerSecond is not null);
        var table = new Table().Border(TableBorder.Rounded).AddColumn("configuration").AddColumn("codec")
            .AddColumn("frames/s", c => c.RightAligned());
        if (predicted)
        {
            table.AddColumn("predicted frames/s", c => c.RightAligned()).AddColumn("measured / predicted", c => c.RightAligned());
        }

        table.AddColumn("x bare loop", c => c.RightAligned())
            .AddColumn("efficiency", c => c.RightAligned()).AddColumn("vs N replicas", c => c.RightAligned())
            .AddColumn("p50 ms", c => c.RightAligned()).AddColumn("bytes/frame per link").AddColumn("CPU s/frame per node")
            .AddColumn("bare stage CPU ms/frame per node").AddColumn("overhead per node")
            .AddColumn("memory per node").AddColumn("lost", c => c.RightAligned());
        foreach (var row in r.Rows)
        {
            var cells = new List<string> { row.Configuration, row.Codec, row.FramesPerSecond.ToString("0.00", CultureInfo.InvariantCulture) };
            if (predicted)
            {
                cells.Add(row.PredictedFramesPerSecond?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-");
                cells.Add(row.PredictedFramesPerSecond is > 0 and var p
                    ? (row.FramesPerSecond / p).ToString("0.00", CultureInfo.InvariantCulture)
                    : "-");
            }

            table.AddRow([
                .. cells,
                row.SpeedupOverBareLoop.ToString("0.00x", CultureInfo.InvariantCulture),
                $"{row.ScalingEfficiency * 100:0.0} %",
                row.VersusConcurrentReplicas is { } v ? $"{v * 100:0.0} %" : "-",
                row.LatencyP50Ms.ToString("0.0", CultureInfo.InvariantCulture),
                string.Join(", ", row.BytesPerFrameOnLinks.Select(Format.Bytes)),
                string.Join(", ", row.CpuSecondsPerFrameOnNodes.Select(c => c.ToString("0.0000",
                    CultureInfo.InvariantCulture))) + $" (+ingest {row.HeadCpuSecondsPerFrame:0.0000})",
                string.Join(", ", row.NodeOverheads.Select(o => o.StageBareCpuMsPerFrame?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-")),
                string.Join(", ", row.NodeOverheads.Select(o => Percent(o.OverheadPercent))),
                string.Join(", ", row.RssBytesPerNode.Select(Format.Bytes)),
                row.Lost.ToString(CultureInfo.InvariantCulture),
            ]);
        }

        foreach (var (n, fps, rss) in r.Replicas)
        {
            table.AddRow(
                $"{n} replicas", Transfer.TransferSpec.Exact, fps.ToString("0.00", CultureInfo.InvariantCulture),
                (fps / r.BareLoopFps).ToString("0.00x", CultureInfo.InvariantCulture), $"{fps / r.BareLoopFps / n * 100:0.0} %", "100.0 %",
                "-", "-", "-", "-", "-", Format.Bytes(rss), "-");
        }

        console.Write(table);
        var chart = new BarChart().Width(60).Label("frames/s");
        chart.AddItem("bare loop", Math.Round(r.BareLoopFps, 1), Color.Grey);
        foreach (var row in r.Rows)
        {
            var label = row.Codec == Transfer.TransferSpec.Exact ? row.Configuration : $"{row.Configuration} {row.Codec}";
            chart.AddItem(label, Math.Round(row.FramesPerSecond, 1), Color.Green);
        }

        foreach (var (n, fps, _) in r.Replicas)
        {
            chart.AddItem($"{n} replicas", Math.Round(fps, 1), Color.Blue);
        }

        console.Write(chart);
    }
}
