using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;
using PipelineActors.TestSupport;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline monitor --seed</c> as a user runs it, in a process of its own, against a node service process (<c>pipeline-node</c>):
/// it joins over a real socket, prints the cluster's members in its one-shot modes, and says in one sentence when no seed answers.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class MonitorProcessSpecs
{
    private static readonly TimeSpan ProcessLimit = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task A_monitor_process_joins_a_node_service_by_its_seed_and_prints_its_workers_once_as_json_and_as_a_table()
    {
        using var certificates = new TestCertificates();
        var port = TestPorts.Free().ToString(CultureInfo.InvariantCulture);
        var seed = $"akka.ssl.tcp://pipeline@127.0.0.1:{port}";
        var monitorTls = certificates.Issue("monitor");
        using var node = Start(
            "pipeline-node.dll", "--roles", "coordinator,worker", "--port", port, "--seeds", seed, "--tls",
                certificates.Issue("coordinator", "worker"));
        try
        {
            await WaitForLine(node, "node akka.ssl.tcp://", TimeSpan.FromSeconds(30));

            var json = await Run("pipeline.dll", "monitor", "--seed", seed, "--tls", monitorTls, "--once", "--json", "--wait", "15");

            Assert.True(json.ExitCode == 0, json.Error);
            using var snapshot = JsonDocument.Parse(json.Output);
            var members = snapshot.RootElement.GetProperty("members").EnumerateArray().ToList();
            Assert.Equal(2, members.Count);
            var worker = Assert.Single(members, m => m.GetProperty("address").GetString() == $"127.0.0.1:{port}");
            Assert.Equal(["coordinator", "worker"], worker.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal("Up", worker.GetProperty("status").GetString());
            Assert.True(worker.GetProperty("cores").GetInt32() > 0, "the worker announced its cores");
            var monitor = Assert.Single(members, m => m.GetProperty("roles").EnumerateArray().Select(r => r.GetString()).SequenceEqual(["monitor"]));
            Assert.StartsWith("127.0.0.1:", monitor.GetProperty("address").GetString(), StringComparison.Ordinal); // routed to the seed
            Assert.Empty(snapshot.RootElement.GetProperty("jobs").EnumerateArray());

            // Bound to every interface, advertised at the address given (NAT), on a port given: the node must reach it there.
            var monitorPort = TestPorts.Free().ToString(CultureInfo.InvariantCulture);
            var table = await Run(
                "pipeline.dll", "monitor", "--seed", seed, "--tls", monitorTls, "--host", "0.0.0.0", "--public-host", "127.0.0.1",
                "--port", monitorPort, "--once", "--wait", "15");

            Assert.True(table.ExitCode == 0, table.Error);
            Assert.Contains($"127.0.0.1:{port}", table.Output, StringComparison.Ordinal);
            Assert.Contains("coordinator,worker", table.Output, StringComparison.Ordinal);
            Assert.Contains($"127.0.0.1:{monitorPort}", table.Output, StringComparison.Ordinal);
            Assert.Contains("no job is running", table.Output, StringComparison.Ordinal);
        }
        finally
        {
            node.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_monitor_joining_a_node_bound_to_a_network_address_advertises_that_address_not_loopback()
    {
        // The machine's first network address (loopback only where it has none): what a seed on another machine of that network sees.
        var host = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(u => u.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))?.ToString() ?? "127.0.0.1";
        var port = TestPorts.Free().ToString(CultureInfo.InvariantCulture);
        using var certificates = new TestCertificates();
        var seed = $"akka.ssl.tcp://pipeline@{host}:{port}";
        using var node = Start(
            "pipeline-node.dll", "--roles", "coordinator,worker", "--host", host, "--port", port, "--seeds", seed,
            "--tls", certificates.Issue("coordinator", "worker"));
        try
        {
            await WaitForLine(node, "node akka.ssl.tcp://", TimeSpan.FromSeconds(30));

            var json = await Run("pipeline.dll", "monitor", "--seed", seed, "--tls", certificates.Issue("monitor"), "--once", "--json",
                "--wait", "15");

            Assert.True(json.ExitCode == 0, json.Error);
            using var snapshot = JsonDocument.Parse(json.Output);
            var addresses = snapshot.RootElement.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("address").GetString()!).ToList();
            Assert.Equal(2, addresses.Count);
            Assert.Contains($"{host}:{port}", addresses);
            Assert.All(addresses, a => Assert.StartsWith($"{host}:", a, StringComparison.Ordinal));
        }
        finally
        {
            node.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_seed_that_does_not_answer_is_one_sentence_and_exit_code_2_within_the_join_timeout()
    {
        var seed = $"akka.tcp://pipeline@127.0.0.1:{TestPorts.Free().ToString(CultureInfo.InvariantCulture)}";
        var clock = Stopwatch.StartNew();

        var result = await Run("pipeline.dll", "monitor", "--seed", seed, "--insecure", "--join-timeout", "3", "--once");

        Cli.AssertUserError(result, "Could not join the cluster", seed, "within 3 s");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"it took {clock.Elapsed.TotalSeconds:0.0} s to give up");
    }

    private static Process Start(string dll, params string[] arguments) => CliProcess.Start(dll, arguments);

    private static Task<CliResult> Run(string dll, params string[] arguments) => CliProcess.RunDll(dll, ProcessLimit, arguments);

    private static async Task WaitForLine(Process process, string start, TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith(start, StringComparison.Ordinal))
            {
                // Keep reading, so a node that logs to its console never blocks on a full pipe.
                _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
                return;
            }
        }

        Assert.Fail($"the node exited before it printed '{start}': {await process.StandardError.ReadToEndAsync()}");
    }
}
