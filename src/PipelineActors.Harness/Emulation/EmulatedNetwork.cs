using System.Globalization;
using System.Net;
using System.Net.Sockets;
using PipelineActors.Onnx;

namespace PipelineActors.Harness.Emulation;

/// <summary>
/// One worker's link: a network namespace of its own joined to the root namespace by a veth pair, with addresses of its own
/// (10.213.S.2 inside, 10.213.S.1 at the root end, one /30 per slot S) and, when <see cref="Mbit"/> is set, a tc tbf on
/// BOTH ends so that what the worker sends and what it receives are shaped.
/// </summary>
public sealed class EmulatedLink
{
    internal EmulatedLink(int index, int slot, string networkNamespace, string hostInterface, string workerInterface, double? mbit)
    {
        Index = index;
        Slot = slot;
        Namespace = networkNamespace;
        HostInterface = hostInterface;
        WorkerInterface = workerInterface;
        Mbit = mbit;
        HostAddress = EmulatedNetwork.Address(slot, 1);
        WorkerAddress = EmulatedNetwork.Address(slot, 2);
    }

    /// <summary>The worker's index in the run.</summary>
    public int Index { get; }

    /// <summary>The third octet of this link's 10.213.S.0/30.</summary>
    public int Slot { get; }

    public string Namespace { get; }

    /// <summary>The veth end in the root namespace.</summary>
    public string HostInterface { get; }

    /// <summary>The veth end inside <see cref="Namespace"/>.</summary>
    public string WorkerInterface { get; }

    /// <summary>The shaped rate in Mbit/s, or null for an unshaped link.</summary>
    public double? Mbit { get; }

    /// <summary>The root namespace's end of the link (reachable from every worker of the network).</summary>
    public IPAddress HostAddress { get; }

    /// <summary>The worker's own address: what a worker process started in <see cref="Namespace"/> binds.</summary>
    public IPAddress WorkerAddress { get; }

    /// <summary>The argument prefix that runs a command inside the namespace: <c>ip netns exec NS</c>.</summary>
    public IReadOnlyList<string> CommandPrefix => ["ip", "netns", "exec", Namespace];

    /// <summary>The command that runs <paramref name="program"/> inside the namespace (ip execs it: the pid stays the same).</summary>
    public (string Program, IReadOnlyList<string> Arguments) Wrap(string program, IEnumerable<string> arguments)
    {
        var args = new List<string>(CommandPrefix.Skip(1)) { program };
        args.AddRange(arguments);
        return (CommandPrefix[0], args);
    }

    /// <summary>A socket inside the worker's namespace, opened from this process (probes and tests; no child process).</summary>
    public Socket OpenSocket(SocketType type = SocketType.Stream, ProtocolType protocol = ProtocolType.Tcp) =>
        NetworkNamespaceSocket.Create(Namespace, AddressFamily.InterNetwork, type, protocol);

    /// <summary>The tbf arguments for this link's rate, or null when unshaped.</summary>
    internal string[]? TbfArguments(string device) => Mbit is { } mbit ? EmulatedNetwork.Tbf(device, mbit) : null;
}

/// <summary>
/// The emulated links of one run: a namespace and veth pair per worker, routes between them, shaping, and teardown that
/// removes all of it. Addresses come from 10.213.0.0/16 only (one 10.213.S.0/30 per worker, S = 0..255, the lowest free
/// slot on this machine), and every namespace routes only that range to the root namespace: nothing leaves the machine.
/// </summary>
public sealed class EmulatedNetwork : IDisposable
{
    /// <summary>The range every address comes from.</summary>
    public const string Range = "10.213.0.0/16";

    /// <summary>How long a full tbf queue may hold a packet: a bound on the link's queueing delay.</summary>
    public const int QueueMs = 250;

    private const int Slots = 256;

    private static readonly Lock SlotLock = new();

    private readonly List<EmulatedLink> _links = [];
    private bool _disposed;

    private EmulatedNetwork(string runTag)
    {
        RunTag = runTag;
    }

    /// <summary>The prefix of every name this network created.</summary>
    public string RunTag { get; }

    public IReadOnlyList<EmulatedLink> Links => _links;

    /// <summary>
    /// The address a process in the root namespace (the run's head) binds and advertises as the seed: the root end of the
    /// first link. Linux answers for any of its own addresses on any interface, and every namespace routes 10.213.0.0/16 to
    /// the root, so each worker reaches it over its own (shaped) link.
    /// </summary>
    public IPAddress HeadAddress => _links[0].HostAddress;

