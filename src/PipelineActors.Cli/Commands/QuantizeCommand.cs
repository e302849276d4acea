using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Transfer.Codecs;
using PipelineActors.Transfer.Quantization;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary>What <c>pipeline quantize</c> measured: speed of the float and int8 models and their agreement on real frames.</summary>
public sealed record QuantizeResult(
    string Model,
    string Out,
    string Sha256,
    int CalibrationFrames,
    int Frames,
    bool EvaluatedOnCalibrationFrames,
    int Threads,
    double Fp32Ms,
    double Int8Ms,
    double Speedup,
    double Fidelity,
    string FidelityMeasure,
    double RelativeL2,
    double MaxRelativeL2,
    double Top1Agreement,
    TaskAgreement? Task,
    int QuantizedNodes,
    long FromOpset,
    string Int8Kernels,
    string Note);

/// <summary>
/// <c>pipeline quantize</c>: calibrates activations on real frames through the float model, writes its QDQ int8 form
/// (beside the model as NAME.int8.onnx unless --out says otherwise, with a copy of its profile), and measures both.
/// </summary>
internal static class QuantizeCommand
{
    private static readonly Dictionary<string, ClipMethod> ClipNames = new(StringComparer.Ordinal)
    {
        ["aciq-laplace"] = ClipMethod.AciqLaplace,
        ["aciq-gauss"] = ClipMethod.AciqGauss,
        ["percentile"] = ClipMethod.Percentile,
        ["minmax"] = ClipMethod.MinMax,
    };

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static Command Create(CliContext context)
    {
        var model = CommonOptions.ProfiledModel();
        var source = CommonOptions.FrameSources("Frames to calibrate and evaluate on");
        var frames = CommonOptions.Frames("Frames to calibrate on; the next as many (where the source has them) are timed and compared.", 16);
        var output = new Option<string?>("--out") { Description = "Where to write the int8 model; default NAME.int8.onnx beside the model." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var clip = new Option<string>("--clip")
        {
            Description = $"How activation ranges are clipped from the calibration: {string.Join(", ", ClipNames.Keys)}.",
            DefaultValueFactory = _ => "aciq-laplace",
        };
        var input = CommonOptions.Input();
        var threads = CommonOptions.Threads();
        var command = new Command("quantize",
            "Rewrite a model to int8 (QDQ: weights per output channel, activations calibrated on real frames) and measure its speed and fidelity.")
        {
            model, source, frames, output, json, clip, input, threads,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var frameCount = CutModel.CheckFrames(parse.GetValue(frames), "--frames");
            var threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));
            var clipText = parse.GetValue(clip)!;
            if (!ClipNames.TryGetValue(clipText, out var clipMethod))
            {
                throw new PipelineInputException($"--clip takes one of {string.Join(", ", ClipNames.Keys)}, not '{clipText}'.");
            }

            var modelPath = parse.GetValue(model)!;
            var file = OnnxModelFile.Load(modelPath);
            var name = Path.GetFileName(modelPath);
            QdqRewrite.Targets(file.Model, name); // nothing to quantise: say so before reading a frame
            var subject = CutModel.Load(modelPath, parse.GetValue(input));
            var outPath = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!,
                Path.GetFileNameWithoutExtension(modelPath) + ".int8.onnx");
            if (Directory.Exists(outPath))
            {
                throw new PipelineInputException($"--out '{outPath}' is a folder; give the path of the .onnx file to write.");
            }

            if (Path.GetFullPath(outPath) == file.Path)
            {
                throw new PipelineInputException($"--out '{outPath}' is the model itself; give another path for the int8 model.");
            }

            var read = subject.Frames(parse.GetValue(source)!, 2 * frameCount);
            var calibration = read.Take(frameCount).ToList();
            var heldOut = read.Count > calibration.Count;
            var evaluated = heldOut ? read.Skip(frameCount).ToList() : calibration;
            var result = Measure(subject, file, calibration, evaluated, heldOut, threadCount, outPath, clipMethod);

