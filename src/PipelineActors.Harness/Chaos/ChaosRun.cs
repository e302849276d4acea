using Akka.Actor;
using PipelineActors.Runtime.DataPath.Sources;

namespace PipelineActors.Harness.Chaos;

/// <summary>
/// What <c>pipeline run --chaos MINUTES</c> adds to a local run: the monkey that does the actions, the sampler of every
/// process's resident memory, and the source that streams until the soak's minutes are over.
/// </summary>
public sealed class ChaosRun
{
    /// <summary>Workers that may run beyond <c>--nodes</c> (the cap of joins); the model is cut for that many.</summary>
    public const int ExtraWorkers = 2;

    /// <summary>How often every node's resident memory is sampled.</summary>
    public static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(10);

    /// <summary>The longest a soak may be: a day.</summary>
    public const double MaximumMinutes = 24 * 60;

    private readonly IReadOnlyList<NodeProcess> _workers;
    private readonly Func<NodeProcess, string?> _nodeOf;
    private readonly ResidentMemorySampler _memory = new(SampleInterval);
    // Only its end is kept: the ingest owns the source and disposes it.
    private Action? _endSource;

    private ChaosRun(ChaosMonkey monkey, IReadOnlyList<NodeProcess> workers, Func<NodeProcess, string?> nodeOf)
    {
        Monkey = monkey;
        _workers = workers;
        _nodeOf = nodeOf;
    }

    public ChaosMonkey Monkey { get; }

    /// <summary>The soak for a run: its seed, its cap of workers, and pauses past the failure detector's acceptable pause as configured.</summary>
    public static ChaosRun Create(
        double minutes,
        LocalRunOptions options,
        ActorSystem head,
        IReadOnlyList<NodeProcess> workers,
        Func<NodeProcess> launch,
        Action<string> say)
    {
        if (!double.IsFinite(minutes) || minutes <= 0 || minutes > MaximumMinutes)
        {
            throw new Onnx.PipelineInputException($"--chaos takes minutes above 0 and at most {MaximumMinutes:0}, not {minutes}.");
        }

        var pause = head.Settings.Config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause", TimeSpan.FromSeconds(3));
        var seed = options.ChaosSeed ?? Random.Shared.Next();
        var schedule = new ChaosSchedule(seed, options.Workers, options.Workers + ExtraWorkers, pause);
        var monkey = new ChaosMonkey(schedule, TimeSpan.FromMinutes(minutes), workers, launch, LocalCluster.NodeOf, say);
        return new ChaosRun(monkey, workers, LocalCluster.NodeOf);
    }

    /// <summary>The run's source, made to end when the soak's minutes are over.</summary>
    public IFrameSource Wrap(IFrameSource source)
    {
        var endable = new EndableSource(source);
        _endSource = endable.End;
        return endable;
    }

    /// <summary>The run may take the soak's minutes and a few more to drain, or its own timeout if that is longer.</summary>
    public TimeSpan Timeout(TimeSpan runTimeout)
    {
        var soak = Monkey.Duration + TimeSpan.FromMinutes(5);
        return soak > runTimeout ? soak : runTimeout;
    }

    /// <summary>Called from the run's polling loop: the monkey's due actions, a memory sample when one is due, the source's end.</summary>
    public void Tick(DateTime nowUtc)
    {
        Monkey.Tick(nowUtc);
        _memory.SampleIfDue(nowUtc, Processes());
        if (Monkey.Finished)
        {
            _endSource?.Invoke();
        }
    }

    /// <summary>The soak's figures, with one last memory sample of every process still running.</summary>
    public ChaosReport Report(RunReport run, DateTime nowUtc)
    {
        _memory.SampleIfDue(nowUtc, Processes(), force: true);
        return Monkey.Report(run, _memory.Rows);
    }

    /// <summary>One line of the soak's figures so far (for a run that failed before its report).</summary>
    public string Totals(DateTime nowUtc)
    {
        _memory.SampleIfDue(nowUtc, Processes(), force: true);
        var memory = string.Join(", ", _memory.Rows.Where(r => r.Samples > 1 || r.Process == "head").Select(r =>
            $"{r.Process} {r.FirstBytes >> 20}->{r.LastBytes >> 20} MiB (max {r.MaxBytes >> 20})"));
        var m = Monkey;
        return $"chaos so far: {m.Kills} kills, {m.Pauses} pauses, {m.Restarts} restarts, {m.Joins} joins, {m.Leaves} leaves, "
            + $"{m.UnaskedExits} unasked exits; resident memory first->last: {memory}";
    }

    private IEnumerable<(string Process, string? Node, int Pid)> Processes()
    {
        yield return ("head", "coordinator, ingest", Environment.ProcessId);
        foreach (var worker in _workers.Where(w => !w.HasExited).ToList())
        {
            yield return (worker.Name, _nodeOf(worker), worker.Pid);
        }
    }
}
