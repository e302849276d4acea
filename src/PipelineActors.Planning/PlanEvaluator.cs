using System.Globalization;

namespace PipelineActors.Planning;

/// <summary>What one stage costs: each replica's time, its share of the frames, and the stage's effective time.</summary>
/// <param name="ComputeMs">Effective time per frame: the device's time, or 1 / sum(1/t_i) for replicas.</param>
/// <param name="SlowestMs">The slowest replica's time, which is what one frame may wait.</param>
public sealed record StageFigures(PlanStage Stage, IReadOnlyList<double> ReplicaMs, IReadOnlyList<double> Shares, double ComputeMs, double SlowestMs);

/// <summary>One link a hop uses: the bytes of one frame, the share of frames it carries, and its times.</summary>
/// <param name="HopMs">One frame's time on it: latencyMs + b * 8 / (mbps * 1000).</param>
/// <param name="OccupancyMs">Link time per frame of the stream: share * b * 8 / (mbps * 1000).</param>
/// <param name="Codec">The codec the frame crosses with (<c>exact</c>: its exact bytes), and <see cref="Bytes"/> its size.</param>
public sealed record LinkLoad(int FromDevice, int ToDevice, long Bytes, double Share, double HopMs, double OccupancyMs, string Codec = "exact");

/// <summary>A hop out of a stage: to the next stage, or to the sink (<see cref="ToStage"/> is -1).</summary>
public sealed record HopFigures(int FromStage, int ToStage, long Bytes, IReadOnlyList<LinkLoad> Links)
{
    /// <summary>The slowest link's one-frame time (a frame may take it).</summary>
    public double HopMs => Links.Count == 0 ? 0 : Links.Max(l => l.HopMs);

    /// <summary>The busiest link's occupancy per frame.</summary>
    public double OccupancyMs => Links.Count == 0 ? 0 : Links.Max(l => l.OccupancyMs);
}

/// <summary>What limits the period: a stage's compute or a link's occupancy.</summary>
/// <param name="Index">The stage index, or the hop index in <see cref="PlanFigures.Hops"/>.</param>
public sealed record PlanBottleneck(bool IsHop, int Index, double Ms, string Description);

/// <summary>The cost model's figures for one plan; <see cref="Problem"/> says why it cannot run, if it cannot.</summary>
public sealed record PlanFigures(
    Plan Plan,
    IReadOnlyList<StageFigures> Stages,
    IReadOnlyList<HopFigures> Hops,
    double PeriodMs,
    double LatencyMs,
    PlanBottleneck Bottleneck,
    string? Problem)
{
    public double FramesPerSecond => PeriodMs > 0 ? 1000.0 / PeriodMs : double.PositiveInfinity;

    public bool IsFeasible => Problem is null;
}

/// <summary>
/// The cost model of issue 9, for any plan, so plans can be checked by hand:
/// period = max(stage compute, hop occupancy); latency = sum of stage compute + sum of hop times.
/// A replicated stage on devices with times t_i takes frames by demand: replica i gets the share
/// (1/t_i) / sum(1/t_j), the stage's effective time is 1 / sum(1/t_j), and each replica's link in and
/// out carries its share of the frames (occupancy = share * transfer). One frame's latency counts the
/// slowest replica and the slowest of those links: a bound on the worst frame.
/// </summary>
public static class PlanEvaluator
{
    public static PlanFigures Evaluate(PlanProblem problem, Plan plan)
    {
        plan.CheckShape(problem);
        string? why = null;
        var stages = new List<StageFigures>();
        foreach (var stage in plan.Stages)
        {
            var times = stage.Devices.Select(d => problem.ComputeMs(d, stage.FirstBlock, stage.EndBlock)).ToArray();
            var shares = CostModel.Shares(times, out var effective);
            stages.Add(new StageFigures(stage, times, shares, effective, times.Max()));
            foreach (var d in stage.Devices.Where(d => !problem.Fits(d, stage.FirstBlock, stage.EndBlock)))
            {
                why ??= string.Create(
                    CultureInfo.InvariantCulture,
                    $"blocks {stage.FirstBlock}..{stage.EndBlock - 1} need " +
                    $"{problem.StageBytes(stage.FirstBlock, stage.EndBlock) / 1048576.0:0.0} MiB " +
                    $"on {problem.Devices[d].Name}, which has {problem.Devices[d].MemoryMiB:0.0} MiB");
            }
        }

        var hops = new List<HopFigures>();
        for (var s = 0; s + 1 < plan.Stages.Count; s++)
        {
            var bytes = problem.CutBytes[plan.Stages[s].EndBlock];
            var from = plan.Stages[s].Devices[0];
            var next = stages[s + 1];
            var cut = plan.Stages[s].EndBlock;
            var loads = next.Stage.Devices.Select((to, j) => Load(problem, from, to, cut, next.Shares[j], ref why)).ToList();
            hops.Add(new HopFigures(s, s + 1, bytes, loads));
        }

        var last = stages[^1];
        if (problem.SinkIndex >= 0 && !(last.Stage.Devices.Count == 1 && last.Stage.Devices[0] == problem.SinkIndex))
        {
            var bytes = problem.CutBytes[problem.BlockCount];
            var loads = last.Stage.Devices
                .Select((from, j) => (from, share: last.Shares[j]))
                .Where(r => r.from != problem.SinkIndex)
                .Select(r => Load(problem, r.from, problem.SinkIndex, problem.BlockCount, r.share, ref why))
                .ToList();
            hops.Add(new HopFigures(stages.Count - 1, -1, bytes, loads));
        }

        var latency = stages.Sum(s => s.SlowestMs) + hops.Sum(h => h.HopMs);
        var bottleneck = Bottleneck(problem, stages, hops);
        return new PlanFigures(plan, stages, hops, bottleneck.Ms, latency, bottleneck, why);
    }

