using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Cluster;
using PipelineActors.Harness.Emulation;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Placement;
using PipelineActors.Runtime.ControlPath.Supervision;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Harness;

/// <summary>
/// The cluster a local run streams through: the head (coordinator and ingest) in this process, and the workers as
/// <c>pipeline-node</c> processes started as a service manager starts them, each pinned to a core of its own where the
/// machine has enough, emulated where the run asks. It speaks TLS like a deployed cluster, with throwaway certificates,
/// and keeps its jobs in a folder of its own. Disposing stops the workers, then the head, then removes both folders.
/// </summary>
public sealed partial class LocalCluster : IAsyncDisposable
{
    private readonly LocalRunOptions _options;
    private readonly EmulatedDevices? _devices;
    private readonly IReadOnlyList<int>? _ports;
    private readonly ThrowawayCertificates _certificates;
    private readonly IDisposable _state;
    private readonly List<NodeProcess> _workers = [];

    private LocalCluster(
        LocalRunOptions options, EmulatedDevices? devices, IReadOnlyList<int>? ports, ThrowawayCertificates certificates, IDisposable state,
        PipelineNode head, bool pinned)
    {
        _options = options;
        _devices = devices;
        _ports = ports;
        _certificates = certificates;
        _state = state;
        Head = head;
        Pinned = pinned;
    }

    /// <summary>The head node: coordinator (supervisor, job registry) and ingest, in this process.</summary>
    public PipelineNode Head { get; }

    /// <summary>Every worker process started so far, killed ones included, in the order they started.</summary>
    public List<NodeProcess> Workers => _workers;

    /// <summary>True when each worker runs on a core of its own (core i + 1 for worker i; core 0 is the head's).</summary>
    public bool Pinned { get; }

    /// <summary>The folder of the commands' certificate (monitor role), for <c>pipeline monitor --tls</c>.</summary>
    public string MonitorFolder => _certificates.MonitorFolder;

    /// <summary>
    /// Starts the head and waits until it is up; no worker yet. With a placement every planned worker gets its port now,
    /// because the plan names workers by address.
    /// </summary>
    /// <param name="maxWorkers">The most workers the run will start, kills and additions included: it decides pinning.</param>
    public static async Task<LocalCluster> StartAsync(LocalRunOptions options, EmulatedDevices? devices, int maxWorkers, Action<string> say)
    {
        // With emulated links the head binds the root end of the first link, which every worker's namespace routes to.
        var headHost = (devices?.HeadAddress ?? System.Net.IPAddress.Loopback).ToString();
        var ports = options.Placement is null ? null : Enumerable.Range(0, options.Workers).Select(_ => FreePort()).ToList();
        var policy = options.Placement is { } planned
            ? new PlannedPlacementPolicy(
                planned.Workers.Select(w => $"{devices?.Workers[w].BindAddress ?? System.Net.IPAddress.Loopback}:{ports![w]}").ToList())
            : null;
        var certificates = ThrowawayCertificates.Create();
        // A run never resumes another run's job, nor a service's.
        var state = RunStateFolder.Create();
        PipelineNode? head = null;
        try
        {
            head = PipelineNode.Start(
                new NodeOptions
                {
                    Host = headHost, Roles = [Roles.Coordinator, Roles.Ingest], LogFile = options.LogFile, StateFolder = state.Path,
                },
                policy,
                tls: certificates.Head());
            await head.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            if (head is not null)
            {
                await head.DisposeAsync();
            }

            state.Dispose();
            certificates.Dispose();
            throw;
        }

        say($"cluster seed {head.SeedUri} (TLS, throwaway certificates made in {certificates.Cost.TotalMilliseconds:0} ms); "
            + $"watch it live with: pipeline monitor --seed {head.SeedUri} --tls {certificates.MonitorFolder}");
        // A soak starts many more processes than it has workers at once, so their indices would outrun the cores.
        var pinned = options.Pin && Environment.ProcessorCount >= maxWorkers + 1 && options.ChaosMinutes is null;
        return new LocalCluster(options, devices, ports, certificates, state, head, pinned);
    }

    /// <summary>Starts worker <paramref name="index"/> (its emulated device, planned port and core, if any); not added to <see
    /// cref="Workers"/>.</summary>
    public NodeProcess Launch(int index)
    {
        var emulated = _devices?.Workers[index];
        return NodeProcess.Start(
            $"worker-{index}",
            WorkerArgs(Head.SeedUri, _options, index, emulated, _ports is not null && index < _ports.Count ? _ports[index] : null,
                _certificates.WorkerFolder),
            _options.CoresOf is not null ? _options.CoresOf(index) : Pinned ? (index + 1).ToString(CultureInfo.InvariantCulture) : null,
            _options.BinaryFolder,
            wrap: emulated is null ? null : emulated.Wrap);
    }

    /// <summary>Starts one more worker, numbered after the last, and adds it to <see cref="Workers"/>.</summary>
    public NodeProcess LaunchAnother()
    {
        var worker = Launch(_workers.Count);
        _workers.Add(worker);
        return worker;
    }

