using System.Diagnostics;
using Akka.Cluster;
using Google.Protobuf;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.ControlPath.Membership.Downing;
using Akka.Actor;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.TestSupport;

namespace PipelineActors.Integration.Tests;

/// <summary>
/// Node processes started from the built binary on 127.0.0.1: a worker SIGKILLed mid-stream, a
/// worker joining mid-stream, a worker leaving gracefully, and the coordinator's node killed.
/// Each asserts nothing lost, nothing twice, everything in order, every result equal to the
/// whole model's output for that frame, and recovery within a generous bound.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class MultiProcessSpecs : IAsyncLifetime
{
    private static readonly TimeSpan RunBound = TimeSpan.FromMinutes(2);
    private readonly ITestOutputHelper _output;
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-procs-").FullName;
    private readonly List<NodeProcess> _processes = [];
    // How each process was started, so one the downing judge removed in a start-up flap starts again, as its service would.
    private readonly List<(string Name, List<string> Args)> _starts = [];
    private readonly List<PipelineNode> _nodes = [];
    // Over TLS, as deployed: the head in this process, the workers node processes with their own TLS folders.
    private readonly TestCertificates _certificates = new();
    private PreparedModel _model = null!;

    public MultiProcessSpecs(ITestOutputHelper output) => _output = output;

    public Task InitializeAsync()
    {
        var path = Path.Combine(_folder, "squeezenet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("squeezenet"), path);
        _model = JobBuilder.Prepare(path, null, 3, Path.Combine(_folder, "store"));
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_worker_killed_mid_stream_is_found_by_the_failure_detector_and_no_frame_is_lost()
    {
        var head = await StartHead([Roles.Coordinator, Roles.Ingest]);
        for (var i = 0; i < 3; i++)
        {
            StartWorker(head.SeedUri, [Roles.Worker]);
        }

        await LocalCluster.WaitForMembers(head.System, 3, _processes, TimeSpan.FromSeconds(60), Relaunch, _output.WriteLine);
        var (session, writer) = Stream(head, frames: 160);
        await WaitFor(() => writer.Snapshot().Count >= 30, "30 results before the kill");
        var ingest = await session.IngestStatsAsync();
        var victimNode = ingest.Plan!.Placements[1].Node;
        var victim = _processes.Single(p => LocalCluster.NodeOf(p) == victimNode);
        var killedAt = Stopwatch.GetTimestamp();
        victim.Kill();

        await Finish(session);
        var sink = await session.SinkStatsAsync();
        ingest = await session.IngestStatsAsync();
        var recoveryEpoch = ingest.Plan!.Epoch;
        Assert.True(recoveryEpoch > 1, "the plan changed after the kill");
        var firstViaReplacement = sink.Deliveries.First(d => d.Ticks > killedAt && d.Epoch > 1);
        var recovery = TimeSpan.FromSeconds((firstViaReplacement.Ticks - killedAt) / (double)Stopwatch.Frequency);
        _output.WriteLine($"kill -> first result through the replacement: {recovery.TotalMilliseconds:0} ms");
        Assert.True(recovery < TimeSpan.FromSeconds(20), $"recovery took {recovery}");
        AssertExactlyOnceInOrderAndCorrect(writer, 160);
    }

    [Fact]
    public async Task A_worker_joining_mid_stream_gets_a_stage_and_no_frame_is_lost()
    {
        var head = await StartHead([Roles.Coordinator, Roles.Ingest]);
        StartWorker(head.SeedUri, [Roles.Worker]);
        await LocalCluster.WaitForMembers(head.System, 1, _processes, TimeSpan.FromSeconds(60), Relaunch, _output.WriteLine);
        var (session, writer) = Stream(head, frames: 240, framesPerSecond: 30);
        await WaitFor(() => writer.Snapshot().Count >= 20, "20 results on one worker");
        Assert.Equal(1, (await session.IngestStatsAsync()).Plan!.Parts);
        StartWorker(head.SeedUri, [Roles.Worker]);
        await WaitFor(async () => (await session.IngestStatsAsync()).Plan!.Parts == 2, "the plan to use the new worker");
        var ingest = await session.IngestStatsAsync();
        Assert.False(ingest.SourceEnded, "the new worker took its stage while frames were still streaming");
        await Finish(session);
        AssertExactlyOnceInOrderAndCorrect(writer, (int)(await session.IngestStatsAsync()).Accepted);
    }

    [Fact]
    public async Task A_worker_leaving_gracefully_hands_its_stage_over_and_no_frame_is_lost()
    {
        var head = await StartHead([Roles.Coordinator, Roles.Ingest]);
        StartWorker(head.SeedUri, [Roles.Worker]);
        StartWorker(head.SeedUri, [Roles.Worker]);
        await LocalCluster.WaitForMembers(head.System, 2, _processes, TimeSpan.FromSeconds(60), Relaunch, _output.WriteLine);
        var (session, writer) = Stream(head, frames: 240, framesPerSecond: 30);
        await WaitFor(() => writer.Snapshot().Count >= 30, "30 results before the leave");
        var plan = (await session.IngestStatsAsync()).Plan!;
        var leaving = _processes.Single(p => LocalCluster.NodeOf(p) == plan.Placements[1].Node);
        Assert.True(await leaving.StopAsync(TimeSpan.FromSeconds(30)), "the node left and exited on SIGTERM");
        await Finish(session);
        Assert.DoesNotContain(Akka.Cluster.Cluster.Get(head.System).State.Members,
            m => m.Address.Port.ToString() == plan.Placements[1].Node.Split(':')[1] && m.Status == MemberStatus.Up);
        Assert.True((await session.IngestStatsAsync()).Plan!.Epoch > plan.Epoch, "the stage moved to the worker that stayed");
        AssertExactlyOnceInOrderAndCorrect(writer, (int)(await session.IngestStatsAsync()).Accepted);
    }

    [Fact]
    public async Task When_the_coordinators_node_dies_the_supervisor_moves_and_frames_keep_flowing()
    {
        // The oldest coordinator is a process of its own; a worker carries the coordinator role too.
        var coordinator = StartWorker(null, [Roles.Coordinator], port: TestPorts.Free());
        var seed = $"akka.ssl.tcp://{PipelineConfig.SystemName}@127.0.0.1:{coordinator.Port}";
        await Task.Delay(TimeSpan.FromSeconds(2));
        var head = await StartHead([Roles.Ingest], seed);
        StartWorker(seed, [Roles.Worker, Roles.Coordinator]);
        StartWorker(seed, [Roles.Worker]);
        await LocalCluster.WaitForMembers(head.System, 2, _processes, TimeSpan.FromSeconds(60), Relaunch, _output.WriteLine);
        var (session, writer) = Stream(head, frames: 300, framesPerSecond: 30);
        await WaitFor(() => writer.Snapshot().Count >= 30, "30 results before the coordinator dies");
        await WaitFor(async () => (await session.IngestStatsAsync()).Plan?.Placements.Select(p => p.Node).Distinct().Count() == 2,
            "a plan over both workers");
        // Under load the second worker may be ready a moment after the first plan went live, and the rebalance onto it
        // replays what was in flight: count only what happens from the kill on.
        var before = await session.IngestStatsAsync();
        var delivered = writer.Snapshot().Count;
        coordinator.Process.Kill();
        var killedAt = Stopwatch.GetTimestamp();

        // Frames flow on the existing wiring while the singleton moves.
        await WaitFor(() => writer.Snapshot().Count >= delivered + 20, "20 more results right after the coordinator died");
        var flowing = TimeSpan.FromSeconds((Stopwatch.GetTimestamp() - killedAt) / (double)Stopwatch.Frequency);
        _output.WriteLine($"20 more results {flowing.TotalMilliseconds:0} ms after the coordinator died");

        // The singleton restarts on the other coordinator node and adopts the running plan from
        // the workers' reports instead of redeploying it.
        await WaitFor(async () => (await session.IngestStatsAsync()).Events.Any(e => e.Text.Contains("adopted", StringComparison.Ordinal)),
            "the new supervisor to adopt the plan");
        var adoptedAfter = TimeSpan.FromSeconds((Stopwatch.GetTimestamp() - killedAt) / (double)Stopwatch.Frequency);
        _output.WriteLine($"plan adopted {adoptedAfter.TotalMilliseconds:0} ms after the coordinator died");
        await Finish(session);
        var ingest = await session.IngestStatsAsync();
        foreach (var e in ingest.Events)
        {
            _output.WriteLine(e.Text);
        }

        Assert.Equal(before.Epoch, ingest.Epoch); // nothing was redeployed
        Assert.Equal(before.Replayed, ingest.Replayed);
        AssertExactlyOnceInOrderAndCorrect(writer, (int)ingest.Accepted);
    }

    [Fact]
    public async Task A_worker_paused_past_the_failure_detector_and_resumed_never_takes_the_ingest_node_down_with_it()
    {
        // The chaos soak's failure, on purpose: a worker SIGSTOPped past the acceptable heartbeat pause comes back
        // seeing the ingest unreachable while the ingest still sees it unreachable too. Akka's split-brain resolver
        // downed both as indirectly connected; the downing judge may drop the worker, never the ingest.
        var head = await StartHead([Roles.Coordinator, Roles.Ingest]);
        for (var i = 0; i < 2; i++)
        {
            StartWorker(head.SeedUri, [Roles.Worker]);
        }

        await LocalCluster.WaitForMembers(head.System, 2, _processes, TimeSpan.FromSeconds(60), Relaunch, _output.WriteLine);
        // Every member's views reach the head: the judge hears each worker speak, so none is taken for dead.
        await WaitFor(async () =>
        {
            var views = await head.System.ActorSelection(DowningActor.Path).Ask<ReachabilityViews>(GetReachabilityViews.Instance,
                TimeSpan.FromSeconds(5));
            return views.Views.Count >= 3;
        }, "views from every member at the head");

        var (session, writer) = Stream(head, frames: 1200, framesPerSecond: 20); // a minute of camera
        await WaitFor(() => writer.Snapshot().Count >= 20, "20 results before the first pause");
        var cluster = Cluster.Get(head.System);
        foreach (var seconds in new[] { 1.6, 2.4, 3.2, 4.0 })
        {
            var victim = _processes.Last(p => !p.HasExited);
            Assert.True(victim.Signal("STOP"), $"{victim.Name} could not be stopped");
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            victim.Signal("CONT");
            // Long enough for the judge to act on anything it saw (stable-after and a view interval, twice over).
            await Task.Delay(TimeSpan.FromSeconds(5));
            var fate = victim.HasExited ? "was downed and exited" : "stayed";
            _output.WriteLine($"paused {victim.Name} for {seconds} s: it {fate}; head {cluster.SelfMember.Status}");
            Assert.Equal(MemberStatus.Up, cluster.SelfMember.Status);
            if (_processes.Count(p => !p.HasExited) < 2)
            {
                StartWorker(head.SeedUri, [Roles.Worker]);
                await LocalCluster.WaitForMembers(head.System, 2, _processes.Where(p => !p.HasExited).ToList(), TimeSpan.FromSeconds(60));
            }
        }

        var delivered = writer.Snapshot().Count;
        await WaitFor(() => writer.Snapshot().Count >= delivered + 20, "20 more results after the last pause");
        await Finish(session);
        var ingest = await session.IngestStatsAsync();
        Assert.Equal(MemberStatus.Up, cluster.SelfMember.Status);
        AssertExactlyOnceInOrderAndCorrect(writer, (int)ingest.Accepted);
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }

        foreach (var p in _processes)
        {
            if (!p.HasExited)
            {
                _output.WriteLine($"--- {p.Name}\n{p.Output}");
            }

            p.Dispose();
        }

        _certificates.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private async Task<PipelineNode> StartHead(IReadOnlyList<string> roles, string? seed = null)
    {
        var node = PipelineNode.Start(
            new NodeOptions
            {
                Roles = roles,
                Seeds = seed is null ? [] : [seed],
                LogFile = Path.Combine(Path.GetTempPath(), $"pa-head-{Environment.ProcessId}-{_nodes.Count}.log"),
            },
            tls: _certificates.Tls([.. roles]));
        _nodes.Add(node);
        await node.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        return node;
    }

    private (NodeProcess Process, int Port) StartWorkerAt(string? seed, IReadOnlyList<string> roles, int port)
    {
        var args = new List<string>
        {
            "--roles", string.Join(",", roles), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--model-cache", Path.Combine(_folder, $"cache-{_processes.Count}"), "--tls", _certificates.Issue([.. roles]),
        };
        if (seed is not null)
        {
            args.AddRange(["--seeds", seed]);
        }
        else
        {
            args.AddRange(["--seeds", $"akka.ssl.tcp://{PipelineConfig.SystemName}@127.0.0.1:{port}"]);
        }

        var process = NodeProcess.Start($"node-{_processes.Count}", args);
        _starts.Add((process.Name, args));
        _processes.Add(process);
        return (process, port);
    }

    /// <summary>Starts node <paramref name="index"/> again with its first arguments (a service manager's restart).</summary>
    private NodeProcess Relaunch(int index) => NodeProcess.Start(_starts[index].Name, _starts[index].Args);

    private (NodeProcess Process, int Port) StartWorker(string? seed, IReadOnlyList<string> roles, int port = 0) => StartWorkerAt(seed, roles, port);

    private (IngestSession Session, CollectingResultWriter Writer) Stream(PipelineNode head, int frames, double framesPerSecond = 0)
    {
        var writer = new CollectingResultWriter();
        var settings = new IngestSettings(4, TimeSpan.FromSeconds(2), 6, 65536);
        var session = IngestSession.Start(head, _model, new SyntheticSource(_model.SourceInputs, framesPerSecond, frames, live: false),
            writer, settings, "test");
        return (session, writer);
    }

    private async Task Finish(IngestSession session)
    {
        var done = await Task.WhenAny(session.Completed, Task.Delay(RunBound));
        if (done != session.Completed)
        {
            var stats = await session.IngestStatsAsync();
            foreach (var e in stats.Events)
            {
                _output.WriteLine(e.Text);
            }

            Assert.Fail($"the stream did not finish within {RunBound}: {stats.Accepted} accepted, delivered through {stats.DeliveredThrough}");
        }
    }

    private void AssertExactlyOnceInOrderAndCorrect(CollectingResultWriter writer, int frames)
    {
        var outcomes = writer.Snapshot();
        WholeModelOracle.AssertExactlyOnceInOrder(outcomes, frames);
        WholeModelOracle.AssertMatchesWholeModel(_model, outcomes, everyOutput: true);
    }

    private static async Task WaitFor(Func<bool> condition, string what) => await WaitFor(() => Task.FromResult(condition()), what);

    private static async Task WaitFor(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > RunBound)
            {
                Assert.Fail($"timed out waiting for {what}");
            }

            await Task.Delay(50);
        }
    }

}
