using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using PipelineActors.Onnx;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Jobs;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// <c>pipeline job submit|list|status|stop --seed akka.ssl.tcp://pipeline@HOST:PORT --tls DIR</c>: camera jobs on a cluster of node
/// services. Each verb joins the cluster for as long as it takes (as a monitor-role member that takes no part in placement),
/// talks to the job registry, and leaves.
/// </summary>
internal static class JobCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create(CliContext context)
    {
        var command = new Command("job", "Submit, list, follow and stop camera jobs on a cluster of node services.");
        command.Subcommands.Add(Submit(context));
        command.Subcommands.Add(List(context));
        command.Subcommands.Add(Status(context));
        command.Subcommands.Add(Stop(context));
        return command;
    }

    private static Command Submit(CliContext context)
    {
        var join = new JoinOptions();
        var name = NameOption();
        var model = new Option<string>("--model") { Description = "The ONNX model (its .profile.json beside it, if the source needs one).",
            Required = true };
        var source = new Option<string>("--source") { Description = $"Frame source: {Runtime.DataPath.Sources.SourceSpec.Kinds}.",
            DefaultValueFactory = _ => "synthetic" };
        var results = new Option<string[]>("--results") { Description = "A result destination: a JSON-lines file (appended to), '-' for "
            + "stdout; repeat for several.", AllowMultipleArgumentsPerToken = false };
        var ingest = new Option<string?>("--ingest") { Description = "The ingest node (HOST:PORT) that runs the job's ingest and sink; "
            + "default: any ingest node." };
        var input = CommonOptions.Input();
        var window = new Option<int>("--window") { Description = "Frames in flight at most (0: workers + 1).", DefaultValueFactory = _ => 0 };
        var fps = new Option<double>("--fps") { Description = "Camera rate of the source; 0 = as fast as the pipeline takes frames.",
            DefaultValueFactory = _ => 0 };
        var frames = new Option<long>("--frames") { Description = "Frames to take from the source (0: until it ends).",
            DefaultValueFactory = _ => 0 };
        var codec = new Option<string>("--codec")
        {
            Description = "Codec on every cut tensor between stages, as pipeline run --codec takes it (int8 and int4 calibrated on the job's "
                + "first frames); exact: zero suppression only.",
            DefaultValueFactory = _ => Transfer.TransferSpec.Exact,
        };
        var fidelity = new Option<double?>("--fidelity")
        {
            Description = "Fidelity budget (above 0, at most 1): each hop gets the smallest codec whose fidelity against the exact model, "
                + "measured on the job's first frames, is at least this (e.g. 0.99); not with --codec.",
        };
        var firstHop = CommonOptions.FirstHop();
        var command = new Command("submit",
            "Run a job on the cluster: the model reaches the cluster by SHA-256, then the job runs without this command.")
        {
            name, model, source, results, ingest, input, window, fps, frames, codec, fidelity, firstHop,
        };
        join.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            var transfer = Runtime.ControlPath.Planning.CutCodecPlan.Parse(parse.GetValue(codec)!);
            var budget = parse.GetValue(fidelity);
            if (budget is not null && transfer.ChangesTheWire)
            {
                throw new PipelineInputException($"--fidelity lets each hop's codec be chosen and --codec {transfer.Text} fixes one for "
                    + $"all; give one of them.");
            }

            var spec = JobSpecs.ForModel(
                parse.GetValue(name)!,
                parse.GetValue(model)!,
                parse.GetValue(source)!,
                parse.GetValue(results) ?? [],
                parse.GetValue(input) ?? [],
                parse.GetValue(window),
                parse.GetValue(fps),
                parse.GetValue(frames),
                parse.GetValue(ingest) ?? string.Empty) with
            {
                Codec = budget is { } b ? Runtime.ControlPath.Planning.CutCodecChoice.Spell(b) : transfer.Text,
                FirstHop = Transfer.FirstHop.Parse(parse.GetValue(firstHop)).Text,
            };
            return WithClusterAsync(join, parse, "job client", async node =>
            {
                // The registry fetches the model from this process before it answers: the job then needs nobody here.
                var path = Path.GetFullPath(parse.GetValue(model)!);
                var store = node.System.ActorOf(ModelStoreActor.Props(new Dictionary<string, string> { [spec.ModelSha256] = path }),
                    "submitted-model");
                var timeout = TimeSpan.FromSeconds(60 + (spec.ModelBytes / (1 << 20)));
                var answer = await Ask<JobSubmitted>(node, new SubmitJob(spec with { ModelStore = store }), timeout, "submit");
                if (answer.Error.Length > 0)
                {
                    throw new PipelineInputException(answer.Error);
                }

                var follow = $"pipeline job status --name {spec.Name} --seed {parse.GetValue(join.Seed)} {join.TransportArguments(parse)}";
                context.Console.MarkupLineInterpolated($"job [bold]{spec.Name}[/] submitted; follow it with: {follow}");
                return 0;
            }).GetAwaiter().GetResult();
        }));
        return command;
    }

    private static Command List(CliContext context)
    {
        var join = new JoinOptions();
        var json = new Option<bool>("--json") { Description = "Print the jobs as a JSON array." };
        var command = new Command("list", "Show every job the cluster knows: state, node, frames, throughput, latency.") { json };
        join.AddTo(command);
        command.SetAction(parse => context.Guard(() => WithClusterAsync(join, parse, "job client", async node =>
        {
            var jobs = (await Ask<JobList>(node, ListJobs.Instance, TimeSpan.FromSeconds(15), "list")).Jobs;
            if (parse.GetValue(json))
            {
                context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(jobs, Json));
                return 0;
            }

            if (jobs.Count == 0)
            {
                context.Console.MarkupLine("no jobs; submit one with: pipeline job submit --name NAME --model FILE --source SPEC --seed ...");
                return 0;
            }

            var table = new Table().Border(TableBorder.Rounded)
                .AddColumns("job", "state", "node", "in", "out", "skipped", "failed", "frames/s", "p50 ms", "p95 ms", "detail");
            foreach (var j in jobs)
            {
                table.AddRow(
                    Markup.Escape(j.Name), j.State, Markup.Escape(j.Node), Count(j.FramesIn), Count(j.ResultsOut), Count(j.Skipped), Count(j.Failed),
                    j.FramesPerSecond.ToString("0.0", CultureInfo.InvariantCulture), j.LatencyP50Ms.ToString("0", CultureInfo.InvariantCulture),
                    j.LatencyP95Ms.ToString("0", CultureInfo.InvariantCulture), Markup.Escape(j.Detail));
            }

            context.Console.Write(table);
            return 0;
        }).GetAwaiter().GetResult()));
        return command;
    }

    private static Command Status(CliContext context)
    {
        var join = new JoinOptions();
        var name = NameOption();
        var json = new Option<bool>("--json") { Description = "Print the status as one JSON object (state, framesIn, resultsOut, "
            + "skipped, failed, ...)." };
        var command = new Command("status",
            "Show one job: state, frames in, results out, skipped, failed, throughput, latency p50/p95, the plan.") { name, json };
        join.AddTo(command);
        command.SetAction(parse => context.Guard(() => WithClusterAsync(join, parse, "job client", async node =>
        {
            var job = await Find(node, parse.GetValue(name)!);
            if (parse.GetValue(json))
            {
                context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(job, Json));
                return 0;
            }

            var grid = new Grid().AddColumn().AddColumn();
            grid.AddRow("job", Markup.Escape(job.Name));
            grid.AddRow("state", job.State + (job.Detail.Length > 0 ? $" ({Markup.Escape(job.Detail)})" : string.Empty));
            grid.AddRow("ingest node", Markup.Escape(job.Node.Length > 0 ? job.Node : "none"));
            grid.AddRow("frames in / results out", $"{Count(job.FramesIn)} / {Count(job.ResultsOut)}");
            grid.AddRow("skipped / failed", $"{Count(job.Skipped)} / {Count(job.Failed)}");
            grid.AddRow("throughput", $"{job.FramesPerSecond.ToString("0.0", CultureInfo.InvariantCulture)} frames/s");
            grid.AddRow("latency p50 / p95", string.Create(CultureInfo.InvariantCulture, $"{job.LatencyP50Ms:0} / {job.LatencyP95Ms:0} ms"));
            grid.AddRow("plan", job.Plan.Count == 0 ? "none live" : Markup.Escape(string.Join("\n", job.Plan)));
            context.Console.Write(grid);
            return 0;
        }).GetAwaiter().GetResult()));
        return command;
    }

    private static Command Stop(CliContext context)
    {
        var join = new JoinOptions();
        var name = NameOption();
        var wait = new Option<double>("--wait") { Description = "Seconds to wait for the frames in flight to drain (0: do not wait).",
            DefaultValueFactory = _ => 60 };
        var command = new Command("stop", "Stop a job: what is in flight drains first, then the job's stages stop.") { name, wait };
        join.AddTo(command);
        command.SetAction(parse => context.Guard(() => WithClusterAsync(join, parse, "job client", async node =>
        {
            var jobName = parse.GetValue(name)!;
            var answer = await Ask<JobStopping>(node, new StopJob(jobName), TimeSpan.FromSeconds(15), "stop");
            if (answer.Error.Length > 0)
            {
                throw new PipelineInputException(answer.Error);
            }

            var deadline = DateTime.UtcNow.AddSeconds(Math.Max(0, parse.GetValue(wait)));
            var job = await Find(node, jobName);
            while (!JobStates.IsOver(job.State) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
                job = await Find(node, jobName);
            }

            var (framesIn, resultsOut, failed) = (Count(job.FramesIn), Count(job.ResultsOut), Count(job.Failed));
            context.Console.MarkupLineInterpolated(
                $"job [bold]{jobName}[/] {job.State}: {framesIn} frames in, {resultsOut} results out, {failed} failed");
            return 0;
        }).GetAwaiter().GetResult()));
        return command;
    }

    private static Option<string> NameOption()
        => new("--name") { Description = "The job's name: 1 to 64 letters, digits, '-' or '_'.", Required = true };

    private static async Task<JobStatus> Find(PipelineNode node, string name)
    {
        var jobs = (await Ask<JobList>(node, ListJobs.Instance, TimeSpan.FromSeconds(15), "status")).Jobs;
        return jobs.FirstOrDefault(j => j.Name == name)
            ?? throw new PipelineInputException($"There is no job named {name}; pipeline job list shows the jobs there are.");
    }

    private static async Task<T> Ask<T>(PipelineNode node, object message, TimeSpan timeout, string verb)
    {
        try
        {
            return await node.Jobs.Ask<T>(message, timeout);
        }
        catch (AskTimeoutException)
        {
            throw new PipelineInputException(
                $"The job registry did not answer the {verb} within {timeout.TotalSeconds:0} s; is a node with the coordinator role up?");
        }
    }

    private static async Task<int> WithClusterAsync(JoinOptions join, ParseResult parse, string name, Func<PipelineNode, Task<int>> body)
    {
        var node = await ClientNode.JoinAsync(
            parse.GetValue(join.Seed)!,
            parse.GetValue(join.Host),
            parse.GetValue(join.PublicHost),
            parse.GetValue(join.Port),
            TimeSpan.FromSeconds(parse.GetValue(join.JoinTimeout)),
            name,
            join.Transport.Read(parse));
        await using (node)
        {
            return await body(node);
        }
    }

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>How a verb joins the cluster: the seed, and the address it is reached at when the cluster is on other machines.</summary>
    private sealed class JoinOptions
    {
        public Option<string> Seed { get; } = new("--seed") { Description = "A seed node of the cluster, e.g. "
            + "akka.ssl.tcp://pipeline@10.0.0.10:4053.", Required = true };

        public ClientTransport Transport { get; } = new();

        public Option<string?> Host { get; } = new("--host") { Description = "Address to bind (default: the one that routes to the seed)." };

        public Option<string?> PublicHost { get; } = new("--public-host") { Description = "Address the cluster reaches this command at, "
            + "behind NAT." };

        public Option<int> Port { get; } = new("--port") { Description = "Port to bind (0: any free one).", DefaultValueFactory = _ => 0 };

        public Option<double> JoinTimeout { get; } = new("--join-timeout") { Description = "Seconds to wait to join the cluster.",
            DefaultValueFactory = _ => 20 };

        public void AddTo(Command command)
        {
            command.Options.Add(Seed);
            command.Options.Add(Host);
            command.Options.Add(PublicHost);
            command.Options.Add(Port);
            command.Options.Add(JoinTimeout);
            Transport.AddTo(command);
        }

        /// <summary>How the user joined, to repeat in a command line this verb suggests.</summary>
        public string TransportArguments(ParseResult parse) =>
            parse.GetValue(Transport.Tls) is { Length: > 0 } folder ? $"--tls {folder}" : "--insecure";
    }
}
