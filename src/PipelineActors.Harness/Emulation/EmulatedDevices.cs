using System.Net;
using PipelineActors.Onnx;

namespace PipelineActors.Harness.Emulation;

/// <summary>
/// One emulated worker: where it binds and how to start it. A launcher passes its usual program and arguments (taskset
/// included) through <see cref="Wrap"/> and starts what comes back; the pid it gets is the worker's own.
/// </summary>
public sealed class EmulatedWorker
{
    internal EmulatedWorker(int index, WorkerEmulation settings, CpuQuota? quota, EmulatedLink? link)
    {
        Index = index;
        Settings = settings;
        Quota = quota;
        Link = link;
    }

    public int Index { get; }

    public WorkerEmulation Settings { get; }

    /// <summary>The worker's cgroup, or null without <c>cpu=</c>.</summary>
    public CpuQuota? Quota { get; }

    /// <summary>The worker's namespace and link, or null when the run has no <c>link=</c> at all.</summary>
    public EmulatedLink? Link { get; }

    /// <summary>The address the worker binds (Akka's hostname): its namespace's own address, else 127.0.0.1.</summary>
    public IPAddress BindAddress => Link?.WorkerAddress ?? IPAddress.Loopback;

    /// <summary>Delay the application must add on this worker's link (netem is missing, so the kernel adds none).</summary>
    public TimeSpan Latency => TimeSpan.FromMilliseconds(Settings.LatencyMs);

    /// <summary>
    /// The command that starts <paramref name="program"/> as this worker: into its cgroup first (ip netns exec remounts
    /// /sys, hiding the cgroup files), then into its namespace. Each step execs, so the started pid is the program's.
    /// </summary>
    public (string Program, IReadOnlyList<string> Arguments) Wrap(string program, IEnumerable<string> arguments)
    {
        var (inner, innerArgs) = Link is null ? (program, arguments.ToList()) : Link.Wrap(program, arguments);
        return Quota is null ? (inner, innerArgs) : Quota.Wrap(inner, innerArgs);
    }
}

/// <summary>
/// What <c>--emulate</c> sets up for a run: a CPU quota per worker with <c>cpu=</c> and, when any worker has
/// <c>link=</c>, a namespace and link for every worker (unshaped for those without), so that all of them reach each other
/// and the head. Dispose after the worker processes have exited: it removes every cgroup, namespace and veth it made.
/// </summary>
/// <remarks>
/// A launcher: <c>using var devices = EmulatedDevices.Create(EmulationSpec.Parse(flag).RequireWorkers(n));</c> binds the head
/// to <see cref="HeadAddress"/> (its seed URI names that address), then starts worker i as
/// <c>devices.Workers[i].Wrap("taskset", ["-c", cores, nodeBinary, "--host", devices.Workers[i].BindAddress.ToString(), ...])</c>.
/// </remarks>
public sealed class EmulatedDevices : IDisposable
{
    private readonly List<CpuQuota> _quotas;
    private readonly EmulatedNetwork? _network;

    private EmulatedDevices(EmulationSpec spec, List<CpuQuota> quotas, EmulatedNetwork? network, List<EmulatedWorker> workers)
    {
        Spec = spec;
        _quotas = quotas;
        _network = network;
        Workers = workers;
        // Environment.Exit skips using blocks but raises ProcessExit (checked). A SIGTERM here raised no ProcessExit (checked):
        // what it leaves, the next run's stale cleanup removes.
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    public EmulationSpec Spec { get; }

    public IReadOnlyList<EmulatedWorker> Workers { get; }

    /// <summary>The links, or null when the spec has no <c>link=</c> (then every node stays on 127.0.0.1).</summary>
    public EmulatedNetwork? Network => _network;

    /// <summary>
    /// The address the head (root namespace) binds and advertises in its seed URI: the root end of the first link when there
    /// are links (reachable from every namespace), else 127.0.0.1.
    /// </summary>
    public IPAddress HeadAddress => _network?.HeadAddress ?? IPAddress.Loopback;

    /// <summary>Creates the quotas and links the spec asks for, after removing what crashed runs left.</summary>
    /// <exception cref="PipelineInputException">Not root, no cpu controller, or no ip/tc; one sentence.</exception>
    public static EmulatedDevices Create(EmulationSpec spec)
    {
        StaleEmulation.Remove();
        var quotas = new List<CpuQuota>();
        EmulatedNetwork? network = null;
        try
        {
            network = spec.HasLinks ? EmulatedNetwork.Create(spec.Workers.Select(w => w.LinkMbit).ToList()) : null;
            var tag = network?.RunTag ?? EmulationNames.NewRunTag();
            var workers = new List<EmulatedWorker>();
            for (var i = 0; i < spec.Workers.Count; i++)
            {
                var settings = spec.Workers[i];
                CpuQuota? quota = null;
                if (settings.Cpu is { } cpu)
                {
                    quota = CpuQuota.Create(EmulationNames.Of(tag, EmulationNames.CgroupRole, i), cpu);
                    quotas.Add(quota);
                }

                workers.Add(new EmulatedWorker(i, settings, quota, network?.Links[i]));
            }

            return new EmulatedDevices(spec, quotas, network, workers);
        }
        catch
        {
            foreach (var quota in quotas)
            {
                quota.Dispose();
            }

            network?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        _network?.Dispose();
        foreach (var quota in _quotas)
        {
            quota.Dispose();
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();
}