    /// <summary>Creates one link per entry (null: unshaped) after removing what crashed runs left; needs root, ip and tc.</summary>
    /// <exception cref="PipelineInputException">Not root, no ip or tc, or no free slot.</exception>
    public static EmulatedNetwork Create(IReadOnlyList<double?> linkMbit)
    {
        if (linkMbit.Count == 0)
        {
            throw new ArgumentException("An emulated network needs at least one link.", nameof(linkMbit));
        }

        if (!Environment.IsPrivilegedProcess)
        {
            throw new PipelineInputException(
                "Emulated links need root (network namespaces, veth pairs and tc); run as root or drop link= from --emulate.");
        }

        StaleEmulation.Remove();
        var network = new EmulatedNetwork(EmulationNames.NewRunTag());
        try
        {
            lock (SlotLock)
            {
                using var machineLock = MachineLock();
                var used = UsedSlots();
                for (var i = 0; i < linkMbit.Count; i++)
                {
                    var slot = Enumerable.Range(0, Slots).FirstOrDefault(s => !used.Contains(s), -1);
                    if (slot < 0)
                    {
                        throw new PipelineInputException(
                            $"All {Slots} emulated-link slots in {Range} are in use on this machine; end other emulated runs first.");
                    }

                    used.Add(slot);
                    network.AddLink(i, slot, linkMbit[i]);
                }
            }

            // Worker-to-worker traffic crosses the root namespace. Forwarding is enabled on our root ends only (IPv4 decides
            // by the interface a packet came in on), so the machine's global ip_forward is never changed.
            if (network._links.Count > 1)
            {
                foreach (var link in network._links)
                {
                    File.WriteAllText($"/proc/sys/net/ipv4/conf/{link.HostInterface}/forwarding", "1");
                }
            }
        }
        catch
        {
            network.Dispose();
            throw;
        }

        return network;
    }

    /// <summary>Deletes every veth pair and namespace this network made (their qdiscs and forwarding flags go with them).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var link in _links)
        {
            Delete(link.HostInterface, link.Namespace);
        }
    }

    internal static IPAddress Address(int slot, int host) => new([10, 213, (byte)slot, (byte)host]);

    internal static string[] Tbf(string device, double mbit)
    {
        var kbit = Math.Max(8, (long)Math.Round(mbit * 1000));
        // Burst: one timer tick's worth at 250 Hz, never under 16 KiB so that a full-size TSO segment is not split to dust.
        var burst = Math.Max(16 * 1024, kbit * 1000 / 8 / 250);
        return
        [
            "qdisc", "add", "dev", device, "root", "tbf",
            "rate", string.Create(CultureInfo.InvariantCulture, $"{kbit}kbit"),
            "burst", burst.ToString(CultureInfo.InvariantCulture),
            "latency", string.Create(CultureInfo.InvariantCulture, $"{QueueMs}ms"),
        ];
    }

    /// <summary>Removes a veth (both ends) and a namespace if they exist; what is already gone is fine.</summary>
    internal static void Delete(string? hostInterface, string? networkNamespace)
    {
        if (hostInterface is not null && Directory.Exists($"/sys/class/net/{hostInterface}"))
        {
            HostCommand.TryRun("ip", "link", "del", hostInterface);
        }

        if (networkNamespace is not null && File.Exists(Path.Combine("/run/netns", networkNamespace)))
        {
            HostCommand.TryRun("ip", "netns", "del", networkNamespace);
        }
    }

    private void AddLink(int index, int slot, double? mbit)
    {
        var ns = EmulationNames.Of(RunTag, EmulationNames.NamespaceRole, index);
        var host = EmulationNames.Of(RunTag, EmulationNames.HostEndRole, index);
        var worker = EmulationNames.Of(RunTag, EmulationNames.WorkerEndRole, index);
        var link = new EmulatedLink(index, slot, ns, host, worker, mbit);
        // Listed before the first command so that a failure half-way still tears it down.
        _links.Add(link);
        HostCommand.Run("ip", "netns", "add", ns);
        HostCommand.Run("ip", "link", "add", host, "type", "veth", "peer", "name", worker);
        HostCommand.Run("ip", "link", "set", worker, "netns", ns);
        HostCommand.Run("ip", "addr", "add", $"{link.HostAddress}/30", "dev", host);
        HostCommand.Run("ip", "link", "set", host, "up");
        HostCommand.Run("ip", "-n", ns, "addr", "add", $"{link.WorkerAddress}/30", "dev", worker);
        HostCommand.Run("ip", "-n", ns, "link", "set", worker, "up");
        HostCommand.Run("ip", "-n", ns, "link", "set", "lo", "up");
        // Only our range goes to the root namespace: no default route, so a worker cannot reach beyond the machine.
        HostCommand.Run("ip", "-n", ns, "route", "add", Range, "via", link.HostAddress.ToString());
        if (link.TbfArguments(host) is { } rootSide)
        {
            // Root end's egress: what the worker receives.
            HostCommand.Run("tc", rootSide);
            // Worker end's egress: what the worker sends.
            HostCommand.Run("ip", ["netns", "exec", ns, "tc", .. link.TbfArguments(worker)!]);
        }
    }

    private static HashSet<int> UsedSlots()
    {
        var used = new HashSet<int>();
        var output = HostCommand.Run("ip", "-o", "-4", "addr", "show");
        foreach (var line in output.Split('\n'))
        {
            var at = line.IndexOf(" inet 10.213.", StringComparison.Ordinal);
            if (at < 0)
            {
                continue;
            }

            var octets = line[(at + 6)..].Split('/')[0].Split('.');
            if (octets.Length == 4 && int.TryParse(octets[2], CultureInfo.InvariantCulture, out var slot))
            {
                used.Add(slot);
            }
        }

        return used;
    }

    /// <summary>Serialises slot choice between processes on this machine (two runs must not pick the same /30).</summary>
    private static FileStream MachineLock()
    {
        var path = Path.Combine(Directory.Exists("/run/lock") ? "/run/lock" : Path.GetTempPath(), "pipelineactors-emulation.lock");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                // FileShare.None is an exclusive flock on Linux.
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
        }
    }
}
