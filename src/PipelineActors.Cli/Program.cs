using PipelineActors.Cli;
using Spectre.Console;

var console = AnsiConsole.Console;
if (Console.IsOutputRedirected)
{
    // Spectre assumes 80 columns without a terminal, which folds the bench and run tables into unreadable slivers
    // in logs and files; a reader of a file can scroll sideways.
    console.Profile.Width = 160;
}

return PipelineCommandLine.Run(args, console, Console.Error);
