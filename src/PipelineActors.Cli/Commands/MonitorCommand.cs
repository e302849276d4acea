using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using PipelineActors.Onnx;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.Hosting;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline monitor</c>: join the cluster as a monitor and show the live dashboard, or one snapshot for scripts.</summary>
internal static class MonitorCommand
{
    /// <summary>With no job reporting, a snapshot waits this long after the join: reports come every second, once gossip has spread
    /// the monitor's subscription.</summary>
    private static readonly TimeSpan QuietClusterGrace = TimeSpan.FromSeconds(3);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create(CliContext context)
    {
        var seed = new Option<string>("--seed")
        {
            Description = "A seed node of the cluster, e.g. akka.ssl.tcp://pipeline@10.0.0.10:4053.",
            Required = true,
        };
        var host = new Option<string?>("--host")
        {
            Description = "Address to bind (default: the local address that routes to the seed's host; 0.0.0.0 for all).",
        };
        var publicHost = new Option<string?>("--public-host", "--public-hostname")
        {
            Description = "Address the cluster reaches this monitor at, behind NAT (default: --host, or the address that routes to the seed).",
        };
        var port = new Option<int>("--port") { Description = "TCP port to listen on (default 0: any free port).", DefaultValueFactory = _ => 0 };
        var joinTimeout = new Option<double>("--join-timeout")
        {
            Description = "Seconds to wait for the seed to let this monitor in.",
            DefaultValueFactory = _ => 20,
        };
        var job = new Option<string?>("--job") { Description = "Show the plan of this job only (the jobs table lists every job)." };
        var once = new Option<bool>("--once") { Description = "Print one snapshot and leave." };
        var json = new Option<bool>("--json") { Description = "With --once: print the snapshot as JSON." };
        var wait = new Option<double>("--wait")
        {
            Description = "With --once: seconds to wait for running jobs' reports.",
            DefaultValueFactory = _ => 10,
        };
        var command = new Command(
            "monitor",
            "Join the cluster as a monitor (no part in placement or split-brain decisions) and show members, every job (state, throughput, "
            + "latency, counters), each job's plan and stages, and events, refreshed every second.")
        {
            seed, host, publicHost, port, joinTimeout, job, once, json, wait,
        };
        var transport = new ClientTransport();
        transport.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            var settings = new MonitorSettings(
                parse.GetValue(seed)!,
                parse.GetValue(host),
                parse.GetValue(publicHost),
                parse.GetValue(port),
                Seconds(parse.GetValue(joinTimeout), "--join-timeout", 0.1),
                parse.GetValue(job),
                parse.GetValue(once),
                parse.GetValue(json),
                Seconds(parse.GetValue(wait), "--wait", 0))
            {
                Transport = transport.Read(parse),
            };
            return Run(context, settings).GetAwaiter().GetResult();
        }));
        return command;
    }

    private static TimeSpan Seconds(double value, string name, double min) =>
        double.IsFinite(value) && value >= min && value <= 3600
            ? TimeSpan.FromSeconds(value)
            : throw new PipelineInputException(
                string.Create(CultureInfo.InvariantCulture, $"{name} {value} is not a number of seconds from {min} to 3600."));

    /// <summary>
    /// A one-shot snapshot is worth printing once every running job is reporting and every stage of its plan has counted frames, and
    /// every worker has announced its capacity: reports arrive about once a second, so an early snapshot shows holes that a script
    /// would read as a fault. With no job at all, a short grace lets a running job's first report arrive.
    /// </summary>
    private static bool IsSettled(MonitorSnapshot snapshot, string? job, TimeSpan sinceJoin)
    {
        var workersAnnounced = snapshot.Members.Where(m => m.Roles.Contains(Roles.Worker) && m.Status == "Up").All(m => m.Cores is not null);
        var jobs = snapshot.Jobs.Where(j => job is null || j.JobId == job).ToList();
        var jobsReporting = jobs.All(j => j.State switch
        {
            ReportedJobStates.Running => j.Pipeline is { ThroughputHistory.Count: > 0 } && j.Stages.Count > 0 && j.Stages.All(s => s.Frames > 0),
            ReportedJobStates.Starting or ReportedJobStates.WaitingForPlan => false,
            _ => true,
        });
        var anyJob = jobs.Count > 0 || (job is null && sinceJoin >= QuietClusterGrace);
        return workersAnnounced && jobsReporting && anyJob;
    }

    private static async Task<int> Run(CliContext context, MonitorSettings settings)
    {
        var node = await ClientNode.JoinAsync(settings.Seed, settings.Host, settings.PublicHost, settings.Port, settings.JoinTimeout,
            "monitor", settings.Transport);
        await using (node)
        {
            var joined = Stopwatch.StartNew();
            var monitor = node.System.ActorOf(MonitorActor.Props(), "monitor");
            return settings.Once
                ? await Snapshot(context, settings, monitor, joined)
                : await Dashboard(context, settings, monitor);
        }
    }

    private static async Task<int> Snapshot(CliContext context, MonitorSettings settings, IActorRef monitor, Stopwatch joined)
    {
        MonitorSnapshot snapshot;
        do
        {
            await Task.Delay(500);
            snapshot = await monitor.Ask<MonitorSnapshot>(GetMonitorSnapshot.Instance, TimeSpan.FromSeconds(5));
        }
        while (!IsSettled(snapshot, settings.Job, joined.Elapsed) && joined.Elapsed < settings.Wait);

        if (settings.Job is { } job)
        {
            if (snapshot.Jobs.All(j => j.JobId != job))
            {
                var seen = snapshot.Jobs.Count == 0 ? "none" : string.Join(", ", snapshot.Jobs.Select(j => j.JobId));
                throw new PipelineInputException(
                    $"No job '{job}' reported to the cluster at {settings.Seed} within {settings.Wait.TotalSeconds:0.#} s (jobs seen: {seen}).");
            }

            snapshot = snapshot with { Jobs = snapshot.Jobs.Where(j => j.JobId == job).ToList() };
        }

        if (settings.Json)
        {
            context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(snapshot, Json));
        }
        else
        {
            context.Console.Write(MonitorView.Render(snapshot, settings.Job));
        }

        return 0;
    }

    private static async Task<int> Dashboard(CliContext context, MonitorSettings settings, IActorRef monitor)
    {
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        var first = await monitor.Ask<MonitorSnapshot>(GetMonitorSnapshot.Instance, TimeSpan.FromSeconds(5));
        await context.Console.Live(MonitorView.Render(first, settings.Job)).StartAsync(async live =>
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

                var snapshot = await monitor.Ask<MonitorSnapshot>(GetMonitorSnapshot.Instance, TimeSpan.FromSeconds(5));
                live.UpdateTarget(MonitorView.Render(snapshot, settings.Job));
            }
        });
        context.Console.MarkupLine("[grey]leaving the cluster[/]");
        return 0;
    }

    private sealed record MonitorSettings(
        string Seed,
        string? Host,
        string? PublicHost,
        int Port,
        TimeSpan JoinTimeout,
        string? Job,
        bool Once,
        bool Json,
        TimeSpan Wait)
    {
        public required ClientTransport Transport { get; init; }
    }
}
