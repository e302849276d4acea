using System.CommandLine;
using System.Diagnostics;
using PipelineActors.Onnx.Zoo;
using Spectre.Console;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline zoo</c>: write an architecture-faithful CNN with seeded random weights.</summary>
internal static class ZooCommand
{
    public static Command Create(CliContext context)
    {
        var name = new Argument<string>("name") { Description = $"Architecture: {string.Join(", ", ModelZoo.Names)}." };
        var output = new Option<string>("--out") { Description = "Path of the .onnx file to write.", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed for the random weights.", DefaultValueFactory = _ => 1 };
        var command = new Command("zoo", "Write a well-known CNN architecture as ONNX with seeded random (untrained) weights, for throughput work.")
        {
            name, output, seed,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var which = parse.GetValue(name)!;
            if (!ModelZoo.Names.Contains(which))
            {
                throw new PipelineInputException($"There is no zoo model '{which}'; choose one of {string.Join(", ", ModelZoo.Names)}.");
            }

            var clock = Stopwatch.StartNew();
            var model = ModelZoo.Build(which, parse.GetValue(seed));
            var path = parse.GetValue(output)!;
            OnnxModelFile.Save(model, path);
            var parameters = model.Graph.Initializer.Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d));
            context.Console.MarkupLine(
                $"wrote {Markup.Escape(path)}: {Markup.Escape(which)}, {Format.Count(parameters)} parameters, "
                    + $"{Format.Bytes(new FileInfo(path).Length)} in {clock.Elapsed.TotalSeconds:0.0} s [yellow](random weights: not trained)[/]");
            return 0;
        }));
        return command;
    }
}
