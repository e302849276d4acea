using System.CommandLine;
using System.Text.Json;
using Akka.Actor;
using Spectre.Console;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Monitoring;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline monitor</c>: join the cluster as a monitor and show the live dashboard.</summary>
internal static class MonitorCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create(CliContext context)
    {
        var seed = new Option<string>("--seed") { Description = "A seed node of the cluster, e.g. akka.tcp://pipeline@10.0.0.10:4053.", Required = true };
        var once = new Option<bool>("--once") { Description = "Print one snapshot and leave." };
        var json = new Option<bool>("--json") { Description = "With --once: print the snapshot as JSON." };
        var wait = new Option<double>("--wait") { Description = "With --once: seconds to wait for a running pipeline's reports.", DefaultValueFactory = _ => 10 };
        var command = new Command("monitor", "Join the cluster as a monitor (no part in placement or split-brain decisions) and show members, plan, stages, end-to-end figures and events, refreshed every second.")
        {
            seed, once, json, wait,
        };
        command.SetAction(parse => context.Guard(() => Run(context, parse.GetValue(seed)!, parse.GetValue(once), parse.GetValue(json), parse.GetValue(wait)).GetAwaiter().GetResult()));
        return command;
    }

    /// <summary>
    /// A one-shot snapshot is worth printing once a pipeline is reporting, every stage has counted frames, and every
    /// worker has announced its capacity: reports arrive about once a second, so an early snapshot shows holes that
    /// a script would read as a fault.
    /// </summary>
    private static bool IsSettled(MonitorSnapshot snapshot) =>
        snapshot.Pipeline is { ThroughputHistory.Count: > 0 }
        && snapshot.Stages.Count > 0
        && snapshot.Stages.All(s => s.Frames > 0)
        && snapshot.Members.Where(m => m.Roles.Contains(Roles.Worker) && m.Status == "Up").All(m => m.Cores is not null);

    private static async Task<int> Run(CliContext context, string seed, bool once, bool json, double wait)
    {
        if (!seed.StartsWith("akka.tcp://", StringComparison.Ordinal))
        {
            throw new PipelineInputException($"--seed '{seed}' is not a node address; write it as akka.tcp://pipeline@HOST:PORT.");
        }

        var node = PipelineNode.Start(new NodeOptions
        {
            Roles = [Roles.Monitor],
            Seeds = [seed],
            LogFile = Path.Combine(Path.GetTempPath(), "pipelineactors", $"monitor-{Environment.ProcessId}.log"),
        });
        await using (node)
        {
            try
            {
                await node.WaitUntilUpAsync(TimeSpan.FromSeconds(20));
            }
            catch (TimeoutException)
            {
                throw new PipelineInputException($"Could not join the cluster at {seed} within 20 s; is a node running there?");
            }

            var monitor = node.System.ActorOf(MonitorActor.Props(), "monitor");
            if (once)
            {
                var deadline = DateTime.UtcNow.AddSeconds(wait);
                MonitorSnapshot snapshot;
                do
                {
                    await Task.Delay(500);
                    snapshot = await monitor.Ask<MonitorSnapshot>(GetMonitorSnapshot.Instance, TimeSpan.FromSeconds(5));
                }
                while (!IsSettled(snapshot) && DateTime.UtcNow < deadline);

                if (json)
                {
                    context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(snapshot, Json));
                }
                else
                {
                    context.Console.Write(MonitorView.Render(snapshot));
                }

                return 0;
            }

            using var stop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };
            var first = await monitor.Ask<MonitorSnapshot>(GetMonitorSnapshot.Instance, TimeSpan.FromSeconds(5));
            await context.Console.Live(MonitorView.Render(first)).StartAsync(async live =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(1000, stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }

                    live.UpdateTarget(MonitorView.Render(await monitor.Ask<MonitorSnapshot>(GetMonitorSnapshot.Instance, TimeSpan.FromSeconds(5))));
                }
            });
            context.Console.MarkupLine("[grey]leaving the cluster[/]");
            return 0;
        }
    }
}
