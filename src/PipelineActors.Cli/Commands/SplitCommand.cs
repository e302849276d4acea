using System.CommandLine;
using System.Globalization;
using Google.Protobuf;
using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Stages;
using Spectre.Console;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline split</c>: write one standalone ONNX model per stage plus <c>manifest.json</c>.</summary>
internal static class SplitCommand
{
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var input = CommonOptions.Input();
        var threads = CommonOptions.Threads();
        var parts = new Option<int?>("--parts") { Description = "Number of stages; the balancer picks the cuts that minimise the slowest stage." };
        var cuts = new Option<string?>("--cuts") { Description = "Explicit cut positions from 'pipeline inspect', comma separated (e.g. "
            + "40,95,140)." };
        var output = new Option<string>("--out") { Description = "Folder for stage-NN.onnx and manifest.json.", Required = true };
        var measure = new Option<bool>("--measure") { Description = "Balance on latency measured in ONNX Runtime instead of FLOPs, and "
            + "time each stage." };
        var profile = new Option<string?>("--profile") { Description = "Balance on a profile saved by 'pipeline profile --out'." };
        var runs = new Option<int>("--runs") { Description = "Timed runs per segment with --measure.", DefaultValueFactory = _ => 10 };
        var verify = new Option<bool>("--verify") { Description = "Run the whole model and the chained stages on the same input and "
            + "report the difference." };
        var force = new Option<bool>("--force") { Description = "Replace the --out folder if it exists." };
        var int8 = new Option<bool>("--int8")
        {
            Description = "Write each stage as int8 (QDQ), calibrated on --source frames run through the float stages before it.",
        };
        var source = new Option<string[]>("--source")
        {
            Description = $"With --int8: frames to calibrate on ({Runtime.DataPath.Sources.SourceSpec.Kinds}); "
                + "the model's profile preprocesses them.",
        };
        var frames = new Option<int>("--frames") { Description = "With --int8: frames to calibrate on.", DefaultValueFactory = _ => 16 };
        var command = new Command("split", "Cut a model into pipeline stages: one standalone ONNX model per stage and a manifest.")
        {
            model, parts, cuts, output, input, measure, profile, threads, runs, verify, force, int8, source, frames,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var partCount = parse.GetValue(parts);
            var cutList = parse.GetValue(cuts);
            if (partCount is null == cutList is null)
            {
                throw new PipelineInputException("Give either --parts N or --cuts A,B,... (one of them, not both).");
            }

            var threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));
            var sources = parse.GetValue(source) ?? [];
            var quantize = parse.GetValue(int8);
            if (quantize != sources.Length > 0)
            {
                throw new PipelineInputException(quantize
                    ? "--int8 needs --source SPEC: the frames to calibrate the int8 stages on."
                    : "--source only calibrates --int8 stages; add --int8 or leave --source out.");
            }

            var calibrationCount = CutModel.CheckFrames(parse.GetValue(frames), "--frames");
            var modelPath = parse.GetValue(model)!;
            var analysis = CommonOptions.Analyze(modelPath, parse.GetValue(input));
            var profilePath = parse.GetValue(profile);
            LatencyProfile? latency = null;
            if (profilePath is not null)
            {
                latency = LatencyProfile.Load(profilePath, analysis);
            }
            else if (parse.GetValue(measure) && partCount is not null)
            {
                latency = ProfileCommand.MeasureWithProgress(context.Console, analysis, threadCount, parse.GetValue(runs));
            }

            IReadOnlyList<int> positions = cutList is not null
                ? ParseCuts(cutList)
                : latency is not null
                    ? Balancer.Balance(analysis, partCount!.Value, (from, to) => latency.CostMs(from, to), latency.Boundaries)
                    : Balancer.Balance(analysis, partCount!.Value);
            var floatStages = StageExtractor.Extract(analysis, positions);
            var (stages, note) = quantize
                ? Int8Stages(modelPath, parse.GetValue(input), floatStages, sources, calibrationCount, threadCount)
                : ((IReadOnlyList<StageModel>)floatStages, "");

            IReadOnlyList<double>? measured = null;
            if (parse.GetValue(measure))
            {
                measured = stages.Select(s => LatencyProfiler.Time(
                    s.Model.ToByteArray(), s.Inputs.Select((t, k) => HostTensor.Deterministic(t, 3
                        + k)).ToList(), threadCount, parse.GetValue(runs)).MedianMs).ToList();
            }

            // Verify before writing anything: a split that does not chain leaves no folder behind.
            string? verdict = null;
            if (parse.GetValue(verify))
            {
                verdict = Verify(analysis, floatStages);
            }

            var basis = latency is not null ? $"measured ({latency.IntraOpThreads} thread(s))" : cutList is not null ? "given cuts" : "flops";
            var manifest = SplitWriter.Write(analysis, stages, parse.GetValue(output)!, Path.GetFileName(modelPath), basis, measured,
                parse.GetValue(force));
            Render(context.Console, manifest, parse.GetValue(output)!);
            if (verdict is not null)
            {
                context.Console.MarkupLine(Markup.Escape(verdict) + (quantize ? " (checked on the float stages, before int8)" : ""));
            }

            if (note.Length > 0)
            {
                context.Console.MarkupLine(Markup.Escape(note));
            }

            return 0;
        }));
        return command;
    }

    /// <summary>
    /// Runs the chain against the whole model. Float32 boundaries must match to 1e-5; a boundary
    /// carrying float16 is rounded to float16 where ONNX Runtime's whole-model run keeps float32
    /// between ops, so there the bound is 1e-2.
    /// </summary>
    private static string Verify(ModelAnalysis analysis, IReadOnlyList<StageModel> stages)
    {
        var plainVerifier = new SplitVerifier(analysis);
        var optimizedVerifier = new SplitVerifier(analysis, optimize: true);
        var plain = plainVerifier.Check(stages);
        var optimized = optimizedVerifier.Check(stages);
        var wholeDrift = analysis.Graph.OutputNames.Max(o => HostTensor.RelativeDifference(plainVerifier.Expected[o], optimizedVerifier.Expected[o]));
        var halfPrecision = stages.Skip(1).SelectMany(s => analysis.CutAt(s.From).Cargo)
            .Any(t => t.ElementType is Onnx.Proto.TensorProto.Types.DataType.Float16 or Onnx.Proto.TensorProto.Types.DataType.Bfloat16);
        var bound = halfPrecision ? 1e-2 : 1e-5;
        if (!(plain <= bound))
        {
            throw new PipelineInputException($"The chained stages differ from the whole model by {plain:E2} (relative, bound "
                + $"{bound:E0}); nothing was written. Please report this model.");
        }

        var boundaries = halfPrecision ? ", float16 boundaries" : string.Empty;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"verify: chained stages vs the whole model, max |difference| / max |output|: {plain:E2} with ONNX Runtime optimizations off "
            + $"(bound {bound:E0}{boundaries}), {optimized:E2} with them on "
            + $"(the whole model alone moves by {wholeDrift:E2} between the two settings)");
    }

    /// <summary>
    /// The stages in int8 QDQ form, each calibrated on real frames run through the float stages before it; a stage with
    /// no Conv, MatMul or Gemm stays float. Names are untouched, so the stages chain as before.
    /// </summary>
    private static (IReadOnlyList<StageModel> Stages, string Note) Int8Stages(
        string modelPath, string[]? inputs, IReadOnlyList<StageModel> stages, string[] sources, int frames, int threads)
    {
        var subject = CutModel.Load(modelPath, inputs);
        var calibration = subject.Frames(sources, frames);
        var quantized = Transfer.Quantization.ModelQuantizer.QuantizeStages(
            [.. stages.Select(s => s.Model)], calibration, Path.GetFileName(modelPath), threads: threads);
        var result = stages.Select((s, i) => quantized[i] is { } q ? s with { Model = q.Model } : s).ToList();
        var floatStages = quantized.Select((q, i) => (q, i)).Where(p => p.q is null)
            .Select(p => p.i.ToString(CultureInfo.InvariantCulture)).ToList();
        var note = string.Create(CultureInfo.InvariantCulture,
            $"int8: {quantized.Count(q => q is not null)} of {stages.Count} stages quantised (QDQ, calibrated on {calibration.Count} frames of ")
            + $"{string.Join(" then ", sources)})"
            + (floatStages.Count > 0 ? $"; stage {string.Join(", ", floatStages)} has nothing to quantise and stays float" : "");
        return (result, note);
    }

    private static List<int> ParseCuts(string text)
    {
        var result = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var position))
            {
                throw new PipelineInputException($"--cuts takes whole numbers separated by commas; '{part}' is not one.");
            }

            result.Add(position);
        }

        return result.Count > 0 ? result : throw new PipelineInputException("--cuts names no cut positions.");
    }

    private static void Render(IAnsiConsole console, SplitManifest manifest, string folder)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("stage").AddColumn("file").AddColumn("nodes").AddColumn("first .. last node")
            .AddColumn("FLOPs", c => c.RightAligned()).AddColumn("share", c => c.RightAligned())
            .AddColumn("params", c => c.RightAligned()).AddColumn("in/frame", c => c.RightAligned())
            .AddColumn("out/frame", c => c.RightAligned());
        var measured = manifest.Stages.Any(s => s.MeasuredMs is not null);
        if (measured)
        {
            table.AddColumn("ms", c => c.RightAligned());
        }

        foreach (var s in manifest.Stages)
        {
            var row = new List<string>
            {
                s.Index.ToString(CultureInfo.InvariantCulture),
                s.File,
                $"{s.FirstNode}..{s.EndNode - 1}",
                Markup.Escape($"{s.FirstNodeName} .. {s.LastNodeName}"),
                Format.Count(s.Flops),
                Format.Percent(s.FlopsShare),
                Format.Bytes(s.ParameterBytes),
                Format.Bytes(s.Index == 0 ? s.Inputs.Sum(t => t.Bytes) : manifest.Boundaries[s.Index - 1].Bytes),
                Format.Bytes(s.Index == manifest.Stages.Count - 1 ? s.Outputs.Sum(t => t.Bytes) : manifest.Boundaries[s.Index].Bytes),
            };
            if (measured)
            {
                row.Add(s.MeasuredMs?.ToString("0.00", CultureInfo.InvariantCulture) ?? "-");
            }

            table.AddRow(row.ToArray());
        }

        console.Write(table);
        console.MarkupLine($"wrote {manifest.Stages.Count} stages and {SplitManifest.FileName} to {Markup.Escape(folder)} (balanced on "
            + $"{Markup.Escape(manifest.CostBasis)})");
    }
}
