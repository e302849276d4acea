using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using PipelineActors.Harness;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline-node --tls</c> services on 127.0.0.1 and who gets in: a node with a certificate from another CA and a node
/// with <c>--insecure</c> are never members; a member that claims worker without a certificate for it gets no stage and
/// no stage file; a client with the monitor role is refused model files that a proven worker gets. (A three-node TLS
/// cluster streaming a clip submitted with <c>pipeline job submit --tls</c> is every test of <see cref="JobServiceSpecs"/>.)
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TlsNodeServiceSpecs(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    private readonly string _folder = Directory.CreateTempSubdirectory("tls-services-").FullName;
    private readonly TestCertificates _certificates = new();
    private readonly List<NodeProcess> _nodes = [];
    private readonly List<PipelineNode> _inProcess = [];
    private readonly List<int> _ports = [];
    private string _model = string.Empty;
    private string _seed = string.Empty;
    private string _clientTls = string.Empty;

    public Task InitializeAsync()
    {
        _model = Path.Combine(_folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), _model);
        _clientTls = _certificates.Issue(Roles.Monitor);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_node_with_a_certificate_from_another_CA_and_a_node_with_insecure_are_never_members_of_the_TLS_cluster()
    {
        StartNode("coordinator,worker", _certificates);
        var observer = await JoinInProcess([Roles.Monitor], _certificates.Tls(Roles.Monitor));
        using var otherCa = new TestCertificates();
        var port = SeedPort();
        var foreign = StartNode("worker", otherCa);
        // Plain TCP at the TLS seed's port: the only seed a node with --insecure accepts is an akka.tcp:// one.
        _ports.Add(0);
        var plain = NodeProcess.Start("plain", [
            "--roles", "worker", "--insecure", "--seeds", $"akka.tcp://pipeline@127.0.0.1:{port}",
            "--model-cache", Path.Combine(_folder, "cache-plain"),
        ]);
        _nodes.Add(plain);

        // Every member the cluster ever shows in a generous window, seen from inside it.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(12))
        {
            foreach (var member in Akka.Cluster.Cluster.Get(observer.System).State.Members)
            {
                seen.Add($"{member.Address.Port}:{string.Join(",", member.Roles.Order(StringComparer.Ordinal))}");
            }

            await Task.Delay(200);
        }

        output.WriteLine($"members seen: {string.Join("; ", seen)}; foreign exited: {foreign.HasExited}; plain exited: {plain.HasExited}");
        Assert.Equal(2, seen.Count); // the seed and the observer
        Assert.Contains($"{port}:coordinator,worker", seen);
        Assert.Equal(2, Akka.Cluster.Cluster.Get(observer.System).State.Members.Count(m => m.Status == MemberStatus.Up));
        Assert.False(_nodes[0].HasExited, "the seed stays up");
    }

    [Fact]
    public async Task A_member_that_claims_worker_without_a_certificate_for_it_is_given_no_stage_and_no_stage_file()
    {
        StartNode("coordinator,ingest", _certificates);
        const int frames = 30;
        var results = Path.Combine(_folder, "gated.jsonl");
        // Submitted while the cluster has no worker: the job waits for one.
        var submit = await Cli("job", "submit", "--name", "gated", "--model", _model, "--frames", $"{frames}", "--fps", "10", "--results", results);
        Assert.True(submit.ExitCode == 0, submit.Error + submit.Output);

        // The liar holds a certificate from the cluster CA that grants monitor only, and never answers the guards' asks:
        // they down it only after ten unanswered asks, ten seconds in which it is the only member claiming worker.
        var liarCache = Directory.CreateDirectory(Path.Combine(_folder, "liar-cache")).FullName;
        var liar = PipelineNode.Start(
            new NodeOptions { Roles = [Roles.Worker], Seeds = [_seed], ModelCache = liarCache, LogFile = Path.Combine(_folder, "liar.log") },
            tls: _certificates.Tls(Roles.Monitor));
        _inProcess.Add(liar);
        liar.System.ActorSelection($"/user/{CertificateRoleGuard.Name}").Tell(PoisonPill.Instance);
        var liarPort = liar.Address.Port!.Value;
        await liar.System.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(60));

        var waiting = await Status("gated");
        Assert.Equal(0, waiting.GetProperty("resultsOut").GetInt64());
        Assert.Empty(Directory.EnumerateFiles(liarCache, "*", SearchOption.AllDirectories));
        StartNode("worker", _certificates);
        var status = await WaitForStatus("gated", s => s.GetProperty("state").GetString() == "finished", "the job to finish on the honest worker");

        Assert.Equal((frames, 0L), (status.GetProperty("resultsOut").GetInt64(), status.GetProperty("failed").GetInt64()));
        Assert.DoesNotContain(
            status.GetProperty("plan").EnumerateArray(), p => p.GetString()!.Contains($":{liarPort}", StringComparison.Ordinal));
        var ids = File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("frame").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, frames).Select(i => (long)i), ids);
    }

    [Fact]
    public async Task A_client_with_the_monitor_role_is_refused_the_model_files_a_proven_worker_gets()
    {
        StartNode("coordinator,worker", _certificates);
        StartNode("ingest", _certificates);
        var submit = await Cli("job", "submit", "--name", "store", "--model", _model, "--frames", "5", "--results", Path.Combine(_folder, "s.jsonl"));
        Assert.True(submit.ExitCode == 0, submit.Error + submit.Output);
        await WaitForStatus("store", s => s.GetProperty("state").GetString() == "finished", "the job to finish");
        var sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(_model)));
        // The job registry's store (coordinator) and the ingest node's cache both hold the model now.
        var stores = new[]
        {
            $"{_seed}/user/{Runtime.ControlPath.Jobs.JobRegistry.Name}/{Runtime.ControlPath.Jobs.JobRegistry.Name}/models",
            $"akka.ssl.tcp://pipeline@127.0.0.1:{PortOf(1)}/user/{Runtime.Hosting.Jobs.JobHost.Name}/cached-models",
        };

        var monitor = await JoinInProcess([Roles.Monitor], _certificates.Tls(Roles.Monitor));
        var worker = await JoinInProcess([Roles.Worker], _certificates.Tls(Roles.Worker));
        // A member's roles count once the guards have checked them; the worker's proof takes a moment to arrive.
        await Task.Delay(TimeSpan.FromSeconds(3));
        foreach (var store in stores)
        {
            var refused = await Fetch(monitor, store, sha);
            var served = await Fetch(worker, store, sha);

            Assert.IsType<FileUnavailable>(refused);
            var chunk = Assert.IsType<FileChunk>(served);
            Assert.Equal(new FileInfo(_model).Length, chunk.TotalBytes);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _inProcess)
        {
            await node.DisposeAsync();
        }

        foreach (var node in _nodes)
        {
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

    private static async Task<object> Fetch(PipelineNode client, string store, string sha)
    {
        // Asked again while the answer is a refusal: the proof of the asker's roles may still be on its way. Asked again,
        // too, when no answer came: in one CI run the first ask of the monitor, a node that had just joined, went unanswered
        // for 10 s (the spec passed alone twice after it); what is checked is the answer, not the first ask's luck.
        object answer = null!;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                answer = await client.System.ActorSelection(store).Ask<object>(new FetchFileChunk(sha, 0), TimeSpan.FromSeconds(10));
            }
            catch (AskTimeoutException) when (attempt < 4)
            {
                continue;
            }

            if (answer is FileChunk)
            {
                return answer;
            }

            await Task.Delay(1000);
        }

        return answer;
    }

    private async Task<PipelineNode> JoinInProcess(IReadOnlyList<string> roles, ClusterTls tls)
    {
        var node = PipelineNode.Start(
            new NodeOptions { Roles = roles, Seeds = [_seed], LogFile = Path.Combine(_folder, $"in-process-{_inProcess.Count}.log") }, tls: tls);
        _inProcess.Add(node);
        await node.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        return node;
    }

    private int SeedPort() => _ports[0];

    private int PortOf(int index) => _ports[index];

    /// <summary>A node service over TLS with a certificate from <paramref name="authority"/>; the first one is the seed.</summary>
    private NodeProcess StartNode(string roles, TestCertificates authority)
    {
        var port = TestPorts.Free();
        _ports.Add(port);
        if (_seed.Length == 0)
        {
            _seed = $"akka.ssl.tcp://pipeline@127.0.0.1:{port}";
        }

        var index = _nodes.Count;
        var node = NodeProcess.Start($"node-{index}", [
            "--roles", roles, "--port", port.ToString(CultureInfo.InvariantCulture), "--seeds", _seed, "--tls", authority.Issue(roles.Split(',')),
            "--model-cache", Path.Combine(_folder, $"cache-{index}"), "--state", Path.Combine(_folder, $"state-{index}"),
        ]);
        _nodes.Add(node);
        return node;
    }

    private async Task<JsonElement> Status(string job)
    {
        var status = await Cli("job", "status", "--name", job, "--json");
        Assert.True(status.ExitCode == 0, status.Error);
        return JsonDocument.Parse(status.Output).RootElement.Clone();
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
            }
            else
            {
                last = status.Error;
            }

            await Task.Delay(1000);
        }

        foreach (var node in _nodes)
        {
            output.WriteLine($"--- {node.Name}\n{node.Output[Math.Max(0, node.Output.Length - 6000)..]}");
        }

        Assert.Fail($"timed out waiting for {what}; last status: {last}");
        return default;
    }

    private Task<CliResult> Cli(params string[] arguments) =>
        CliProcess.Run([.. arguments, "--seed", _seed, "--tls", _clientTls], TimeSpan.FromSeconds(90));
}
