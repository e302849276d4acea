using System.CommandLine;
using System.Globalization;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Stages;
using PipelineActors.Transfer.Calibration;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// <c>pipeline calibrate</c>: real frames through the whole model once, recording per cut what every codec needs, into
/// <c>calibration.json</c> beside a split's <c>manifest.json</c>.
/// </summary>
internal static class CalibrateCommand
{
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.ProfiledModel();
        var source = CommonOptions.FrameSources("Frames to calibrate on");
        var frames = CommonOptions.Frames("Frames to calibrate on.", 64);
        var cut = new Option<string?>("--cut") { Description = "Cut positions (comma separated) or balanced:N; default: the split's in --out." };
        var parts = new Option<int?>("--parts") { Description = "Calibrate the cuts of the balanced N-part split." };
        var output = new Option<string>("--out")
        {
            Description = "The split's folder (from 'pipeline split'); calibration.json is written there, beside manifest.json.",
            Required = true,
        };
        var input = CommonOptions.Input();
        var threads = CommonOptions.Threads();
        var command = new Command("calibrate",
            "Run real frames through the model once and record, per cut, the statistics the codecs need (calibration.json beside the split).")
        {
            model, source, frames, cut, parts, output, input, threads,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var frameCount = CutModel.CheckFrames(parse.GetValue(frames), "--frames");
            var threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));
            var folder = parse.GetValue(output)!;
            if (File.Exists(folder))
            {
                throw new PipelineInputException($"--out '{folder}' is a file; give the split's folder.");
            }

            var cutText = parse.GetValue(cut);
            var partCount = parse.GetValue(parts);
            if (cutText is not null && partCount is not null)
            {
                throw new PipelineInputException("Give --cut or --parts, not both.");
            }

            var subject = CutModel.Load(parse.GetValue(model)!, parse.GetValue(input));
            var positions = cutText is not null
                ? subject.Cuts(cutText)
                : partCount is { } n
                    ? n >= 2 ? Balancer.Balance(subject.Analysis, n) : throw new PipelineInputException($"--parts must be 2 or more, not {n}.")
                    : SplitCuts(folder, subject);

            var sources = parse.GetValue(source)!;
            foreach (var spec in sources)
            {
                // A bad source is an error before the progress bar writes anything.
                using var probe = Runtime.DataPath.Sources.SourceSpec.Parse(spec, subject.Profile);
            }

            CutCalibration? calibration = null;
            context.Console.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"calibrating {positions.Count} cut(s)", maxValue: frameCount);
                    using var calibrator = new CutCalibrator(subject.Analysis, positions, threadCount);
                    foreach (var frame in subject.Frames(sources, frameCount, 0, done => task.Value = done))
                    {
                        calibrator.Add(frame);
                    }

                    calibration = calibrator.Result();
                });
            var path = calibration!.Save(folder);
            Render(context.Console, calibration, path);
            return 0;
        }));
        return command;
    }

    /// <summary>The cuts of the split in <paramref name="folder"/>, which must have been made from this model.</summary>
    private static IReadOnlyList<int> SplitCuts(string folder, CutModel subject)
    {
        if (!File.Exists(Path.Combine(folder, SplitManifest.FileName)))
        {
            throw new PipelineInputException(
                $"'{folder}' holds no {SplitManifest.FileName}, so it names no cuts; give --cut or --parts, or a folder from 'pipeline split'.");
        }

        var manifest = SplitManifest.Load(folder);
        if (manifest.SourceSha256 is not null && subject.Analysis.SourceSha256 is not null && manifest.SourceSha256 != subject.Analysis.SourceSha256)
        {
            throw new PipelineInputException(
                $"The split in '{folder}' was made from {manifest.SourceModel}, not from {Path.GetFileName(subject.Path)}.");
        }

        return [.. manifest.Boundaries.Select(b => b.Position)];
    }

    private static void Render(IAnsiConsole console, CutCalibration calibration, string path)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("cut", c => c.RightAligned()).AddColumn("after node").AddColumn("tensor").AddColumn("channels", c => c.RightAligned())
            .AddColumn("frames", c => c.RightAligned()).AddColumn("min .. max", c => c.RightAligned()).AddColumn("zeros", c => c.RightAligned())
            .AddColumn("covariance");
        foreach (var b in calibration.Boundaries)
        {
            foreach (var t in b.Tensors)
            {
                var count = t.Channels.Sum(c => c.Count);
                table.AddRow(
                    b.Position.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(b.AfterNode),
                    Markup.Escape(t.Name),
                    t.Channels.Length.ToString(CultureInfo.InvariantCulture),
                    t.Frames.ToString(CultureInfo.InvariantCulture),
                    string.Create(CultureInfo.InvariantCulture, $"{t.Channels.Min(c => c.Min):G4} .. {t.Channels.Max(c => c.Max):G4}"),
                    Format.Percent(count == 0 ? 0 : t.Channels.Sum(c => (double)c.ZeroCount) / count),
                    b.Covariances?.Any(c => c.Name == t.Name) == true ? "yes (pca:K)" : "-");
            }
        }

        console.Write(table);
        console.MarkupLine($"wrote {Markup.Escape(path)} (per cut: per-channel statistics for int8/int4 clipping, channel covariance for pca:K)");
    }
}
