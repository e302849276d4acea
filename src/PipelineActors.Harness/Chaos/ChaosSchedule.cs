namespace PipelineActors.Harness.Chaos;

/// <summary>What the chaos soak does to a worker.</summary>
public enum ChaosActionKind
{
    /// <summary>SIGKILL a worker; a fresh one starts a few seconds later.</summary>
    Kill,

    /// <summary>SIGSTOP a worker for longer than the failure detector's acceptable pause, then SIGCONT.</summary>
    Pause,

    /// <summary>SIGTERM a worker (a graceful leave) and start it again once it has exited.</summary>
    Restart,

    /// <summary>Start one worker more than are running.</summary>
    Join,

    /// <summary>SIGTERM a worker for good (only while more than the run's nominal count are running).</summary>
    Leave,
}

/// <summary>How the cluster stands when the next action is drawn.</summary>
/// <param name="Running">Worker processes running (paused and stopping ones included).</param>
/// <param name="Healthy">Running workers that are neither paused nor being stopped: the ones an action may hit.</param>
/// <param name="Starting">Workers due to start (replacements of killed or restarted ones).</param>
/// <param name="Paused">Workers stopped with SIGSTOP now.</param>
public sealed record ChaosState(int Running, int Healthy, int Starting, int Paused);

/// <summary>One drawn action: what, on which healthy worker, its timings, and how long until the next one is drawn.</summary>
/// <param name="GapSeconds">Seconds to wait after this action before drawing the next.</param>
/// <param name="Victim">Index into the healthy workers (ignored by a join).</param>
/// <param name="PauseSeconds">How long a pause lasts (SIGSTOP to SIGCONT).</param>
/// <param name="ReplaceAfterSeconds">How long after a kill its replacement starts.</param>
public sealed record ChaosAction(double GapSeconds, ChaosActionKind Kind, int Victim, double PauseSeconds, double ReplaceAfterSeconds);

/// <summary>
/// The soak's actions drawn from a seed: the same seed and the same states give the same actions, so a soak that found
/// a bug can be replayed. Kills, pauses and restarts keep at least one healthy worker; joins stop at the cap; leaves only
/// take the count back down towards the run's nominal count. Until every kind has happened once, a kind not yet seen is
/// drawn first, so that even a short soak exercises all of them.
/// </summary>
public sealed class ChaosSchedule
{
    private readonly Random _random;
    private readonly HashSet<ChaosActionKind> _seen = [];

    /// <param name="seed">The soak's seed (<c>--chaos-seed</c>).</param>
    /// <param name="nominalWorkers">Workers the run started with (<c>--nodes</c>).</param>
    /// <param name="maximumWorkers">Most workers running or starting at once.</param>
    /// <param name="acceptablePause">The failure detector's acceptable heartbeat pause: a pause lasts 1-3 s longer than this.</param>
    /// <param name="minimumGapSeconds">Fewest seconds between two actions.</param>
    /// <param name="maximumGapSeconds">Most seconds between two actions.</param>
    public ChaosSchedule(
        int seed,
        int nominalWorkers,
        int maximumWorkers,
        TimeSpan acceptablePause,
        double minimumGapSeconds = 3,
        double maximumGapSeconds = 7)
    {
        if (nominalWorkers < 1 || maximumWorkers < nominalWorkers)
        {
            throw new ArgumentOutOfRangeException(nameof(maximumWorkers),
                $"Chaos needs 1 <= nominal ({nominalWorkers}) <= maximum ({maximumWorkers}) workers.");
        }

        if (minimumGapSeconds <= 0 || maximumGapSeconds < minimumGapSeconds)
        {
            throw new ArgumentOutOfRangeException(nameof(maximumGapSeconds),
                $"Chaos needs 0 < minimum ({minimumGapSeconds}) <= maximum ({maximumGapSeconds}) gap.");
        }

        _random = new Random(seed);
        Seed = seed;
        NominalWorkers = nominalWorkers;
        MaximumWorkers = maximumWorkers;
        AcceptablePause = acceptablePause;
        MinimumGapSeconds = minimumGapSeconds;
        MaximumGapSeconds = maximumGapSeconds;
    }

    public int Seed { get; }

    public int NominalWorkers { get; }

    public int MaximumWorkers { get; }

    public TimeSpan AcceptablePause { get; }

    public double MinimumGapSeconds { get; }

    public double MaximumGapSeconds { get; }

    /// <summary>The kinds that may happen in this state; empty when none may (e.g. a single healthy worker at the cap).</summary>
    public IReadOnlyList<ChaosActionKind> Allowed(ChaosState state)
    {
        var allowed = new List<ChaosActionKind>();
        var population = state.Running + state.Starting;
        // Hitting the last healthy worker would leave no one to carry the stream; one pause at a time keeps the
        // cluster able to reach a verdict on it.
        if (state.Healthy >= 2)
        {
            allowed.Add(ChaosActionKind.Kill);
            if (state.Paused == 0)
            {
                allowed.Add(ChaosActionKind.Pause);
            }

            allowed.Add(ChaosActionKind.Restart);
            if (population > NominalWorkers)
            {
                allowed.Add(ChaosActionKind.Leave);
            }
        }

        if (population < MaximumWorkers)
        {
            allowed.Add(ChaosActionKind.Join);
        }

        return allowed;
    }

    /// <summary>The next action for this state, or null when no kind is allowed in it (the caller draws again later).</summary>
    public ChaosAction? Next(ChaosState state)
    {
        // Every draw takes the same random numbers whatever the state, so one state that differs (a slow exit)
        // shifts no later timing.
        var gap = MinimumGapSeconds + ((MaximumGapSeconds - MinimumGapSeconds) * _random.NextDouble());
        var pick = _random.NextDouble();
        var victimDraw = _random.NextDouble();
        var pause = AcceptablePause.TotalSeconds + 1 + (2 * _random.NextDouble());
        var replaceAfter = 2 + (4 * _random.NextDouble());
        var allowed = Allowed(state);
        if (allowed.Count == 0)
        {
            return null;
        }

        var unseen = allowed.Where(k => !_seen.Contains(k)).ToList();
        var from = unseen.Count > 0 ? unseen : allowed;
        var kind = from[Math.Min(from.Count - 1, (int)(pick * from.Count))];
        _seen.Add(kind);
        var victim = kind == ChaosActionKind.Join ? 0 : Math.Min(state.Healthy - 1, (int)(victimDraw * state.Healthy));
        return new ChaosAction(Math.Round(gap, 3), kind, victim, Math.Round(pause, 3), Math.Round(replaceAfter, 3));
    }
}