    /// <summary>Starts the run's first <paramref name="count"/> workers and waits until they are members the supervisor has heard from.</summary>
    public async Task StartWorkersAsync(int count, Action<string> say)
    {
        for (var i = 0; i < count; i++)
        {
            _workers.Add(Launch(i));
        }

        var pinning = Pinned ? ", each pinned to its own core" : " (not pinned: fewer cores than nodes)";
        say($"started {count} worker process(es){pinning}; waiting for them to join");
        await WaitForMembers(Head.System, count, _workers, TimeSpan.FromSeconds(60), Launch, say);
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_workers.Select(w => w.StopAsync(TimeSpan.FromSeconds(5))));
        foreach (var w in _workers)
        {
            w.Dispose();
        }

        await Head.DisposeAsync();
        _state.Dispose();
        _certificates.Dispose();
    }

    /// <summary>The node arguments of a worker started by a local run; an emulated worker binds its own address and adds its delay.</summary>
    public static IReadOnlyList<string> WorkerArgs(
        string seed, LocalRunOptions options, int index = 0, EmulatedWorker? emulated = null, int? nodePort = null, string? tlsFolder = null)
    {
        var args = new List<string> { "--seeds", seed, "--roles", Roles.Worker, "--threads",
            options.IntraOpThreads.ToString(CultureInfo.InvariantCulture) };
        args.AddRange(tlsFolder is null ? ["--insecure"] : ["--tls", tlsFolder]);
        if (nodePort is { } fixedPort)
        {
            args.AddRange(["--port", fixedPort.ToString(CultureInfo.InvariantCulture)]);
        }

        if (emulated is not null)
        {
            args.AddRange(["--host", emulated.BindAddress.ToString()]);
            if (emulated.Settings.LatencyMs > 0)
            {
                args.AddRange(["--link-delay", emulated.Settings.LatencyMs.ToString(CultureInfo.InvariantCulture)]);
            }
        }

        if (options.MetricsPort is { } port)
        {
            args.AddRange(["--metrics-port", (port + 1 + index).ToString(CultureInfo.InvariantCulture)]);
            if (options.MetricsAddress is { } address)
            {
                args.AddRange(["--metrics-address", address]);
            }
        }

        if (options.ModelCache is not null)
        {
            args.AddRange(["--model-cache", options.ModelCache]);
        }

        return args;
    }

    /// <summary>The host:port a node process reported on start.</summary>
    public static string? NodeOf(NodeProcess process)
    {
        var match = NodeLine().Match(process.Output);
        return match.Success ? $"{match.Groups[1].Value}:{match.Groups[2].Value}" : null;
    }

    /// <param name="relaunch">
    /// Starts worker i again when its process exited before the run began (a worker the downing judge removed in a
    /// start-up flap under load exits, as it should); null: such an exit ends the wait with one sentence. Twice at most,
    /// said through <paramref name="say"/>; a worker that cannot start at all still fails the run.
    /// </param>
    public static async Task WaitForMembers(
        ActorSystem system, int workers, IList<NodeProcess> processes, TimeSpan timeout, Func<int, NodeProcess>? relaunch = null,
        Action<string>? say = null)
    {
        var relaunched = 0;
        var cluster = Akka.Cluster.Cluster.Get(system);
        // Up is not enough: over TLS the supervisor places only on workers whose certificate has proven the role, so a job
        // sent before that would be placed on fewer workers (and a planned run off its plan).
        var proven = ProvenRoles.Get(system);
        var clock = Stopwatch.StartNew();
        while (cluster.State.Members.Count(m => m.Status == MemberStatus.Up && m.HasRole(Roles.Worker)
            && proven.Proven(m.Address, Roles.Worker)) < workers)
        {
            var dead = processes.FirstOrDefault(p => p.HasExited);
            if (dead is not null && relaunch is not null && relaunched < 2)
            {
                var index = processes.IndexOf(dead);
                say?.Invoke($"{dead.Name} exited before the run began ({LastLine(dead.Output)}); starting it again");
                dead.Dispose();
                processes[index] = relaunch(index);
                relaunched++;
            }
            else if (dead is not null)
            {
                throw new InvalidOperationException($"{dead.Name} exited before joining: {dead.Output.Trim()}");
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Only {cluster.State.Members.Count(m => m.HasRole(Roles.Worker))} of {workers} workers "
                    + $"joined within {timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(100);
        }

        // And the supervisor has their first reports: a job that arrived before them was placed on fewer workers (seen
        // under load as a 1-part plan on a 2-worker run). Best effort: a cluster without the supervisor here skips it.
        while (clock.Elapsed < timeout)
        {
            try
            {
                var reported = await system.ActorSelection("/user/supervisor/supervisor")
                    .Ask<ReportedWorkers>(GetReportedWorkers.Instance, TimeSpan.FromSeconds(2));
                if (reported.Nodes.Count >= workers)
                {
                    return;
                }
            }
            catch (AskTimeoutException)
            {
                return; // no supervisor on this node (it runs on another coordinator)
            }

            await Task.Delay(100);
        }
    }

    /// <summary>A TCP port free now (the worker binds it a moment later; its own namespace, if any, has every port free).</summary>
    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string LastLine(string output) =>
        output.Trim().Split('\n').LastOrDefault(l => l.Trim().Length > 0)?.Trim() is { } line ? line[..Math.Min(line.Length, 200)] : "no output";

    [GeneratedRegex(@"node akka(?:\.ssl)?\.tcp://pipeline@([^:]+):(\d+)")]
    private static partial Regex NodeLine();
}
