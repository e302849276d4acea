using System.CommandLine;
using System.Globalization;
using PipelineActors.Onnx.Cost;
using Spectre.Console;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline profile</c>: measure every segment between candidate cuts in ONNX Runtime.</summary>
internal static class ProfileCommand
{
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var input = CommonOptions.Input();
        var threads = CommonOptions.Threads();
        var runs = new Option<int>("--runs") { Description = "Timed runs per segment after 3 warm-up runs (the median is kept).",
            DefaultValueFactory = _ => 10 };
        var output = new Option<string?>("--out") { Description = "Save the profile as JSON for 'pipeline split --profile'." };
        var command = new Command("profile",
            "Measure what each segment between cuts costs in ONNX Runtime: every node timed inside one session over the whole model.")
        {
            model, input, threads, runs, output,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var runCount = parse.GetValue(runs);
            if (runCount is < 1 or > 10000)
            {
                throw new PipelineInputException($"--runs must be between 1 and 10000, not {runCount}.");
            }

            var analysis = CommonOptions.Analyze(parse.GetValue(model)!, parse.GetValue(input));
            var profile = MeasureWithProgress(context.Console, analysis, CommonOptions.CheckThreads(parse.GetValue(threads)), runCount);
            Render(context.Console, analysis, profile);
            var path = parse.GetValue(output);
            if (path is not null)
            {
                var temp = path + ".partial";
                File.WriteAllText(temp, profile.ToJson());
                File.Move(temp, path, overwrite: true);
                context.Console.MarkupLine($"saved profile to {Markup.Escape(path)}");
            }

            return 0;
        }));
        return command;
    }

    public static LatencyProfile MeasureWithProgress(IAnsiConsole console, ModelAnalysis analysis, int threads, int runs)
    {
        LatencyProfile? result = null;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"profiling ({threads} thread(s), {runs} runs)");
                result = LatencyProfiler.Measure(analysis, threads, runs, new Progress(task));
            });
        return result!;
    }

    private static void Render(IAnsiConsole console, ModelAnalysis analysis, LatencyProfile profile)
    {
        var table = new Table().Border(TableBorder.Simple)
            .AddColumn("segment", c => c.RightAligned()).AddColumn("nodes").AddColumn("first .. last node")
            .AddColumn("FLOPs", c => c.RightAligned()).AddColumn("median ms", c => c.RightAligned())
            .AddColumn("p90 ms", c => c.RightAligned()).AddColumn("share", c => c.RightAligned()).AddColumn("");
        var total = profile.SumOfSegmentsMs;
        var widest = profile.Segments.Max(s => s.MedianMs);
        for (var i = 0; i < profile.Segments.Count; i++)
        {
            var s = profile.Segments[i];
            var bar = new string('█', (int)Math.Round(20 * s.MedianMs / Math.Max(widest, 1e-9)));
            table.AddRow(
                i.ToString(CultureInfo.InvariantCulture),
                $"{s.From}..{s.To - 1}",
                Markup.Escape($"{analysis.Graph.Order[s.From].Name} .. {analysis.Graph.Order[s.To - 1].Name}"),
                Format.Count(analysis.FlopsBetween(s.From, s.To)),
                s.MedianMs.ToString("0.000", CultureInfo.InvariantCulture),
                s.P90Ms.ToString("0.000", CultureInfo.InvariantCulture),
                Format.Percent(total == 0 ? 0 : s.MedianMs / total),
                $"[blue]{bar}[/]");
        }

        console.Write(table);
        console.MarkupLine($"whole model {profile.WholeModelMs:0.00} ms; sum of {profile.Segments.Count} segments {total:0.00} ms "
            + $"({profile.IntraOpThreads} intra-op thread(s), median of {profile.Runs} runs after warm-up; "
            + $"{Markup.Escape(profile.Method ?? LatencyProfile.SegmentsMethod)})");
    }

    private sealed class Progress(ProgressTask task) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value)
        {
            task.MaxValue = value.Total;
            task.Value = value.Done;
        }
    }
}
