using System.Diagnostics;
using System.Globalization;

namespace PipelineActors.Harness.Chaos;

/// <summary>One thing the soak did or saw, with when it happened (UTC, and seconds from the soak's start).</summary>
public sealed record ChaosEvent(DateTime AtUtc, double Seconds, string Action, string Worker, string? Node, string Detail);

/// <summary>A chaos soak's figures: what it did, what came through, and each process's resident memory.</summary>
public sealed record ChaosReport(
    double Minutes,
    int Seed,
    int Kills,
    int Pauses,
    int Restarts,
    int Joins,
    int Leaves,
    int UnaskedExits,
    long FramesIn,
    long FramesOut,
    long Lost,
    long Duplicated,
    long OutOfOrder,
    long Failed,
    bool Clean,
    IReadOnlyList<ResidentMemoryRow> Memory,
    IReadOnlyList<ChaosEvent> Actions);

/// <summary>
/// Does the soak's actions to the run's worker processes, as <see cref="ChaosSchedule"/> draws them: SIGKILL (a replacement
/// starts a few seconds later), SIGSTOP past the failure detector's acceptable pause then SIGCONT, SIGTERM and start again,
/// start one more, SIGTERM one for good. A worker that exits without being asked (one the cluster downed while it was
/// paused exits when it wakes) is replaced. Driven by <see cref="Tick"/> from the run's polling loop, so the run's list
/// of workers is only ever touched from one place at a time; new workers start through the run's own launch path.
/// </summary>
public sealed class ChaosMonkey
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private readonly ChaosSchedule _schedule;
    private readonly IReadOnlyList<NodeProcess> _workers;
    private readonly Func<NodeProcess> _launch;
    private readonly Func<NodeProcess, string?> _nodeOf;
    private readonly Action<string> _say;
    private readonly Dictionary<NodeProcess, DateTime> _pausedUntil = [];
    private readonly Dictionary<NodeProcess, (Task Stopped, bool StartAgain)> _stopping = [];
    private readonly HashSet<NodeProcess> _asked = [];
    private readonly List<DateTime> _replacementsDue = [];
    private readonly List<ChaosEvent> _events = [];
    private DateTime _startUtc;
    private DateTime _endUtc;
    private DateTime _nextActionUtc;
    private bool _started;

    /// <param name="workers">The run's worker processes (read here; <paramref name="launch"/> adds to it).</param>
    /// <param name="launch">Starts one more worker the way the run starts all of them and adds it to the run's list.</param>
    public ChaosMonkey(
        ChaosSchedule schedule,
        TimeSpan duration,
        IReadOnlyList<NodeProcess> workers,
        Func<NodeProcess> launch,
        Func<NodeProcess, string?> nodeOf,
        Action<string> say)
    {
        _schedule = schedule;
        Duration = duration;
        _workers = workers;
        _launch = launch;
        _nodeOf = nodeOf;
        _say = say;
    }

    public TimeSpan Duration { get; }

    public int Kills { get; private set; }

    public int Pauses { get; private set; }

    public int Restarts { get; private set; }

    public int Joins { get; private set; }

    public int Leaves { get; private set; }

    /// <summary>Workers that exited without being asked to (replaced like a killed one).</summary>
    public int UnaskedExits { get; private set; }

    /// <summary>True once the soak's minutes are over: no more actions, every paused worker resumed.</summary>
    public bool Finished { get; private set; }

    public IReadOnlyList<ChaosEvent> Events => _events;

    /// <summary>Does what is due at <paramref name="nowUtc"/>; the first call starts the soak's clock.</summary>
    public void Tick(DateTime nowUtc)
    {
        if (!_started)
        {
            _started = true;
            _startUtc = nowUtc;
            _endUtc = nowUtc + Duration;
            _nextActionUtc = nowUtc + TimeSpan.FromSeconds(_schedule.MinimumGapSeconds);
            Log(nowUtc, "start", "-", null, $"{Duration.TotalMinutes:0.##} min, seed {_schedule.Seed}, up to {_schedule.MaximumWorkers} workers, "
                + $"pauses past the acceptable {_schedule.AcceptablePause.TotalSeconds:0.###} s");
        }

        if (Finished)
        {
            return;
        }

        ResumeDue(nowUtc);
        FinishStops(nowUtc);
        NoticeUnaskedExits(nowUtc);
        if (nowUtc >= _endUtc)
        {
            Finish(nowUtc);
            return;
        }

        StartDueReplacements(nowUtc);
        if (nowUtc < _nextActionUtc)
        {
            return;
        }

        var healthy = Healthy();
        var state = new ChaosState(Running().Count, healthy.Count, _replacementsDue.Count + _stopping.Count(s => s.Value.StartAgain),
            _pausedUntil.Count);
        var action = _schedule.Next(state);
        if (action is null)
        {
            _nextActionUtc = nowUtc + TimeSpan.FromSeconds(1);
            return;
        }

        _nextActionUtc = nowUtc + TimeSpan.FromSeconds(action.GapSeconds);
        Do(action, healthy, nowUtc);
    }

    /// <summary>The soak's figures, given the run's audited counts and the memory samples.</summary>
    public ChaosReport Report(RunReport run, IReadOnlyList<ResidentMemoryRow> memory) => new(
        Math.Round(Duration.TotalMinutes, 3),
        _schedule.Seed,
        Kills,
        Pauses,
        Restarts,
        Joins,
        Leaves,
        UnaskedExits,
        run.FramesIn,
        run.ResultsOut,
        run.Lost,
        run.Duplicated,
        run.OutOfOrder,
        run.Failed,
        run.Clean,
        memory,
        _events.ToList());

    /// <summary>Resumes every paused worker (also on a failed run, so none is left stopped).</summary>
    public void ResumeAll(DateTime nowUtc)
    {
        foreach (var process in _pausedUntil.Keys.ToList())
        {
            Resume(process, nowUtc);
        }
    }

    private void Do(ChaosAction action, List<NodeProcess> healthy, DateTime nowUtc)
    {
        switch (action.Kind)
        {
            case ChaosActionKind.Join:
            {
                var joined = _launch();
                Joins++;
                Log(nowUtc, "join", joined.Name, null, $"started (pid {joined.Pid}); {Running().Count} running");
                return;
            }

            case ChaosActionKind.Kill:
            {
                var victim = healthy[action.Victim];
                _asked.Add(victim);
                victim.Kill();
                Kills++;
                _replacementsDue.Add(nowUtc + TimeSpan.FromSeconds(action.ReplaceAfterSeconds));
                Log(nowUtc, "SIGKILL", victim.Name, _nodeOf(victim), $"pid {victim.Pid}; a replacement starts in {action.ReplaceAfterSeconds:0.0} s");
                return;
            }

            case ChaosActionKind.Pause:
            {
                var victim = healthy[action.Victim];
                if (victim.Signal("STOP"))
                {
                    Pauses++;
                    _pausedUntil[victim] = nowUtc + TimeSpan.FromSeconds(action.PauseSeconds);
                    Log(nowUtc, "SIGSTOP", victim.Name, _nodeOf(victim), $"pid {victim.Pid} for {action.PauseSeconds:0.0} s");
                }

                return;
            }

            case ChaosActionKind.Restart:
            case ChaosActionKind.Leave:
            {
                var victim = healthy[action.Victim];
                var again = action.Kind == ChaosActionKind.Restart;
                _asked.Add(victim);
                _stopping[victim] = (victim.StopAsync(StopTimeout), again);
                if (again)
                {
                    Restarts++;
                }
                else
                {
                    Leaves++;
                }

                Log(nowUtc, again ? "restart" : "leave", victim.Name, _nodeOf(victim), again ? "SIGTERM; starts again once it has left"
                    : "SIGTERM for good");
                return;
            }

            default:
                throw new UnreachableException($"No chaos action {action.Kind}.");
        }
    }

    private void ResumeDue(DateTime nowUtc)
    {
        foreach (var (process, until) in _pausedUntil.ToList())
        {
            if (nowUtc >= until)
            {
                Resume(process, nowUtc);
            }
        }
    }

    private void Resume(NodeProcess process, DateTime nowUtc)
    {
        _pausedUntil.Remove(process);
        if (process.Signal("CONT"))
        {
            Log(nowUtc, "SIGCONT", process.Name, _nodeOf(process), $"pid {process.Pid}");
        }
    }

    private void FinishStops(DateTime nowUtc)
    {
        foreach (var (process, (stopped, again)) in _stopping.ToList())
        {
            if (!stopped.IsCompleted)
            {
                continue;
            }

            _stopping.Remove(process);
            if (again && nowUtc < _endUtc)
            {
                var restarted = _launch();
                Log(nowUtc, "started again", restarted.Name, null, $"in place of {process.Name} (pid {restarted.Pid})");
            }
        }
    }

    private void NoticeUnaskedExits(DateTime nowUtc)
    {
        foreach (var process in _workers.Where(w => w.HasExited && !_asked.Contains(w)).ToList())
        {
            _asked.Add(process);
            _pausedUntil.Remove(process);
            UnaskedExits++;
            _replacementsDue.Add(nowUtc + TimeSpan.FromSeconds(2));
            var last = process.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
            last = last.Length > 200 ? last[..200] + "..." : last;
            Log(nowUtc, "exited", process.Name, _nodeOf(process), $"without being asked (last line: {last}); a replacement starts in 2 s");
        }
    }

    private void StartDueReplacements(DateTime nowUtc)
    {
        foreach (var due in _replacementsDue.Where(d => nowUtc >= d).ToList())
        {
            _replacementsDue.Remove(due);
            var replacement = _launch();
            Log(nowUtc, "replacement", replacement.Name, null, $"started (pid {replacement.Pid})");
        }
    }

    private void Finish(DateTime nowUtc)
    {
        ResumeAll(nowUtc);
        Finished = true;
        _replacementsDue.Clear();
        Log(nowUtc, "end", "-", null, $"{Kills} kills, {Pauses} pauses, {Restarts} restarts, {Joins} joins, {Leaves} leaves, "
            + $"{UnaskedExits} unasked exits; {Running().Count} workers running; the source ends now");
    }

    private List<NodeProcess> Running() => _workers.Where(w => !w.HasExited).ToList();

    private List<NodeProcess> Healthy() =>
        _workers.Where(w => !w.HasExited && !_asked.Contains(w) && !_pausedUntil.ContainsKey(w) && !_stopping.ContainsKey(w)).ToList();

    private void Log(DateTime nowUtc, string action, string worker, string? node, string detail)
    {
        var seconds = Math.Round((nowUtc - _startUtc).TotalSeconds, 3);
        _events.Add(new ChaosEvent(nowUtc, seconds, action, worker, node, detail));
        var where = node is null ? worker : $"{worker} ({node})";
        _say($"{nowUtc.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} chaos {action} {where}: {detail}");
    }
}
