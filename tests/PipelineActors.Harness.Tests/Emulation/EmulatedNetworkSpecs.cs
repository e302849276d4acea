using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using PipelineActors.Harness.Emulation;
using Xunit.Abstractions;

namespace PipelineActors.Harness.Tests.Emulation;

public class EmulatedNetworkSpecs(ITestOutputHelper output)
{
    private const long FourMegabytes = 4_000_000;

    [Fact(Timeout = 60_000)]
    public async Task A_transfer_between_the_root_namespace_and_a_20_Mbit_worker_is_shaped_both_ways()
    {
        using var network = EmulatedNetwork.Create([20]);
        var link = network.Links[0];

        var sent = await FromWorkerToRoot(link, FourMegabytes);
        var received = await FromRootToWorker(link, FourMegabytes);
        output.WriteLine($"link=20: worker to root {sent:F1} Mbit/s, root to worker {received:F1} Mbit/s");

        Assert.InRange(sent, 12, 24);
        Assert.InRange(received, 12, 24);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_unshaped_or_200_Mbit_link_is_clearly_faster_than_a_20_Mbit_one()
    {
        using var network = EmulatedNetwork.Create([20, null, 200]);

        var slow = await FromRootToWorker(network.Links[0], FourMegabytes);
        var unshaped = await FromRootToWorker(network.Links[1], 4 * FourMegabytes);
        var fast = await FromRootToWorker(network.Links[2], 4 * FourMegabytes);
        output.WriteLine($"root to worker: link=20 {slow:F1}, unshaped {unshaped:F1}, link=200 {fast:F1} Mbit/s");

        Assert.InRange(slow, 12, 24);
        Assert.True(unshaped > 3 * slow, $"unshaped {unshaped:F1} Mbit/s against {slow:F1}");
        Assert.True(fast > 3 * slow, $"link=200 {fast:F1} Mbit/s against {slow:F1}");
        Assert.True(fast < 240, $"link=200 ran at {fast:F1} Mbit/s");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_transfer_between_two_worker_namespaces_works_and_is_shaped_by_the_slower_link()
    {
        using var network = EmulatedNetwork.Create([20, 200]);
        var slow = network.Links[0];
        var fast = network.Links[1];
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Slow worker sends (through its shaped end), fast worker listens: bash in one namespace, .NET in the other.
        using var listener = Probe.Listen(fast.OpenSocket(), fast.WorkerAddress);
        var receiving = Probe.ReceiveAsync(listener, cancel.Token);
        var (program, args) = slow.Wrap("bash", Probe.SendZeros(fast.WorkerAddress, Probe.PortOf(listener), FourMegabytes));
        using var sender = Probe.Start(program, args);
        await Probe.ExpectSuccessAsync(sender, cancel.Token);
        var (bytes, outOfSlow) = await receiving;
        Assert.Equal(FourMegabytes, bytes);

        // And back: the slow worker's root end shapes what it receives.
        using var back = Probe.Listen(slow.OpenSocket(), slow.WorkerAddress);
        var receivingBack = Probe.ReceiveAsync(back, cancel.Token);
        await Probe.SendAsync(fast.OpenSocket(), slow.WorkerAddress, Probe.PortOf(back), FourMegabytes, cancel.Token);
        var (bytesBack, intoSlow) = await receivingBack;
        Assert.Equal(FourMegabytes, bytesBack);
        output.WriteLine($"worker to worker over link=20 and link=200: out of the slow one {outOfSlow:F1}, into it {intoSlow:F1} Mbit/s");

        Assert.InRange(outOfSlow, 12, 24);
        Assert.InRange(intoSlow, 12, 24);
    }

    [Fact(Timeout = 60_000)]
    public async Task Every_worker_reaches_the_head_address_and_binds_its_own()
    {
        using var devices = EmulatedDevices.Create(EmulationSpec.Parse("cpu=0.5,link=50;;link=20"));
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.Equal(devices.Network!.Links[0].HostAddress, devices.HeadAddress);

        foreach (var worker in devices.Workers)
        {
            using var head = Probe.Listen(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), devices.HeadAddress);
            var receiving = Probe.ReceiveAsync(head, cancel.Token);
            // What a launcher does: its usual command, taskset included, through Wrap; here a shell that says where it runs.
            var script = "echo pid $$; ip -o -4 addr show; cat /proc/self/cgroup; " +
                $"head -c 1000 /dev/zero > /dev/tcp/{devices.HeadAddress}/{Probe.PortOf(head)}";
            var (program, args) = worker.Wrap("taskset", ["-c", "0", "bash", "-c", script]);
            using var process = Probe.Start(program, args);
            var said = await process.StandardOutput.ReadToEndAsync(cancel.Token);
            await Probe.ExpectSuccessAsync(process, cancel.Token);
            var (bytes, _) = await receiving;

            Assert.Equal(1000, bytes);
            // Every wrapper execs: the pid a launcher holds (and kills) is the worker's own.
            Assert.StartsWith($"pid {process.Id}\n", said, StringComparison.Ordinal);
            Assert.Contains($"inet {worker.BindAddress}/30", said, StringComparison.Ordinal);
            Assert.DoesNotContain("eth0", said, StringComparison.Ordinal);
            if (worker.Quota is { } quota)
            {
                Assert.Contains($"/{quota.Name}\n", said, StringComparison.Ordinal);
            }
        }
    }

    [Fact(Timeout = 30_000)]
    public Task Without_links_every_node_stays_on_loopback_and_only_quotas_are_made() => Task.Run(() =>
    {
        using var devices = EmulatedDevices.Create(EmulationSpec.Parse("cpu=0.5;;latency=20"));

        Assert.Null(devices.Network);
        Assert.Equal(IPAddress.Loopback, devices.HeadAddress);
        Assert.All(devices.Workers, w => Assert.Equal(IPAddress.Loopback, w.BindAddress));
        Assert.NotNull(devices.Workers[0].Quota);
        Assert.Null(devices.Workers[1].Quota);
        var (program, args) = devices.Workers[1].Wrap("node", ["--port", "0"]);
        Assert.Equal("node", program);
        Assert.Equal(["--port", "0"], args);
        Assert.Equal("/bin/sh", devices.Workers[0].Wrap("node", []).Program);
        Assert.Equal(TimeSpan.FromMilliseconds(20), devices.Workers[2].Latency);
    });

    [Fact(Timeout = 60_000)]
    public Task After_disposal_no_namespace_veth_or_cgroup_of_the_run_remains() => Task.Run(() =>
    {
        var forwarding = File.ReadAllText("/proc/sys/net/ipv4/ip_forward");
        string tag;
        using (var devices = EmulatedDevices.Create(EmulationSpec.Parse("cpu=0.5,link=20;cpu=0.25;link=10")))
        {
            tag = devices.Network!.RunTag;
            Assert.Equal(3, StaleEmulation.OurNamespaces().Count(n => n.StartsWith(tag, StringComparison.Ordinal)));
            Assert.Equal(3, StaleEmulation.OurInterfaces().Count(n => n.StartsWith(tag, StringComparison.Ordinal)));
            Assert.Equal(2, StaleEmulation.OurCgroups().Count(n => n.StartsWith(tag, StringComparison.Ordinal)));
        }

        Assert.DoesNotContain(StaleEmulation.OurNamespaces(), n => n.StartsWith(tag, StringComparison.Ordinal));
        Assert.DoesNotContain(StaleEmulation.OurInterfaces(), n => n.StartsWith(tag, StringComparison.Ordinal));
        Assert.DoesNotContain(StaleEmulation.OurCgroups(), n => n.StartsWith(tag, StringComparison.Ordinal));
        Assert.Equal(forwarding, File.ReadAllText("/proc/sys/net/ipv4/ip_forward"));
    });

    [Fact(Timeout = 60_000)]
    public Task What_a_crashed_run_left_is_removed_and_a_live_run_is_left_alone() => Task.Run(() =>
    {
        var dead = DeadPid();
        var staleTag = EmulationNames.RunTag(dead, 1);
        var liveTag = EmulationNames.NewRunTag();
        var staleNs = EmulationNames.Of(staleTag, EmulationNames.NamespaceRole, 0);
        var staleVeth = EmulationNames.Of(staleTag, EmulationNames.HostEndRole, 0);
        var staleGroup = EmulationNames.Of(staleTag, EmulationNames.CgroupRole, 0);
        var liveGroup = EmulationNames.Of(liveTag, EmulationNames.CgroupRole, 0);
        using var live = CpuQuota.Create(liveGroup, 0.5);
        try
        {
            // What a crash leaves: a namespace, a veth pair in the root namespace, a cgroup.
            Run("ip", "netns", "add", staleNs);
            Run("ip", "link", "add", staleVeth, "type", "veth", "peer", "name", EmulationNames.Of(staleTag, EmulationNames.WorkerEndRole, 0));
            using (CpuQuota.Create(staleGroup, 0.5))
            {
                // Disposal is not what a crash does; the folder is made again below.
            }

            Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(live.Path)!, staleGroup));

            var removed = StaleEmulation.Remove();

            Assert.Contains(staleNs, removed);
            Assert.Contains(staleVeth, removed);
            Assert.Contains(staleGroup, removed);
            Assert.DoesNotContain(staleNs, StaleEmulation.OurNamespaces());
            Assert.DoesNotContain(staleVeth, StaleEmulation.OurInterfaces());
            Assert.DoesNotContain(staleGroup, StaleEmulation.OurCgroups());
            Assert.Contains(liveGroup, StaleEmulation.OurCgroups());
        }
        finally
        {
            EmulatedNetwork.Delete(staleVeth, staleNs);
            CpuQuota.Remove(Path.Combine(Path.GetDirectoryName(live.Path)!, staleGroup));
        }
    });

    private static async Task<double> FromWorkerToRoot(EmulatedLink link, long bytes)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var listener = Probe.Listen(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), link.HostAddress);
        var receiving = Probe.ReceiveAsync(listener, cancel.Token);
        var (program, args) = link.Wrap("bash", Probe.SendZeros(link.HostAddress, Probe.PortOf(listener), bytes));
        using var sender = Probe.Start(program, args);
        await Probe.ExpectSuccessAsync(sender, cancel.Token);
        var (received, mbit) = await receiving;
        Assert.Equal(bytes, received);
        return mbit;
    }

    private static async Task<double> FromRootToWorker(EmulatedLink link, long bytes)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var listener = Probe.Listen(link.OpenSocket(), link.WorkerAddress);
        var receiving = Probe.ReceiveAsync(listener, cancel.Token);
        var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Probe.SendAsync(sender, link.WorkerAddress, Probe.PortOf(listener), bytes, cancel.Token);
        var (received, mbit) = await receiving;
        Assert.Equal(bytes, received);
        return mbit;
    }

    private static int DeadPid()
    {
        using var process = Process.Start("true")!;
        process.WaitForExit();
        var pid = process.Id;
        Assert.False(Directory.Exists($"/proc/{pid}"), "the pid was taken again at once");
        return pid;
    }

    private static void Run(string program, params string[] args)
    {
        using var process = Probe.Start(program, args);
        process.WaitForExit(10_000);
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)}: {process.StandardError.ReadToEnd()}");
    }
}
