using System.Diagnostics;
using Xunit.Abstractions;

namespace PipelineActors.Planning.Tests;

/// <summary>Timing runs alone, not beside the other specs, so the figure is the planner's and not the machine's load.</summary>
[CollectionDefinition(nameof(SpeedSpecs), DisableParallelization = true)]
public sealed class TimingCollection;

/// <summary>Planning time for 200 cuts x 8 devices (the issue asks for under 100 ms; the bound here allows a loaded machine).</summary>
[Collection(nameof(SpeedSpecs))]
public sealed class SpeedSpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(PlanObjective.Throughput, 1)]
    [InlineData(PlanObjective.Throughput, 2)]
    [InlineData(PlanObjective.Latency, 1)]
    [InlineData(PlanObjective.Latency, 2)]
    public void Planning_200_cuts_on_8_devices_takes_well_under_a_second(PlanObjective objective, int maxReplicas)
    {
        var problem = RandomProblems.Draw(new Random(7), new ProblemShape(8, 8, 200, 200, LinkDensity: 1));
        var request = new PlanRequest(objective, MaxReplicas: maxReplicas);
        Planner.Plan(problem, request);
        var times = new List<double>();
        PlanResult? result = null;
        for (var i = 0; i < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            result = Planner.Plan(problem, request);
            times.Add(clock.Elapsed.TotalMilliseconds);
        }

        var median = times.Order().ElementAt(times.Count / 2);
        output.WriteLine($"{objective}, max replicas {maxReplicas}: 200 cuts x 8 devices planned in {median:0.0} ms (median of 5; " +
            $"min {times.Min():0.0} ms); period {result!.Figures.PeriodMs:0.###} ms over {result.Figures.Plan.Stages.Count} stages");
        Assert.True(result.Exact);
        Assert.True(median < 1000, $"median {median:0.0} ms");
    }
}
