namespace PipelineActors.Planning.Tests;

/// <summary>How a random instance is drawn.</summary>
public sealed record ProblemShape(
    int MinDevices,
    int MaxDevices,
    int MinBlocks,
    int MaxBlocks,
    bool Memory = false,
    double LinkDensity = 0.7,
    double DefaultLinkChance = 0.3,
    double SinkChance = 0.4,
    bool Codecs = false);

/// <summary>Random plan problems: unequal devices, sparse and directional links, sometimes a sink or memory limits.</summary>
public static class RandomProblems
{
    public static PlanProblem Draw(Random random, ProblemShape shape)
    {
        var deviceCount = random.Next(shape.MinDevices, shape.MaxDevices + 1);
        var blockCount = random.Next(shape.MinBlocks, shape.MaxBlocks + 1);
        var typeCount = random.Next(1, deviceCount + 1);
        var types = Enumerable.Range(0, typeCount).Select(t => $"t{t}").ToArray();

        // Each type has a speed; blocks scale by it with some per-block noise, as real profiles do.
        var speed = types.Select(_ => Math.Exp(random.NextDouble() * 2.5)).ToArray();
        var blocks = Enumerable.Range(0, blockCount).Select(i =>
        {
            var work = random.NextDouble() < 0.05 ? 0 : 1 + (random.NextDouble() * 30);
            var ms = types.Select((t, j) => (t, v: work / speed[j] * (0.7 + (random.NextDouble() * 0.6)))).ToDictionary(x => x.t, x => x.v);
            var bytes = (long)Math.Exp(7 + (random.NextDouble() * 8));
            // Codecs as a fidelity run measures them: fewer bytes for some codec time, a fidelity around the budget's 0.99.
            List<PlanCodec>? codecs = shape.Codecs
                ? [.. Enumerable.Range(0, random.Next(1, 4)).Select(c => new PlanCodec(
                    $"c{c}", (long)(bytes * (0.05 + (random.NextDouble() * 0.4))), random.NextDouble() * 2, random.NextDouble() * 2,
                    0.985 + (random.NextDouble() * 0.015)))]
                : null;
            return new PlanBlock(
                $"b{i}",
                bytes,
                ms,
                WeightBytes: shape.Memory ? random.Next(0, 40 << 20) : 0,
                ActivationBytes: shape.Memory && random.NextDouble() < 0.5 ? random.Next(0, 20 << 20) : null,
                Codecs: codecs);
        }).ToList();
        var source = random.Next(deviceCount);
        var devices = Enumerable.Range(0, deviceCount).Select(d => new PlanDevice(
            $"d{d}",
            types[random.Next(typeCount)],
            d == source,
            shape.Memory && random.NextDouble() < 0.8 ? 10 + (random.NextDouble() * 120) : null)).ToList();
        var links = new List<PlanLink>();
        for (var a = 0; a < deviceCount; a++)
        {
            for (var b = 0; b < deviceCount; b++)
            {
                if (a != b && random.NextDouble() < shape.LinkDensity)
                {
                    links.Add(new PlanLink($"d{a}", $"d{b}", Mbps(random), random.NextDouble() * 15));
                }
            }
        }

        LinkFigures? defaultLink = random.NextDouble() < shape.DefaultLinkChance ? new LinkFigures(Mbps(random), random.NextDouble() * 5) : null;
        var sink = random.NextDouble() < shape.SinkChance ? $"d{random.Next(deviceCount)}" : null;
        return new PlanProblem(
            (long)Math.Exp(9 + (random.NextDouble() * 6)), blocks, devices, links, defaultLink, sink, fidelityBudget: shape.Codecs ? 0.99 : null);
    }

    /// <summary>1.6 Mbit/s Wi-Fi to 1 Gbit/s Ethernet, uniform on a log scale.</summary>
    private static double Mbps(Random random) => Math.Exp(Math.Log(1.6) + (random.NextDouble() * (Math.Log(1000) - Math.Log(1.6))));
}

/// <summary>Every plan the cost model allows, one by one: the reference the planner is checked against.</summary>
public static class BruteForce
{
    public static List<PlanFigures> FeasiblePlans(PlanProblem problem, int maxReplicas) =>
        AllPlans(problem, maxReplicas).Select(p => PlanEvaluator.Evaluate(problem, p)).Where(f => f.IsFeasible).ToList();

    public static IEnumerable<Plan> AllPlans(PlanProblem problem, int maxReplicas)
    {
        var source = problem.SourceIndex;
        for (var k = 0; k <= problem.BlockCount; k++)
        {
            var stages = new List<PlanStage> { new([source], 0, k) };
            foreach (var plan in Extend(problem, stages, maxReplicas))
            {
                yield return plan;
            }
        }
    }

    private static IEnumerable<Plan> Extend(PlanProblem problem, List<PlanStage> stages, int maxReplicas)
    {
        var cut = stages[^1].EndBlock;
        if (cut == problem.BlockCount)
        {
            yield return new Plan([.. stages]);
            yield break;
        }

        var free = Enumerable.Range(0, problem.DeviceCount).Where(d => stages.All(s => !s.Devices.Contains(d))).ToList();
        foreach (var d in free)
        {
            for (var end = cut + 1; end <= problem.BlockCount; end++)
            {
                stages.Add(new PlanStage([d], cut, end - cut));
                foreach (var plan in Extend(problem, stages, maxReplicas))
                {
                    yield return plan;
                }

                stages.RemoveAt(stages.Count - 1);
            }
        }

        // A replicated tail: every set of 2..maxReplicas free devices runs the rest.
        for (var mask = 1; mask < 1 << free.Count; mask++)
        {
            var group = free.Where((_, i) => (mask & (1 << i)) != 0).ToList();
            if (group.Count >= 2 && group.Count <= maxReplicas)
            {
                yield return new Plan([.. stages, new PlanStage(group, cut, problem.BlockCount - cut)]);
            }
        }
    }
}
