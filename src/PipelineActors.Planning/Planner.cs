using System.Diagnostics;
using System.Globalization;
using PipelineActors.Onnx;

namespace PipelineActors.Planning;

/// <summary>What a plan is chosen for.</summary>
public enum PlanObjective
{
    /// <summary>The least period (most frames/s); ties go to the lower latency.</summary>
    Throughput,

    /// <summary>The least one-frame latency, optionally among plans of at least <see cref="PlanRequest.MinFps"/>.</summary>
    Latency,
}

/// <summary>How to plan: the objective, an optional frames/s floor, and how far replication may go.</summary>
/// <param name="MinFps">With <see cref="PlanObjective.Latency"/>: only plans of at least this many frames/s.</param>
/// <param name="MaxReplicas">Devices a replicated stage may have; 1 turns replication off.</param>
/// <param name="ExactDeviceLimit">Up to this many devices the search is exact; beyond, the heuristic.</param>
public sealed record PlanRequest(
    PlanObjective Objective = PlanObjective.Throughput,
    double? MinFps = null,
    int MaxReplicas = 1,
    int ExactDeviceLimit = Planner.ExactDevices);

/// <summary>The chosen plan, its figures under the cost model, and how it was found.</summary>
/// <param name="BoundPeriodMs">Compute alone spread over every device by speed: 1 / sum(1 / whole-model ms).</param>
/// <param name="Exact">Whether the search covered every plan (false: the heuristic beyond the exact device limit).</param>
public sealed record PlanResult(PlanFigures Figures, double BoundPeriodMs, bool Exact, string Method, TimeSpan Elapsed)
{
    /// <summary>How far the plan's period is above the bound (1.0 = at the bound); NaN when the bound is zero.</summary>
    public double BoundRatio => BoundPeriodMs > 0 ? Figures.PeriodMs / BoundPeriodMs : double.NaN;
}

/// <summary>
/// Chooses which devices to use, in what order, with which blocks and replicas, under the cost model
/// of <see cref="PlanEvaluator"/>. Exact up to <see cref="ExactDevices"/> devices. Beyond, a heuristic:
/// the exact search on a few selections of the source plus <see cref="ExactDevices"/> - 1 other
/// devices (the fastest at the whole model; the cheapest to send the frame to; the best sum of both;
/// those grown outwards from the source along the widest links), keeping the best plan found, then
/// a local search that swaps one selected device for one left out while that improves the plan.
/// </summary>
public static class Planner
{
    public const int ExactDevices = 8;

    /// <summary>Rounds of the heuristic's swap search; each tries every swap of one device in for one out.</summary>
    public const int SwapRounds = 3;

    public static PlanResult Plan(PlanProblem problem, PlanRequest request)
    {
        if (request.MaxReplicas < 1)
        {
            throw new PipelineInputException($"--max-replicas must be at least 1, not {request.MaxReplicas}.");
        }

        if (request.MinFps is { } fps && !(fps > 0 && double.IsFinite(fps)))
        {
            throw new PipelineInputException($"--min-fps must be a number of frames/s above 0, not {fps.ToString(CultureInfo.InvariantCulture)}.");
        }

        var clock = Stopwatch.StartNew();
        var exact = problem.DeviceCount <= Math.Max(request.ExactDeviceLimit, 1);
        var selections = exact ? [Enumerable.Range(0, problem.DeviceCount).ToArray()] : Selections(problem, request.ExactDeviceLimit);
        var plans = selections
            .Select(s => Solve(problem, s, request))
            .Where(p => p is not null)
            .Select(p => PlanEvaluator.Evaluate(problem, p!))
            .ToList();
        if (plans.Count == 0)
        {
            throw NoPlan(problem, request, selections);
        }

        var best = plans.MinBy(f => Key(f, request))!;
        if (!exact)
        {
            best = Improve(problem, request, best);
        }

        if (request.MinFps is { } floor && best.FramesPerSecond < floor * (1 - 1e-9))
        {
            // Only under the throughput objective: the fastest plan misses the floor, so every plan does.
            throw Unreachable(floor, best.FramesPerSecond);
        }

        var method = exact
            ? $"exact over {problem.DeviceCount} device{(problem.DeviceCount == 1 ? "" : "s")}"
            : $"heuristic: exact over {selections.Count} selections of {request.ExactDeviceLimit} of {problem.DeviceCount} devices, then swaps";
        return new PlanResult(best, Bound(problem), exact, method, clock.Elapsed);
    }

