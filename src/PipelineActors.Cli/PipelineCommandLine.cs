using System.CommandLine;
using PipelineActors.Cli.Commands;
using Spectre.Console;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Cli;

/// <summary>Where a command writes: the console for results, a writer for error sentences.</summary>
public sealed record CliContext(IAnsiConsole Console, TextWriter Error)
{
    /// <summary>
    /// Runs a command body; an error the user caused becomes one sentence on stderr and exit code 2.
    /// Anything else is a bug and keeps its stack trace.
    /// </summary>
    public int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (PipelineInputException e)
        {
            Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}

/// <summary>The <c>pipeline</c> command line: one root with a verb per job.</summary>
public static class PipelineCommandLine
{
    public static RootCommand Build(CliContext context)
    {
        var root = new RootCommand("PipelineActors: cut a CNN into stages and stream camera frames through them across a cluster of small devices.");
        root.Add(InspectCommand.Create(context));
        root.Add(SplitCommand.Create(context));
        root.Add(ProfileCommand.Create(context));
        root.Add(ZooCommand.Create(context));
        root.Add(RunCommand.Create(context));
        root.Add(BenchCommand.Create(context));
        root.Add(MonitorCommand.Create(context));
        root.Add(JobCommand.Create(context));
        root.Add(PlanCommand.Create(context));
        root.Add(CertsCommand.Create(context));
        root.Add(CalibrateCommand.Create(context));
        root.Add(FidelityCommand.Create(context));
        root.Add(QuantizeCommand.Create(context));
        return root;
    }

    public static int Run(string[] args, IAnsiConsole console, TextWriter error)
    {
        var context = new CliContext(console, error);
        var parse = Build(context).Parse(args);
        return parse.Invoke(new InvocationConfiguration { Error = error });
    }
}
