using Xunit.Abstractions;

namespace PipelineActors.Planning.Tests;

/// <summary>The heuristic beyond 8 devices against the exact search on the same random instances, with its gap reported.</summary>
public sealed class HeuristicSpecs(ITestOutputHelper output)
{
    // The shipped limit (8 of 10-12 devices), and a harder setting (4 of 6-8) where it must leave more out.
    [Theory]
    [InlineData(PlanObjective.Throughput, 8, 10, 12, 0.05)]
    [InlineData(PlanObjective.Latency, 8, 10, 12, 0.05)]
    [InlineData(PlanObjective.Throughput, 4, 6, 8, 0.15)]
    [InlineData(PlanObjective.Latency, 4, 6, 8, 0.15)]
    public void The_heuristic_beyond_the_exact_limit_stays_near_the_exact_answer(
        PlanObjective objective, int limit, int minDevices, int maxDevices, double meanGapBound)
    {
        var shape = new ProblemShape(minDevices, maxDevices, 4, 10, LinkDensity: 0.6, DefaultLinkChance: 0.2);
        var random = new Random(900 + limit + (int)objective);
        var gaps = new List<double>();
        for (var i = 0; i < 40; i++)
        {
            var problem = RandomProblems.Draw(random, shape);
            PlanResult exact;
            try
            {
                exact = Planner.Plan(problem, new PlanRequest(objective, ExactDeviceLimit: problem.DeviceCount));
            }
            catch (Onnx.PipelineInputException)
            {
                continue;
            }

            var heuristic = Planner.Plan(problem, new PlanRequest(objective, ExactDeviceLimit: limit));
            Assert.True(exact.Exact);
            Assert.False(heuristic.Exact);
            var (e, h) = objective == PlanObjective.Throughput
                ? (exact.Figures.PeriodMs, heuristic.Figures.PeriodMs)
                : (exact.Figures.LatencyMs, heuristic.Figures.LatencyMs);

            // The heuristic searches a subset of the plans, so it can only match or trail the exact answer.
            Assert.True(h >= e * (1 - 1e-9), $"instance {i}: heuristic {h} beat the exact {e}");
            gaps.Add(e > 0 ? (h / e) - 1 : 0);
        }

        var mean = gaps.Average();
        var max = gaps.Max();
        var matched = gaps.Count(g => g < 1e-9);
        output.WriteLine($"{objective}, exact limit {limit}: {gaps.Count} instances of {minDevices}-{maxDevices} devices; " +
            $"heuristic matched the exact answer on {matched}; " +
            $"mean gap {mean:P2}, max gap {max:P2}");
        Assert.True(gaps.Count >= 30, $"only {gaps.Count} instances had a plan");
        Assert.True(mean < meanGapBound, $"mean gap {mean:P2}");
    }
}