            // Written last, through a temporary file: an error above leaves no model behind.
            var sha = OnnxModelFile.Save(result.Model.Model, outPath);
            WriteProfileBeside(modelPath, outPath);
            var row = result.Row with { Out = Path.GetFullPath(outPath), Sha256 = sha };
            if (parse.GetValue(json))
            {
                context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(row, Json));
            }
            else
            {
                Render(context.Console, row);
            }

            return 0;
        }));
        return command;
    }

    private static (QuantizedModel Model, QuantizeResult Row) Measure(
        CutModel subject, OnnxModelFile file, List<Dictionary<string, HostTensor>> calibration, List<Dictionary<string, HostTensor>> evaluated,
        bool heldOut, int threads, string outPath, ClipMethod clip)
    {
        var quantized = ModelQuantizer.Quantize(file.Model, calibration, Path.GetFileName(file.Path), clip, threads);
        var int8Bytes = quantized.Model.ToByteArray();
        var fp32Bytes = file.Model.ToByteArray();
        var frames = evaluated.Cast<IReadOnlyDictionary<string, HostTensor>>().ToList();
        var fp32Ms = ModelQuantizer.MillisecondsPerFrame(fp32Bytes, frames, threads);
        var int8Ms = ModelQuantizer.MillisecondsPerFrame(int8Bytes, frames, threads);

        var agreement = new OutputAgreement(subject.Profile.Decoder, subject.Profile.Width, subject.Profile.Height);
        using (var fp32 = new OrtSession(fp32Bytes, threads, optimize: true))
        using (var int8 = new OrtSession(int8Bytes, threads, optimize: true))
        {
            foreach (var frame in evaluated)
            {
                agreement.Add(fp32.OutputNames, fp32.Run(frame), int8.Run(frame));
            }
        }

        var task = agreement.Task();
        var row = new QuantizeResult(
            Path.GetFileName(file.Path), outPath, "", calibration.Count, evaluated.Count, !heldOut, threads, fp32Ms, int8Ms,
            int8Ms > 0 ? fp32Ms / int8Ms : 0,
            task?.Value ?? agreement.Top1Agreement,
            task?.Measure ?? "share of frames whose top-1 (argmax of the first output) agrees with the float model's",
            agreement.MeanRelativeL2,
            agreement.MaxRelativeL2,
            agreement.Top1Agreement,
            task,
            quantized.QuantizedNodes,
            quantized.FromOpset,
            ModelQuantizer.Int8Kernels(ModelQuantizer.OptimizedOpTypes(int8Bytes)),
            quantized.Note);
        return (quantized, row);
    }

    /// <summary>The int8 model takes the same frames as the float one: its profile goes beside it, so every verb can load it.</summary>
    private static void WriteProfileBeside(string modelPath, string outPath)
    {
        var from = ModelProfile.PathFor(modelPath);
        var to = ModelProfile.PathFor(outPath);
        if (Path.GetFullPath(from) == Path.GetFullPath(to))
        {
            return;
        }

        var temp = $"{to}.{Environment.ProcessId}.tmp";
        File.Copy(from, temp, overwrite: true);
        File.Move(temp, to, overwrite: true);
    }

    private static void Render(IAnsiConsole console, QuantizeResult r)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("model").AddColumn("fp32 ms/frame", c => c.RightAligned()).AddColumn("int8 ms/frame", c => c.RightAligned())
            .AddColumn("speed-up", c => c.RightAligned()).AddColumn("fidelity", c => c.RightAligned())
            .AddColumn("rel. L2 (mean / max)", c => c.RightAligned()).AddColumn("top-1", c => c.RightAligned());
        table.AddRow(
            Markup.Escape(r.Model),
            r.Fp32Ms.ToString("0.00", CultureInfo.InvariantCulture),
            r.Int8Ms.ToString("0.00", CultureInfo.InvariantCulture),
            $"{r.Speedup.ToString("0.00", CultureInfo.InvariantCulture)}x",
            r.Fidelity.ToString("0.0000", CultureInfo.InvariantCulture),
            string.Create(CultureInfo.InvariantCulture, $"{r.RelativeL2:E2} / {r.MaxRelativeL2:E2}"),
            r.Top1Agreement.ToString("0.000", CultureInfo.InvariantCulture));
        console.Write(table);
        console.MarkupLine($"fidelity: {Markup.Escape(r.FidelityMeasure)}"
            + (r.Task?.ReferenceBoxes is { } boxes
                ? $" ({boxes} boxes from the float model, recall {r.Task.Recall:0.000}, precision {r.Task.Precision:0.000})"
                : ""));
        console.MarkupLine($"[grey]{Markup.Escape(r.Note)}; ONNX Runtime runs {Markup.Escape(r.Int8Kernels)}[/]");
        var compared = r.EvaluatedOnCalibrationFrames ? "frames (the calibration frames: the source had no more)" : "other frames";
        console.MarkupLine($"[grey]calibrated on {r.CalibrationFrames} frames; timed (median ms per frame, {r.Threads} thread(s), "
            + $"optimisations on) and compared on {r.Frames} {compared}[/]");
        console.MarkupLine($"wrote {Markup.Escape(r.Out)} (sha256 {r.Sha256[..12]}...)");
    }
}
