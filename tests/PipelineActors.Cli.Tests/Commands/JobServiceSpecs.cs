using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PipelineActors.Harness;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// Jobs on node services, as a user runs them: <c>pipeline-node</c> processes started one by one with their roles and
/// seeds (none a child of a run), and <c>pipeline job</c> processes that submit, follow and stop jobs over real sockets.
/// The results file is read back and every frame checked against the whole model.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class JobServiceSpecs : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    private readonly ITestOutputHelper _output;
    private readonly string _folder = Directory.CreateTempSubdirectory("job-services-").FullName;
    private readonly List<NodeProcess> _nodes = [];
    private readonly List<int> _ports = [];
    private readonly string _model;
    private readonly PreparedModel _whole;
    private readonly TestCertificates _certificates = new();
    private readonly string _clientTls;
    private string _seed = string.Empty;

    public JobServiceSpecs(ITestOutputHelper output)
    {
        _output = output;
        _model = Path.Combine(_folder, "squeezenet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("squeezenet"), _model);
        _whole = JobBuilder.Prepare(_model, null, 1, Path.Combine(_folder, "oracle"));
        // Node services run over TLS, as deployed; the job verbs join with a certificate for the monitor role.
        _clientTls = _certificates.Issue("monitor");
    }

    [Fact]
    public async Task A_job_submitted_to_three_node_services_survives_a_worker_kill_with_every_frame_once_in_order_equal_to_the_whole_model()
    {
        var coordinator = StartNode("coordinator,worker");
        var worker = StartNode("worker");
        StartNode("ingest");
        var results = Path.Combine(Directory.CreateDirectory(Path.Combine(_folder, "results")).FullName, "clip.jsonl");
        const int frames = 240;

        var submit = await Cli("job", "submit", "--name", "clip", "--model", _model, "--source", "synthetic", "--frames", $"{frames}", "--fps", "20",
            "--results", results);
        Assert.True(submit.ExitCode == 0, submit.Error + submit.Output);
        Assert.Contains("job clip submitted", submit.Output, StringComparison.Ordinal);

        // A worker of the live plan dies mid-stream.
        await WaitForStatus("clip", s => s.GetProperty("resultsOut").GetInt64() >= 40, "40 results before the kill");
        var killedAt = DateTimeOffset.UtcNow;
        worker.Kill();
        var status = await WaitForStatus("clip", s => s.GetProperty("state").GetString() == "finished", "the job to finish");

        Assert.Equal(frames, status.GetProperty("framesIn").GetInt64());
        Assert.Equal(frames, status.GetProperty("resultsOut").GetInt64());
        Assert.Equal(0, status.GetProperty("failed").GetInt64());
        var lines = ReadResults(results);
        AssertEveryFrameOnceInOrderAndCorrect(lines, 0, frames);
        _output.WriteLine($"longest gap between results after the worker kill: {LongestGapMs(lines, killedAt):0} ms");
        Assert.False(coordinator.HasExited);

        // The job is listed as finished, with its figures.
        var list = await Cli("job", "list", "--json");
        Assert.True(list.ExitCode == 0, list.Error);
        using var jobs = JsonDocument.Parse(list.Output);
        var listed = Assert.Single(jobs.RootElement.EnumerateArray());
        Assert.Equal(("clip", "finished"), (listed.GetProperty("name").GetString(), listed.GetProperty("state").GetString()));
    }

    [Fact]
    public async Task Two_jobs_share_two_workers_and_stopping_one_mid_stream_leaves_the_other_complete()
    {
        StartNode("coordinator,worker");
        StartNode("worker");
        StartNode("ingest");
        var (kept, stopped) = (Path.Combine(_folder, "kept.jsonl"), Path.Combine(_folder, "stopped.jsonl"));
        const int frames = 160;

        var first = await Cli("job", "submit", "--name", "kept", "--model", _model, "--frames", $"{frames}", "--fps", "15", "--results", kept);
        Assert.True(first.ExitCode == 0, first.Error + first.Output);
        var second = await Cli("job", "submit", "--name", "halted", "--model", _model, "--fps", "15", "--results", stopped);
        Assert.True(second.ExitCode == 0, second.Error + second.Output);

        // The second job has no frame limit: it runs until stopped.
        await WaitForStatus("halted", s => s.GetProperty("resultsOut").GetInt64() >= 30, "30 results of the job to stop");
        var stop = await Cli("job", "stop", "--name", "halted", "--wait", "60");
        Assert.True(stop.ExitCode == 0, stop.Error + stop.Output);
        Assert.Contains("job halted stopped", stop.Output, StringComparison.Ordinal);
        var halted = await WaitForStatus("halted", s => s.GetProperty("state").GetString() == "stopped", "the stopped job's state");

        // What was in flight drained: every frame it took in has its result, once, in order.
        var haltedLines = ReadResults(stopped);
        AssertEveryFrameOnceInOrderAndCorrect(haltedLines, 0, (int)halted.GetProperty("framesIn").GetInt64());

        var done = await WaitForStatus("kept", s => s.GetProperty("state").GetString() == "finished", "the other job to finish");
        Assert.Equal((frames, 0L), (done.GetProperty("resultsOut").GetInt64(), done.GetProperty("failed").GetInt64()));
        AssertEveryFrameOnceInOrderAndCorrect(ReadResults(kept), 0, frames);

        // Stopping what is over, or what does not exist, is one sentence and a non-zero exit.
        var again = await Cli("job", "stop", "--name", "nosuchjob");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("There is no job named nosuchjob", again.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_submitted_with_pool2_runs_its_rewritten_stages_on_the_node_services_with_every_frame_once_in_order()
    {
        // The layer is rewritten into the stage files on the ingest node; the workers fetch those files by their SHA-256.
        StartNode("coordinator,worker");
        StartNode("worker");
        StartNode("ingest");
        var results = Path.Combine(_folder, "pool2.jsonl");
        const int frames = 60;

        var submit = await Cli("job", "submit", "--name", "pooled", "--model", _model, "--frames", $"{frames}", "--fps", "20", "--codec", "pool2",
            "--results", results);
        Assert.True(submit.ExitCode == 0, submit.Error + submit.Output);
        var status = await WaitForStatus("pooled", s => s.GetProperty("state").GetString() is "finished" or "failed", "the pool2 job to end");

        _output.WriteLine($"pool2 job: {status}");
        Assert.Equal("finished", status.GetProperty("state").GetString());
        Assert.Equal((frames, frames, 0L), (status.GetProperty("framesIn").GetInt64(), status.GetProperty("resultsOut").GetInt64(),
            status.GetProperty("failed").GetInt64()));
        var ids = ReadResults(results).Select(l => l.GetProperty("frame").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, frames).Select(i => (long)i), ids);
    }

    [Fact]
    public async Task The_coordinator_killed_while_it_hosts_a_stage_loses_no_frame_and_fails_none()
    {
        var first = StartNode("coordinator,worker");
        StartNode("coordinator,worker");
        var secondSeed = SeedOf(1);
        StartNode("ingest");
        var results = Path.Combine(_folder, "handover.jsonl");
        const int frames = 240;

        var submit = await Cli("job", "submit", "--name", "handover", "--model", _model, "--frames", $"{frames}", "--fps", "20",
            "--results", results);
        Assert.True(submit.ExitCode == 0, submit.Error + submit.Output);
        var before = await WaitForStatus("handover", s => s.GetProperty("resultsOut").GetInt64() >= 40, "40 results before the kill");
        Assert.Contains(before.GetProperty("plan").EnumerateArray(),
            p => p.GetString()!.Contains($"127.0.0.1{PortOf(first)}", StringComparison.Ordinal));

        // The oldest coordinator holds the supervisor and the job registry, and hosts a stage of the live plan.
        var killedAt = DateTimeOffset.UtcNow;
        first.Kill();
        _seed = secondSeed;
        var status = await WaitForStatus("handover", s => s.GetProperty("state").GetString() == "finished",
            "the job to finish on the other coordinator");

        Assert.Equal((frames, frames, 0L),
            (status.GetProperty("framesIn").GetInt64(), status.GetProperty("resultsOut").GetInt64(), status.GetProperty("failed").GetInt64()));
        var lines = ReadResults(results);
        AssertEveryFrameOnceInOrderAndCorrect(lines, 0, frames);
        _output.WriteLine($"longest gap between results after the coordinator kill: {LongestGapMs(lines, killedAt):0} ms");
    }

    [Fact]
    public async Task A_network_camera_job_moves_to_another_ingest_node_when_its_node_is_killed_and_no_id_appears_twice()
    {
        StartNode("coordinator,worker");
        StartNode("ingest");
        StartNode("ingest");
        var port = TestPorts.Free();
        using var camera = MjpegCamera(port, rate: 10);
        var results = Path.Combine(_folder, "camera.jsonl");
        var model = RepositoryFiles.Model("blazeface-back-256.onnx");

        var submit = await Cli("job", "submit", "--name", "door", "--model", model, "--source", $"http://127.0.0.1:{port}/feed.mjpg", "--fps", "10",
            "--results", results);
        Assert.True(submit.ExitCode == 0, submit.Error + submit.Output);
        var before = await WaitForStatus("door", s => s.GetProperty("resultsOut").GetInt64() >= 20, "20 camera results");
        var node = before.GetProperty("node").GetString()!;
        var victim = _nodes.Single(n => n.Name != "node-0" && node.EndsWith(PortOf(n), StringComparison.Ordinal));
        var lastBefore = ReadResults(results).Max(l => l.GetProperty("frame").GetInt64());

        var killedAt = DateTimeOffset.UtcNow;
        victim.Kill();
        var moved = await WaitForStatus(
            "door",
            s => s.GetProperty("node").GetString() is { Length: > 0 } n && n != node && s.GetProperty("state").GetString() == "running"
                && ReadResults(results).Count(l => l.GetProperty("frame").GetInt64() > lastBefore + 1) >= 20,
            "20 results from the other ingest node");
        var stop = await Cli("job", "stop", "--name", "door");
        Assert.True(stop.ExitCode == 0, stop.Error + stop.Output);

        var ids = ReadResults(results).Select(l => l.GetProperty("frame").GetInt64()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count()); // no id twice
        Assert.True(ids.Zip(ids.Skip(1)).All(p => p.Second > p.First), "ids only grow in the results file");
        var resumedAt = ids.First(id => id > lastBefore);
        Assert.True(moved.GetProperty("skipped").GetInt64() > 0, "the frames the camera sent while no node listened count as skipped");
        var lines = ReadResults(results);
        var firstAfter = lines.First(l => l.GetProperty("frame").GetInt64() == resumedAt);
        var delivered = (firstAfter.GetProperty("capture_us").GetInt64() / 1000.0) + firstAfter.GetProperty("latency_ms").GetDouble();
        var movedTo = moved.GetProperty("node").GetString();
        _output.WriteLine($"ingest node killed: first result from {movedTo} {delivered - killedAt.ToUnixTimeMilliseconds():0} ms after the kill; "
            + $"ids resumed at {resumedAt} after {lastBefore}");
    }

    [Fact]
    public async Task A_job_submitted_with_a_jpeg_first_hop_runs_on_node_services_and_blazeface_finds_the_faces()
    {
        // That the frames cross as JPEG is RunFirstHopSpecs' (a run is a job on its own cluster); this is the submitted path:
        // the flag on the wire in the spec, the job runner's plan on an ingest node that is not the submitter.
        StartNode("coordinator,worker");
        StartNode("ingest");
        var pictures = Directory.CreateDirectory(Path.Combine(_folder, "faces")).FullName;
        foreach (var file in new[] { "basketball1.png", "left06.jpg", "messi5.jpg", "right06.jpg" })
        {
            File.Copy(Path.Combine("/usr/share/doc/opencv-doc/examples/data", file), Path.Combine(pictures, file));
        }

        var results = Path.Combine(_folder, "faces.jsonl");
        var submit = await Cli("job", "submit", "--name", "faces", "--model", RepositoryFiles.Model("blazeface-back-256.onnx"),
            "--source", $"images:{pictures}", "--frames", "4", "--first-hop", "jpeg:90", "--results", results);
        Assert.True(submit.ExitCode == 0, submit.Error + submit.Output);
        await WaitForStatus("faces", s => s.GetProperty("state").GetString() == "finished", "the job to finish");

        var lines = ReadResults(results);
        Assert.Equal([0L, 1, 2, 3], lines.Select(l => l.GetProperty("frame").GetInt64()));
        // Each of these pictures has one face BlazeFace finds at >= 0.73 on raw pixels (RunFirstHopSpecs compares the boxes).
        Assert.All(lines, l => Assert.Contains(
            l.GetProperty("blazeface").GetProperty("faces").EnumerateArray(), f => f.GetProperty("score").GetDouble() >= 0.6));
    }

    [Fact]
    public async Task A_job_declared_in_an_ingest_nodes_configuration_runs_on_its_own_and_publishes_every_result_to_mqtt_once()
    {
        using var broker = MosquittoBroker.Start("camera", "s3cret");
        await using var subscriber = await MqttResultSubscriber.ConnectAsync(broker, "pipeline/jobs/gate/results");
        var results = Path.Combine(_folder, "gate.jsonl");
        var config = Path.Combine(_folder, "ingest.conf");
        File.WriteAllText(config, $$"""
            pipeline.mqtt { host = "{{broker.Host}}", port = {{broker.Port}}, username = "camera", password = "s3cret" }
            pipeline.jobs {
              gate { model = "{{_model}}", source = "synthetic", frames = 60, fps = 15, results = ["{{results}}", "mqtt"] }
            }
            """);
        StartNode("coordinator,worker");
        StartNode("ingest", "--config", config);
        const int frames = 60;

        // Nobody submits it: the ingest node declares it when it is up.
        var status = await WaitForStatus("gate", s => s.GetProperty("state").GetString() == "finished", "the declared job to finish");
        Assert.Equal((frames, 0L), (status.GetProperty("resultsOut").GetInt64(), status.GetProperty("failed").GetInt64()));
        AssertEveryFrameOnceInOrderAndCorrect(ReadResults(results), 0, frames);
        Assert.True(await subscriber.WaitForAsync(m => m.Count >= frames, TimeSpan.FromSeconds(30)), $"{subscriber.Messages.Count} MQTT results");
        var published = subscriber.Messages.Select(m => JsonDocument.Parse(m).RootElement.GetProperty("frame").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, frames).Select(i => (long)i), published);
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            if (!node.HasExited)
            {
                node.Kill();
            }

            node.Dispose();
        }

        _certificates.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A node may still hold a file for a moment; the temp folder is cleaned by the system.
        }
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_camera_password_shows_in_no_status_list_or_node_output_the_jobs_file_is_0600_and_a_missing_variable_fails_the_job()
    {
        StartNode("coordinator,ingest,worker");
        var port = TestPorts.Free(); // nothing listens there: ffmpeg fails to connect, and its errors quote the URL
        var model = RepositoryFiles.Model("blazeface-back-256.onnx");
        const string Secret = "s3cretPa55";
        const string Unset = "PA_JOB_SPEC_UNSET_CAMERA_PASS";

        var door = await Cli("job", "submit", "--name", "door", "--model", model, "--source", $"rtsp://admin:{Secret}@127.0.0.1:{port}/stream",
            "--fps", "10", "--results", Path.Combine(_folder, "door.jsonl"));
        Assert.True(door.ExitCode == 0, door.Error + door.Output);
        var gate = await Cli("job", "submit", "--name", "gate", "--model", model, "--source", $"rtsp://admin:${{{Unset}}}@127.0.0.1:{port}/stream",
            "--fps", "10", "--results", Path.Combine(_folder, "gate.jsonl"));
        Assert.True(gate.ExitCode == 0, gate.Error + gate.Output);

        // The variable is looked up on the ingest node only, and its absence ends that job with one sentence naming it.
        var clock = Stopwatch.StartNew();
        JsonElement failed = default;
        while (clock.Elapsed < Bound)
        {
            var status = await Cli("job", "status", "--name", "gate", "--json");
            if (status.ExitCode == 0 && JsonDocument.Parse(status.Output).RootElement.Clone() is var json
                && json.GetProperty("state").GetString() == "failed")
            {
                failed = json;
                break;
            }

            await Task.Delay(1000);
        }

        Assert.True(failed.ValueKind == JsonValueKind.Object, "job gate did not fail for its missing variable in time");
        var detail = failed.GetProperty("detail").GetString()!;
        Assert.Contains($"environment variable {Unset}, which is not set on ingest node", detail, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', detail);

        // Let ffmpeg fail on the credentialed URL a few times, then look everywhere a user does.
        await WaitForStatusAny("door", s => s.GetProperty("node").GetString() is { Length: > 0 });
        await Task.Delay(TimeSpan.FromSeconds(8));
        var shown = new List<CliResult>
        {
            await Cli("job", "status", "--name", "door", "--json"), await Cli("job", "status", "--name", "door"),
            await Cli("job", "list", "--json"), await Cli("job", "list"), door,
        };
        foreach (var answer in shown)
        {
            Assert.DoesNotContain(Secret, answer.Output + answer.Error, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(Secret, _nodes[0].Output, StringComparison.Ordinal);
        var jobs = Path.Combine(_folder, "state-0", "jobs.json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(jobs));
        Assert.Contains("${" + Unset + "}", File.ReadAllText(jobs), StringComparison.Ordinal);
    }

    private async Task WaitForStatusAny(string job, Func<JsonElement, bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            var status = await Cli("job", "status", "--name", job, "--json");
            if (status.ExitCode == 0 && condition(JsonDocument.Parse(status.Output).RootElement.Clone()))
            {
                return;
            }

            await Task.Delay(1000);
        }

        DumpNodes();
        Assert.Fail($"job {job} was never placed");
    }

    private string SeedOf(int index) => $"akka.ssl.tcp://pipeline@127.0.0.1:{_ports[index]}";

    private string PortOf(NodeProcess node) => $":{_ports[_nodes.IndexOf(node)]}";

    /// <summary>An HTTP MJPEG camera served by ffmpeg that takes the next viewer when one goes (as a camera does).</summary>
    private static CameraProcess MjpegCamera(int port, int rate)
    {
        var script = $"while true; do ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=320x240:rate={rate} -q:v 5 "
            + $"-f mpjpeg -listen 1 http://127.0.0.1:{port}/feed.mjpg; done";
        var process = Process.Start(new ProcessStartInfo("bash", ["-c", script]) { UseShellExecute = false, RedirectStandardError = true })!;
        return new CameraProcess(process);
    }

    /// <summary>Starts a node service with its own cache and state folder; the first one is the seed.</summary>
    private NodeProcess StartNode(string roles, params string[] extra)
    {
        var index = _nodes.Count;
        var port = TestPorts.Free();
        _ports.Add(port);
        if (index == 0)
        {
            _seed = $"akka.ssl.tcp://pipeline@127.0.0.1:{port}";
        }

        // Three TLS services, their clients and a model fetch share 2 cores here: with the product's 1 s acceptable pause,
        // heartbeats starved for a moment made two services lose each other while both reached the third, and the
        // split-brain resolver of the time downed both as indirectly connected (seen twice in CI; the downing judge now
        // drops only the lower-ranked of such a pair). These specs check exactly-once delivery and failover, not
        // detection speed, so their services still allow a 2 s pause: a starved heartbeat is no failure to them.
        var config = Path.Combine(_folder, $"node-{index}.conf");
        var given = Array.IndexOf(extra, "--config");
        File.WriteAllText(config, "akka.cluster.failure-detector.acceptable-heartbeat-pause = 2s\n"
            + (given >= 0 ? File.ReadAllText(extra[given + 1]) : string.Empty));
        var rest = given >= 0 ? extra.Where((_, i) => i != given && i != given + 1).ToArray() : extra;
        var node = NodeProcess.Start($"node-{index}", [
            "--roles", roles, "--port", port.ToString(CultureInfo.InvariantCulture), "--seeds", _seed, "--tls", _certificates.Issue(roles.Split(',')),
            "--model-cache", Path.Combine(_folder, $"cache-{index}"), "--state", Path.Combine(_folder, $"state-{index}"),
            "--config", config, .. rest,
        ]);
        _nodes.Add(node);
        return node;
    }

    private async Task<JsonElement> WaitForStatus(string job, Func<JsonElement, bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        var last = string.Empty;
        while (clock.Elapsed < Bound)
        {
            var status = await Cli("job", "status", "--name", job, "--json");
            if (status.ExitCode == 0)
            {
                last = status.Output;
                var json = JsonDocument.Parse(status.Output).RootElement.Clone();
                if (condition(json))
                {
                    return json;
                }

                if (json.GetProperty("state").GetString() == "failed")
                {
                    DumpNodes();
                    Assert.Fail($"job {job} failed while waiting for {what}: {status.Output}");
                }
            }
            else
            {
                last = status.Error;
            }

            await Task.Delay(1000);
        }

        DumpNodes();
        Assert.Fail($"timed out waiting for {what}; last status: {last}");
        return default;
    }

    private void DumpNodes()
    {
        foreach (var node in _nodes)
        {
            _output.WriteLine($"--- {node.Name}\n{Tail(node.Output)}");
        }
    }

    private Task<CliResult> Cli(params string[] arguments) =>
        CliProcess.Run([.. arguments, "--seed", _seed, "--tls", _clientTls], TimeSpan.FromSeconds(90));

    private static List<JsonElement> ReadResults(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    /// <summary>Frames first..first+count-1, once each, in order, none failed, each output's summary that of the whole model.</summary>
    private void AssertEveryFrameOnceInOrderAndCorrect(IReadOnlyList<JsonElement> lines, long first, int count)
    {
        var ids = lines.Select(l => l.GetProperty("frame").GetInt64()).ToList();
        Assert.True(
            ids.SequenceEqual(Enumerable.Range(0, count).Select(i => first + i)),
            $"{ids.Count} results, ids {string.Join(",", ids.Take(5))}..{string.Join(",", ids.TakeLast(5))}; {count} expected from {first}");
        using var runner = new OrtSession(Google.Protobuf.MessageExtensions.ToByteArray(_whole.Analysis.Graph.Model));
        foreach (var line in lines)
        {
            Assert.False(line.TryGetProperty("failed", out _), line.ToString());
            var id = line.GetProperty("frame").GetInt64();
            var inputs = SyntheticSource.Pattern(_whole.Inputs, id).ToDictionary(t => t.Name, t => new HostTensor(t.Info, t.Data));
            var outputs = runner.Run(inputs).Values.ToList();
            using var expected = JsonDocument.Parse(ResultLine.Format(new FrameOutcome(id, "synthetic", 0, 0, outputs, null)));
            foreach (var tensor in expected.RootElement.GetProperty("outputs").EnumerateObject())
            {
                var actual = line.GetProperty("outputs").GetProperty(tensor.Name);
                Assert.Equal(tensor.Value.GetProperty("shape").ToString(), actual.GetProperty("shape").ToString());
                Assert.Equal(tensor.Value.GetProperty("argmax").GetInt32(), actual.GetProperty("argmax").GetInt32());
                foreach (var field in new[] { "min", "max", "mean" })
                {
                    var (e, a) = (tensor.Value.GetProperty(field).GetDouble(), actual.GetProperty(field).GetDouble());
                    Assert.True(Math.Abs(e - a) <= 1e-4 * Math.Max(1, Math.Abs(e)), $"frame {id} {tensor.Name} {field}: {a} against {e}");
                }
            }
        }
    }

    /// <summary>The longest pause between two results delivered after a moment (a result's delivery is its capture plus its latency).</summary>
    private static double LongestGapMs(IReadOnlyList<JsonElement> lines, DateTimeOffset after)
    {
        var delivered = lines
            .Select(l => (l.GetProperty("capture_us").GetInt64() / 1000.0) + l.GetProperty("latency_ms").GetDouble())
            .Where(ms => ms >= after.ToUnixTimeMilliseconds() - 1000)
            .Order()
            .ToList();
        return delivered.Zip(delivered.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max();
    }

    private static string Tail(string text) => text.Length <= 6000 ? text : text[^6000..];
}

/// <summary>The camera's shell loop and its ffmpeg, killed together.</summary>
internal sealed class CameraProcess(Process process) : IDisposable
{
    public void Dispose()
    {
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        process.Dispose();
    }
}
