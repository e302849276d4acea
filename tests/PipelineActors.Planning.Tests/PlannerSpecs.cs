using PipelineActors.Onnx;

namespace PipelineActors.Planning.Tests;

/// <summary>The planner against every plan the cost model allows, on a few hundred random small instances.</summary>
public sealed class PlannerSpecs
{
    private static readonly ProblemShape Small = new(1, 4, 1, 5);
    private static readonly ProblemShape SmallWithMemory = Small with { Memory = true };

    public static TheoryData<int, bool> Cases() => new()
    {
        { 1, false }, { 1, true }, { 2, false }, { 2, true }, { 3, false }, { 3, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Throughput_plans_have_the_least_period_of_all_plans_and_the_least_latency_among_those(int maxReplicas, bool memory)
    {
        var random = new Random(100 + maxReplicas + (memory ? 10 : 0));
        var checkedCount = 0;
        for (var i = 0; i < 150; i++)
        {
            var problem = RandomProblems.Draw(random, memory ? SmallWithMemory : Small);
            var all = BruteForce.FeasiblePlans(problem, maxReplicas);
            var request = new PlanRequest(PlanObjective.Throughput, MaxReplicas: maxReplicas);
            if (all.Count == 0)
            {
                Assert.Throws<PipelineInputException>(() => Planner.Plan(problem, request));
                continue;
            }

            var result = Planner.Plan(problem, request).Figures;
            var period = all.Min(f => f.PeriodMs);
            var latency = all.Where(f => f.PeriodMs <= Slack(period)).Min(f => f.LatencyMs);
            Assert.True(result.IsFeasible, result.Problem);
            AssertClose(period, result.PeriodMs, $"instance {i}: period");
            AssertClose(latency, result.LatencyMs, $"instance {i}: latency at the least period");
            checkedCount++;
        }

        Assert.True(checkedCount > 60, $"only {checkedCount} instances had a plan");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void With_codecs_within_a_fidelity_budget_throughput_and_latency_plans_still_match_every_plan(int maxReplicas)
    {
        var random = new Random(700 + maxReplicas);
        var coded = 0;
        for (var i = 0; i < 150; i++)
        {
            var problem = RandomProblems.Draw(random, Small with { MinDevices = 2, Codecs = true });
            var all = BruteForce.FeasiblePlans(problem, maxReplicas);
            if (all.Count == 0)
            {
                continue;
            }

            var throughput = Planner.Plan(problem, new PlanRequest(PlanObjective.Throughput, MaxReplicas: maxReplicas)).Figures;
            var latency = Planner.Plan(problem, new PlanRequest(PlanObjective.Latency, MaxReplicas: maxReplicas)).Figures;
            AssertClose(all.Min(f => f.PeriodMs), throughput.PeriodMs, $"instance {i}: period");
            AssertClose(all.Min(f => f.LatencyMs), latency.LatencyMs, $"instance {i}: latency");
            coded += throughput.Hops.Concat(latency.Hops).Any(h => h.Links.Any(l => l.Codec != "exact")) ? 1 : 0;
        }

        // The instances' codecs must have been used, or the spec would say nothing about them.
        Assert.True(coded > 20, $"only {coded} instances' plans crossed a hop with a codec");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Latency_plans_have_the_least_latency_of_all_plans(int maxReplicas, bool memory)
    {
        var random = new Random(200 + maxReplicas + (memory ? 10 : 0));
        for (var i = 0; i < 150; i++)
        {
            var problem = RandomProblems.Draw(random, memory ? SmallWithMemory : Small);
            var all = BruteForce.FeasiblePlans(problem, maxReplicas);
            var request = new PlanRequest(PlanObjective.Latency, MaxReplicas: maxReplicas);
            if (all.Count == 0)
            {
                Assert.Throws<PipelineInputException>(() => Planner.Plan(problem, request));
                continue;
            }

            var result = Planner.Plan(problem, request).Figures;
            Assert.True(result.IsFeasible, result.Problem);
            AssertClose(all.Min(f => f.LatencyMs), result.LatencyMs, $"instance {i}: latency");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Latency_under_a_frames_per_second_floor_is_the_least_latency_of_the_plans_that_reach_it(int maxReplicas, bool memory)
    {
        var random = new Random(300 + maxReplicas + (memory ? 10 : 0));
        var unreachable = 0;
        for (var i = 0; i < 150; i++)
        {
            var problem = RandomProblems.Draw(random, memory ? SmallWithMemory : Small);
            var all = BruteForce.FeasiblePlans(problem, maxReplicas);
            if (all.Count == 0)
            {
                continue;
            }

            // A floor somewhere in the spread of the plans' rates, sometimes above all of them.
            // (A zero period, from zero-ms blocks on one device, has no finite rate to floor at.)
            var periods = all.Select(f => f.PeriodMs).Where(p => p > 0).Order().ToList();
            if (periods.Count == 0)
            {
                continue;
            }

            var cap = random.NextDouble() < 0.15 ? periods[0] * 0.9 : periods[random.Next(periods.Count)];
            var request = new PlanRequest(PlanObjective.Latency, MinFps: 1000.0 / cap, MaxReplicas: maxReplicas);
            var meeting = all.Where(f => f.PeriodMs <= Slack(cap)).ToList();
            if (meeting.Count == 0)
            {
                var error = Assert.Throws<PipelineInputException>(() => Planner.Plan(problem, request));
                Assert.Contains("the fastest gives", error.Message, StringComparison.Ordinal);
                unreachable++;
                continue;
            }

            var result = Planner.Plan(problem, request).Figures;
            Assert.True(result.PeriodMs <= Slack(cap), $"instance {i}: period {result.PeriodMs} above the cap {cap}");
            AssertClose(meeting.Min(f => f.LatencyMs), result.LatencyMs, $"instance {i}: latency under the floor");
        }

        Assert.True(unreachable > 0, "no instance tried a floor above every plan");
    }

    [Fact]
    public void Sending_the_frame_and_running_all_on_the_source_are_among_the_candidates()
    {
        // The source is slow and its link fast: only sending the frame keeps up. Then the reverse.
        var fastEdge = Problem(sourceMs: 100, edgeMs: 1, mbps: 1000);
        var sent = Planner.Plan(fastEdge, new PlanRequest()).Figures.Plan;
        Assert.Equal(0, sent.Stages[0].BlockCount);
        Assert.Equal(2, sent.Stages.Count);

        var slowLink = Problem(sourceMs: 5, edgeMs: 1, mbps: 1.6);
        var local = Planner.Plan(slowLink, new PlanRequest()).Figures.Plan;
        Assert.Single(local.Stages);
        Assert.Equal(3, local.Stages[0].BlockCount);
    }

    [Fact]
    public void A_plan_where_nothing_fits_memory_is_a_user_error()
    {
        var problem = new PlanProblem(
            1000,
            [new PlanBlock("b0", 10, new Dictionary<string, double> { ["t"] = 1 }, WeightBytes: 50 << 20)],
            [new PlanDevice("cam", "t", IsSource: true, MemoryMiB: 10), new PlanDevice("edge", "t", MemoryMiB: 20)],
            [new PlanLink("cam", "edge", 100, 1)]);
        var error = Assert.Throws<PipelineInputException>(() => Planner.Plan(problem, new PlanRequest()));
        Assert.Contains("No plan fits", error.Message, StringComparison.Ordinal);
    }

    private static PlanProblem Problem(double sourceMs, double edgeMs, double mbps) => new(
        150_528,
        [.. Enumerable.Range(0, 3).Select(i =>
            new PlanBlock($"b{i}", 400_000, new Dictionary<string, double> { ["pi"] = sourceMs, ["edge"] = edgeMs }))],
        [new PlanDevice("cam", "pi", IsSource: true), new PlanDevice("edge", "edge")],
        [new PlanLink("cam", "edge", mbps, 1)]);

    private static double Slack(double ms) => ms * (1 + 1e-9);

    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-9 * Math.Max(1, Math.Abs(expected)), $"{what}: expected {expected}, planner gave {actual}");
}