    private static (double, double) Key(PlanFigures f, PlanRequest request) =>
        request.Objective == PlanObjective.Throughput ? (f.PeriodMs, f.LatencyMs) : (f.LatencyMs, f.PeriodMs);

    /// <summary>
    /// The heuristic's local search: swap one device of the best selection for one left out, keep a swap
    /// that improves the plan, for at most <see cref="SwapRounds"/> rounds.
    /// </summary>
    private static PlanFigures Improve(PlanProblem problem, PlanRequest request, PlanFigures best)
    {
        var selection = best.Plan.Stages.SelectMany(s => s.Devices).ToHashSet();
        var size = Math.Min(request.ExactDeviceLimit, problem.DeviceCount);

        // Fill the selection up to the limit with the fastest devices the plan does not use.
        foreach (var d in Enumerable.Range(0, problem.DeviceCount).Where(d => !selection.Contains(d)).OrderBy(problem.WholeModelMs))
        {
            if (selection.Count >= size)
            {
                break;
            }

            selection.Add(d);
        }

        for (var round = 0; round < SwapRounds; round++)
        {
            var improved = false;
            var inside = selection.Where(d => d != problem.SourceIndex).ToList();
            var outside = Enumerable.Range(0, problem.DeviceCount).Where(d => !selection.Contains(d)).ToList();
            foreach (var (drop, add) in inside.SelectMany(i => outside.Select(o => (i, o))))
            {
                var trial = selection.Where(d => d != drop).Append(add).Order().ToArray();
                if (Solve(problem, trial, request, best) is not { } plan)
                {
                    continue;
                }

                var figures = PlanEvaluator.Evaluate(problem, plan);
                if (Better(Key(figures, request).Item1, Key(best, request).Item1))
                {
                    best = figures;
                    selection = [.. trial];
                    improved = true;
                    break;
                }
            }

            if (!improved)
            {
                break;
            }
        }

        return best;
    }

    /// <summary>Compute alone on all devices: 1 / sum over devices of 1 / (whole-model ms); 0 if a device takes no time.</summary>
    public static double Bound(PlanProblem problem)
    {
        var times = Enumerable.Range(0, problem.DeviceCount).Select(problem.WholeModelMs).ToList();
        return times.Any(t => t <= 0) ? 0 : 1.0 / times.Sum(t => 1.0 / t);
    }

    /// <param name="incumbent">A plan to beat (the heuristic's swaps): its figure bounds the search, which then
    /// returns null unless it finds a strictly better plan.</param>
    private static Plan? Solve(PlanProblem problem, int[] selection, PlanRequest request, PlanFigures? incumbent = null)
    {
        var search = new ExactSearch(problem, selection, request.MaxReplicas);
        var simple = SimplePlans(problem, selection);
        if (request.Objective == PlanObjective.Latency)
        {
            var cap = request.MinFps is { } fps ? 1000.0 / fps : double.PositiveInfinity;
            var bound = simple
                .Where(f => CostModel.Within(f.PeriodMs, cap))
                .Select(f => f.LatencyMs)
                .Append(incumbent?.LatencyMs ?? double.PositiveInfinity)
                .Min();
            var quickest = search.MinLatency(cap, bound);
            return incumbent is null || (quickest is not null && Better(PlanEvaluator.Evaluate(problem, quickest).LatencyMs, incumbent.LatencyMs))
                ? quickest
                : null;
        }

        // The least period first, then the least latency among plans of that period.
        var fastest = search.MinPeriod(simple.Select(f => f.PeriodMs).Append(incumbent?.PeriodMs ?? double.PositiveInfinity).Min());
        if (fastest is null)
        {
            return null;
        }

        var period = PlanEvaluator.Evaluate(problem, fastest);
        if (incumbent is not null && !Better(period.PeriodMs, incumbent.PeriodMs))
        {
            return null;
        }

        return search.MinLatency(period.PeriodMs, period.LatencyMs) ?? fastest;
    }

    private static bool Better(double candidate, double incumbent) => candidate < incumbent * (1 - 1e-12);