    private static LinkLoad Load(PlanProblem problem, int from, int to, int cut, double share, ref string? why)
    {
        if (problem.Hop(from, to, cut) is not { } price)
        {
            why ??= $"no link from {problem.Devices[from].Name} to {problem.Devices[to].Name}";
            return new LinkLoad(from, to, problem.CutBytes[cut], share, double.PositiveInfinity, double.PositiveInfinity);
        }

        return new LinkLoad(from, to, price.Bytes, share, price.HopMs, share * price.TransferMs, price.Codec);
    }

    private static PlanBottleneck Bottleneck(PlanProblem problem, List<StageFigures> stages, List<HopFigures> hops)
    {
        var best = new PlanBottleneck(false, 0, stages[0].ComputeMs, "");
        for (var s = 1; s < stages.Count; s++)
        {
            if (stages[s].ComputeMs > best.Ms)
            {
                best = new PlanBottleneck(false, s, stages[s].ComputeMs, "");
            }
        }

        for (var h = 0; h < hops.Count; h++)
        {
            if (hops[h].OccupancyMs > best.Ms)
            {
                best = new PlanBottleneck(true, h, hops[h].OccupancyMs, "");
            }
        }

        string description;
        if (best.IsHop)
        {
            var link = hops[best.Index].Links.MaxBy(l => l.OccupancyMs)!;
            description = string.Create(
                CultureInfo.InvariantCulture,
                $"link {problem.Devices[link.FromDevice].Name} -> {problem.Devices[link.ToDevice].Name} ({best.Ms:0.###} ms busy a frame)");
        }
        else
        {
            var names = string.Join("+", stages[best.Index].Stage.Devices.Select(d => problem.Devices[d].Name));
            description = string.Create(CultureInfo.InvariantCulture, $"stage {best.Index} on {names} ({best.Ms:0.###} ms compute a frame)");
        }

        return best with { Description = description };
    }
}

/// <summary>The arithmetic the evaluator and the planner share, so both price a plan the same way.</summary>
internal static class CostModel
{
    /// <summary>
    /// Demand dispatch: replica i takes (1/t_i) / sum(1/t_j) of the frames; the stage's effective time
    /// is 1 / sum(1/t_j). Replicas that take no time (zero-ms blocks) split the frames among themselves.
    /// </summary>
    public static double[] Shares(IReadOnlyList<double> times, out double effective)
    {
        var shares = new double[times.Count];
        effective = Shares([.. times], shares);
        return shares;
    }

    /// <summary>Fills each replica's share and returns the stage's effective time.</summary>
    public static double Shares(ReadOnlySpan<double> times, Span<double> shares)
    {
        var free = 0;
        double capacity = 0;
        foreach (var t in times)
        {
            free += t <= 0 ? 1 : 0;
            capacity += t > 0 ? 1.0 / t : 0;
        }

        for (var i = 0; i < times.Length; i++)
        {
            shares[i] = free > 0 ? (times[i] <= 0 ? 1.0 / free : 0) : 1.0 / times[i] / capacity;
        }

        // One device is the plain chain: its own time, not 1/(1/t) with its rounding.
        return free > 0 ? 0 : times.Length == 1 ? times[0] : 1.0 / capacity;
    }

    /// <summary>Whether a figure keeps within a period cap, allowing for rounding between equal sums taken in another order.</summary>
    public static bool Within(double ms, double cap) => ms <= cap + cap * 1e-12;
}
