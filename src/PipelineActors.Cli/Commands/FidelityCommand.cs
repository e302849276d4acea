using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Transfer;
using PipelineActors.Transfer.Calibration;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary>One codec's row in <c>pipeline fidelity</c>: wire bytes, codec time and agreement with the exact whole model.</summary>
public sealed record FidelityResult(
    string Model,
    string Codec,
    IReadOnlyList<int> Cuts,
    int Frames,
    int CalibrationFrames,
    double RawBytesPerFrame,
    double BytesPerFrame,
    double CompressionRatio,
    double EncodeMs,
    double DecodeMs,
    double Fidelity,
    string FidelityMeasure,
    double RelativeL2,
    double MaxRelativeL2,
    double Top1Agreement,
    TaskAgreement? Task,
    IReadOnlyList<string> Notes,
    string Method);

/// <summary>
/// <c>pipeline fidelity</c>: the same real frames through the exact whole model and through the model split at the cuts
/// with a codec on every hop, side by side.
/// </summary>
internal static class FidelityCommand
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static Command Create(CliContext context)
    {
        var model = CommonOptions.ProfiledModel();
        var source = CommonOptions.FrameSources("Frames to evaluate on");
        var frames = CommonOptions.Frames("Frames evaluated.", 32);
        var cut = new Option<string>("--cut")
        {
            Description = "Cut positions from 'pipeline inspect' (comma separated), or balanced:N for the cuts of the balanced N-part split.",
            Required = true,
        };
        var codec = new Option<string[]>("--codec")
        {
            Description = $"Codec on every hop: {TransferSpec.Choices} (e.g. int8, pca:16+int8, pool2); repeat it for one row each.",
            Required = true,
        };
        var calibrationSource = new Option<string?>("--calibration-source")
        {
            Description = "Frames to calibrate on (clip ranges, pca); default: the first --calibration-frames of --source, "
                + "which are then not evaluated.",
        };
        var calibrationFrames = new Option<int>("--calibration-frames") { Description = "Frames calibrated on.", DefaultValueFactory = _ => 16 };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON (an object, or an array with several --codec)." };
        var input = CommonOptions.Input();
        var threads = CommonOptions.Threads();
        var command = new Command("fidelity",
            "Run real frames through the exact whole model and through the split with a codec on every hop: "
            + "bytes on the wire, codec time, fidelity.")
        {
            model, source, frames, cut, codec, calibrationSource, calibrationFrames, json, input, threads,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var frameCount = CutModel.CheckFrames(parse.GetValue(frames), "--frames");
            var calibrationCount = CutModel.CheckFrames(parse.GetValue(calibrationFrames), "--calibration-frames");
            var threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));
            var specs = parse.GetValue(codec)!.Select(TransferSpec.Parse).ToList();
            var sources = parse.GetValue(source)!;
            var subject = CutModel.Load(parse.GetValue(model)!, parse.GetValue(input));
            var positions = subject.Cuts(parse.GetValue(cut)!);
            var quiet = parse.GetValue(json);
            // Frames are read before the progress bar starts, so that a source error leaves nothing on stdout.
            var calibrationSpec = parse.GetValue(calibrationSource);
            var calibrationSet = subject.Frames(calibrationSpec is null ? sources : [calibrationSpec], calibrationCount);
            var evaluated = subject.Frames(sources, frameCount, calibrationSpec is null ? calibrationSet.Count : 0);
            var results = WithProgress(context.Console, quiet, report => Measure(
                subject, positions, specs, sources, calibrationSpec, calibrationSet, evaluated, threadCount, report));
            if (quiet)
            {
                context.Console.Profile.Out.Writer.WriteLine(results.Count == 1
                    ? JsonSerializer.Serialize(results[0], Json)
                    : JsonSerializer.Serialize(results, Json));
            }
            else
            {
                Render(context.Console, results);
            }

            return 0;
        }));
        return command;
    }

    /// <summary>Reads the frames, calibrates, runs the exact model once and each codec's pipeline once over the same frames.</summary>
    public static List<FidelityResult> Measure(
        CutModel subject, IReadOnlyList<int> positions, IReadOnlyList<TransferSpec> specs, IReadOnlyList<string> sources, string? calibrationSource,
        List<Dictionary<string, HostTensor>> calibrationFrames, List<Dictionary<string, HostTensor>> evaluated, int threads,
        Action<string, double>? report = null)
    {
        var total = evaluated.Count * (1 + specs.Count);
        var done = 0;
        void Step(string what) => report?.Invoke(what, 100.0 * ++done / total);

        using var calibrator = new CutCalibrator(subject.Analysis, positions, threads);
        calibrationFrames.ForEach(calibrator.Add);
        var calibration = calibrator.Result();

        var outputs = subject.Analysis.Graph.OutputNames;
        var exact = new List<Dictionary<string, HostTensor>>();
        using (var whole = new OrtSession(subject.Analysis.Graph.Model.ToByteArray(), threads))
        {
            foreach (var frame in evaluated)
            {
                exact.Add(whole.Run(frame));
                Step("exact whole model");
            }
        }

        var method = $"{evaluated.Count} frames of {string.Join(" then ", sources)} through the exact whole model and through the model split at "
            + $"cut{(positions.Count == 1 ? "" : "s")} {string.Join(", ", positions)} with the codec on every hop; "
            + $"calibration (clip ranges, pca) from {calibrationFrames.Count} other frames "
            + $"({calibrationSource ?? "the first ones of the same source, not evaluated"}); "
            + "bytes are each hop's cut tensors as encoded, ratio against them as raw float32; codec ms are per frame, one thread, on this machine; "
            + "pca and pool2 run inside the stage models (stage compute, not codec time).";
        var results = new List<FidelityResult>();
        foreach (var spec in specs)
        {
            using var pipeline = CodecPipeline.Build(subject.Analysis, positions, spec, calibration, calibrationFrames, threads);
            var agreement = new OutputAgreement(subject.Profile.Decoder, subject.Profile.Width, subject.Profile.Height);
            var cost = new HopCost();
            for (var i = 0; i < evaluated.Count; i++)
            {
                agreement.Add(outputs, exact[i], pipeline.Run(evaluated[i], cost));
                Step($"codec {spec.Text}");
            }

            var task = agreement.Task();
            var n = evaluated.Count;
            var bytes = (double)cost.Bytes / n;
            results.Add(new FidelityResult(
                Path.GetFileName(subject.Path),
                spec.Text,
                positions,
                n,
                calibrationFrames.Count,
                pipeline.RawBytesPerFrame,
                bytes,
                bytes == 0 ? 0 : pipeline.RawBytesPerFrame / bytes,
                cost.EncodeMs / n,
                cost.DecodeMs / n,
                task?.Value ?? agreement.Top1Agreement,
                task?.Measure ?? OutputAgreement.Top1Measure,
                agreement.MeanRelativeL2,
                agreement.MaxRelativeL2,
                agreement.Top1Agreement,
                task,
                pipeline.Notes,
                method));
        }

        return results;
    }

    private static List<FidelityResult> WithProgress(IAnsiConsole console, bool quiet, Func<Action<string, double>, List<FidelityResult>> body)
    {
        if (quiet)
        {
            return body((_, _) => { });
        }

        List<FidelityResult>? results = null;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("fidelity");
                results = body((what, percent) =>
                {
                    task.Description = Markup.Escape(what);
                    task.Value = percent;
                });
            });
        return results!;
    }

    private static void Render(IAnsiConsole console, List<FidelityResult> results)
    {
        var first = results[0];
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("codec").AddColumn("bytes/frame", c => c.RightAligned()).AddColumn("ratio vs float32", c => c.RightAligned())
            .AddColumn("encode ms", c => c.RightAligned()).AddColumn("decode ms", c => c.RightAligned())
            .AddColumn("fidelity", c => c.RightAligned()).AddColumn("rel. L2 (mean / max)", c => c.RightAligned())
            .AddColumn("top-1", c => c.RightAligned());
        var task = first.Task is not null;
        if (task && first.Task!.ReferenceBoxes is not null)
        {
            table.AddColumn("recall / precision / mean IoU", c => c.RightAligned());
        }

        foreach (var r in results)
        {
            var row = new List<string>
            {
                Markup.Escape(r.Codec),
                Format.Bytes((long)r.BytesPerFrame),
                $"{r.CompressionRatio:0.00}x",
                r.EncodeMs.ToString("0.000", CultureInfo.InvariantCulture),
                r.DecodeMs.ToString("0.000", CultureInfo.InvariantCulture),
                r.Fidelity.ToString("0.0000", CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{r.RelativeL2:E2} / {r.MaxRelativeL2:E2}"),
                r.Top1Agreement.ToString("0.000", CultureInfo.InvariantCulture),
            };
            if (task && first.Task!.ReferenceBoxes is not null)
            {
                var t = r.Task!;
                var iou = t.MeanMatchedIoU is { } m ? m.ToString("0.000", CultureInfo.InvariantCulture) : "-";
                row.Add(string.Create(CultureInfo.InvariantCulture, $"{t.Recall:0.000} / {t.Precision:0.000} / {iou}"));
            }

            table.AddRow(row.ToArray());
        }

        console.MarkupLine($"{Markup.Escape(first.Model)}: raw float32 at the cut{(first.Cuts.Count == 1 ? "" : "s")} "
            + $"{string.Join(", ", first.Cuts)}: {Format.Bytes((long)first.RawBytesPerFrame)} per frame");
        console.Write(table);
        console.MarkupLine($"fidelity: {Markup.Escape(first.FidelityMeasure)}"
            + (first.Task?.ReferenceBoxes is { } boxes ? $" ({boxes} boxes from the exact model over {first.Frames} frames)" : ""));
        foreach (var note in results.SelectMany(r => r.Notes).Distinct())
        {
            console.MarkupLine($"[grey]{Markup.Escape(note)}[/]");
        }

        console.MarkupLine($"[grey]{Markup.Escape(first.Method)}[/]");
    }
}
