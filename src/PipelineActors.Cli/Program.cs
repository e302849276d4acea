using PipelineActors.Cli;
using Spectre.Console;

return PipelineCommandLine.Run(args, AnsiConsole.Console, Console.Error);