    /// <summary>
    /// Plans that are quick to price and often good, whose figures bound the exact search: all on the
    /// source, the frame sent to one device, and chains over the fastest devices with the blocks split by speed.
    /// </summary>
    private static List<PlanFigures> SimplePlans(PlanProblem problem, int[] selection)
    {
        var source = problem.SourceIndex;
        var others = selection.Where(d => d != source).OrderBy(problem.WholeModelMs).ToList();
        var n = problem.BlockCount;
        var plans = new List<Plan> { Planning.Plan.AllOnSource(problem) };
        plans.AddRange(others.Select(d => Planning.Plan.Chain(problem, [source, d], [0, n])));
        for (var count = 1; count <= others.Count && count <= n; count++)
        {
            var chain = others.Take(count).Prepend(source).ToList();
            var speed = chain.Select(d => problem.WholeModelMs(d) > 0 ? 1.0 / problem.WholeModelMs(d) : 1e9).ToList();
            var reference = chain.MinBy(problem.WholeModelMs);
            var total = problem.WholeModelMs(reference);
            var ends = new List<int>();
            double share = 0;
            var cut = 0;
            for (var i = 0; i < chain.Count - 1; i++)
            {
                share += speed[i] / speed.Sum();

                // Every device after the source runs at least one block.
                var latest = n - (chain.Count - 1 - i);
                while (cut < latest && problem.ComputeMs(reference, 0, cut + 1) <= share * total)
                {
                    cut++;
                }

                cut = Math.Max(cut, i == 0 ? 0 : ends[^1] + 1);
                ends.Add(cut);
            }

            ends.Add(n);
            plans.Add(Planning.Plan.Chain(problem, chain, ends));
        }

        return plans.Select(p => PlanEvaluator.Evaluate(problem, p)).Where(f => f.IsFeasible).ToList();
    }

    private static PipelineInputException NoPlan(PlanProblem problem, PlanRequest request, List<int[]> selections)
    {
        if (request.MinFps is { } fps)
        {
            var fastest = selections
                .Select(s => Solve(problem, s, request with { Objective = PlanObjective.Throughput, MinFps = null }))
                .Where(p => p is not null)
                .Select(p => PlanEvaluator.Evaluate(problem, p!).FramesPerSecond)
                .DefaultIfEmpty(0)
                .Max();
            if (fastest > 0)
            {
                return Unreachable(fps, fastest);
            }
        }

        return new PipelineInputException(
            "No plan fits the table: every placement of the blocks runs out of a device's memory or needs a link the table lacks; " +
            "raise memoryMiB, add links or a defaultLink.");
    }

    private static PipelineInputException Unreachable(double floor, double fastest) => new(string.Create(
        CultureInfo.InvariantCulture,
        $"No plan reaches {floor:0.###} frames/s on these devices and links; the fastest gives {fastest:0.###} frames/s, so lower --min-fps."));

    /// <summary>The heuristic's device selections: the source plus the best few others by several scores.</summary>
    internal static List<int[]> Selections(PlanProblem problem, int size)
    {
        var source = problem.SourceIndex;
        var others = Enumerable.Range(0, problem.DeviceCount).Where(d => d != source).ToList();
        var take = Math.Max(size - 1, 0);
        double SendMs(int d) => problem.Link(source, d)?.HopMs(problem.InputBytes) ?? double.PositiveInfinity;

        var orders = new List<IEnumerable<int>>
        {
            others.OrderBy(problem.WholeModelMs),
            others.OrderBy(SendMs).ThenBy(problem.WholeModelMs),
            others.OrderBy(d => problem.WholeModelMs(d) + SendMs(d)),
            Widest(problem),
        };
        var seen = new HashSet<string>();
        var selections = new List<int[]>();
        foreach (var order in orders)
        {
            var selection = order.Take(take).Append(source).Order().ToArray();
            if (seen.Add(string.Join(",", selection)))
            {
                selections.Add(selection);
            }
        }

        return selections;
    }

    /// <summary>Devices grown from the source, each time the one with the widest link from those already chosen.</summary>
    private static List<int> Widest(PlanProblem problem)
    {
        var chosen = new List<int> { problem.SourceIndex };
        var left = Enumerable.Range(0, problem.DeviceCount).Where(d => d != problem.SourceIndex).ToHashSet();
        var order = new List<int>();
        while (left.Count > 0)
        {
            var next = left
                .OrderByDescending(d => chosen.Max(c => problem.Link(c, d)?.Mbps ?? 0))
                .ThenBy(problem.WholeModelMs)
                .First();
            chosen.Add(next);
            left.Remove(next);
            order.Add(next);
        }

        return order;
    }
}
