namespace PipelineActors.Onnx.Cuts;

/// <summary>
/// Picks the cuts for an N-part split: first the smallest possible cost of the slowest stage
/// (the pipeline's throughput), then, among splits within a small tolerance of it, the one that
/// moves the fewest bytes per frame on the wire (after zero suppression, so a cut after a ReLU
/// beats the same tensor before it). Cost is FLOPs unless measured costs are given; a later
/// planner passes per-node speeds (heterogeneous devices) and its own candidate positions.
/// </summary>
public static class Balancer
{
    /// <param name="stageCost">Cost of per-frame nodes [from, to); defaults to FLOPs.</param>
    /// <param name="candidates">Cut positions allowed; defaults to every cut.</param>
    /// <param name="speeds">Relative speed of the device that runs each stage (stage cost is divided by it); defaults to equal.</param>
    /// <param name="tolerance">How much slower than optimal the slowest stage may be to save bytes.</param>
    public static IReadOnlyList<int> Balance(
        ModelAnalysis analysis,
        int parts,
        Func<int, int, double>? stageCost = null,
        IReadOnlyList<int>? candidates = null,
        IReadOnlyList<double>? speeds = null,
        double tolerance = 0.02)
    {
        var cuts = (candidates ?? analysis.Cuts.Select(c => c.Position).ToList()).Distinct().Order().ToList();
        if (parts < 1)
        {
            throw new PipelineInputException($"--parts must be at least 1, not {parts}.");
        }

        if (parts - 1 > cuts.Count)
        {
            throw new PipelineInputException(
                $"--parts {parts} is more than this model allows: it has {cuts.Count} cut{(cuts.Count == 1 ? "" : "s")}, "
                + $"so at most {cuts.Count + 1} parts.");
        }

        if (speeds is not null && speeds.Count != parts)
        {
            throw new ArgumentException($"Expected {parts} speeds, got {speeds.Count}.", nameof(speeds));
        }

        stageCost ??= (from, to) => analysis.FlopsBetween(from, to);
        var points = new List<int> { 0 };
        points.AddRange(cuts);
        points.Add(analysis.NodeCount);
        var bytes = points.Select(p => p == 0 || p == analysis.NodeCount ? 0 : (double)analysis.CutAt(p).WireBytes).ToArray();
        double Cost(int stage, int i, int j) => stageCost(points[i], points[j]) / (speeds?[stage] ?? 1.0);

        var optimum = Solve(points.Count, parts, Cost, (prev, _, __) => prev, double.PositiveInfinity, out _);
        var limit = optimum * (1 + tolerance) + 1e-12;
        Solve(points.Count, parts, Cost, (prev, j, _) => prev + bytes[j], limit, out var chosen);
        return chosen.Select(i => points[i]).ToList();
    }

    /// <summary>
    /// Dynamic programme over split points. Without a limit it minimises the largest stage cost;
    /// with one, it minimises the accumulated objective among splits whose stages all fit under it.
    /// </summary>
    private static double Solve(int pointCount, int parts, Func<int, int, int, double> cost, Func<double, int, int, double> accumulate,
        double limit, out List<int> chosen)
    {
        var last = pointCount - 1;
        var minimiseMax = double.IsPositiveInfinity(limit);
        var value = new double[parts + 1, pointCount];
        var from = new int[parts + 1, pointCount];
        for (var k = 0; k <= parts; k++)
        {
            for (var j = 0; j < pointCount; j++)
            {
                value[k, j] = double.PositiveInfinity;
            }
        }

        value[0, 0] = 0;
        for (var k = 1; k <= parts; k++)
        {
            for (var j = k; j <= last; j++)
            {
                if ((k < parts && j == last) || (k == parts && j != last))
                {
                    continue;
                }

                for (var i = k - 1; i < j; i++)
                {
                    if (double.IsPositiveInfinity(value[k - 1, i]))
                    {
                        continue;
                    }

                    var c = cost(k - 1, i, j);
                    double candidate;
                    if (minimiseMax)
                    {
                        candidate = Math.Max(value[k - 1, i], c);
                    }
                    else
                    {
                        if (c > limit)
                        {
                            continue;
                        }

                        candidate = accumulate(value[k - 1, i], j, i);
                    }

                    if (candidate < value[k, j])
                    {
                        value[k, j] = candidate;
                        from[k, j] = i;
                    }
                }
            }
        }

        chosen = [];
        var at = last;
        for (var k = parts; k > 1; k--)
        {
            at = from[k, at];
            chosen.Insert(0, at);
        }

        return value[parts, last];
    }

    /// <summary>
    /// A stage cost that also charges moving frames: FLOPs plus <paramref name="flopsPerByte"/> for
    /// every byte the stage receives and sends per frame (serialization and transport take CPU on
    /// both ends of a link, on the same cores as inference).
    /// </summary>
    public static Func<int, int, double> WithTransferCost(ModelAnalysis analysis, double flopsPerByte) =>
        WithTransferCost(analysis, (from, to) => analysis.FlopsBetween(from, to), flopsPerByte);

    /// <summary>
    /// A stage cost in any unit (<paramref name="compute"/>: measured milliseconds, say) plus <paramref name="costPerByte"/>
    /// for every byte on the wire the stage receives and sends per frame.
    /// </summary>
    public static Func<int, int, double> WithTransferCost(ModelAnalysis analysis, Func<int, int, double> compute, double costPerByte)
    {
        var inputBytes = analysis.Shapes.InputSizes.Sum(t => (double)t.Bytes);
        var outputBytes = analysis.Graph.OutputNames.Sum(o => analysis.Shapes.TryGet(o, out var t) ? (double)t.WireBytes : 0);
        var cuts = analysis.Cuts.ToDictionary(c => c.Position, c => (double)c.WireBytes);
        double BytesAt(int position) => position == 0 ? inputBytes : position == analysis.NodeCount ? outputBytes : cuts.GetValueOrDefault(position);
        return (from, to) => compute(from, to) + (costPerByte * (BytesAt(from) + BytesAt(to)));
    }
}
