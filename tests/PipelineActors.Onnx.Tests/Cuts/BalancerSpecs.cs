using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Cuts;

/// <summary>The balancer against brute force over every combination of cut positions.</summary>
public class BalancerSpecs(ITestOutputHelper output)
{
    private const double Tolerance = 0.02;

    public static TheoryData<string, int> ModelsAndParts
    {
        get
        {
            var data = new TheoryData<string, int>();
            foreach (var model in new[] { "zoo:tinynet", "zoo:squeezenet", "paddleocr-textdir-cls.onnx" })
            {
                for (var parts = 2; parts <= 4; parts++)
                {
                    data.Add(model, parts);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(ModelsAndParts))]
    public void The_balancer_finds_the_brute_force_optimum_and_the_fewest_bytes_within_tolerance(string model, int parts)
    {
        var analysis = Load(model);
        var positions = analysis.Cuts.Select(c => c.Position).ToList();
        var chosen = Balancer.Balance(analysis, parts);
        Assert.Equal(parts - 1, chosen.Count);

        // brute force: every increasing combination of parts - 1 cut positions
        var splits = Combinations(positions, parts - 1).Select(c => (Cuts: c, Slowest: Slowest(analysis, c), Bytes: Bytes(analysis, c))).ToList();
        var optimum = splits.Min(s => s.Slowest);
        var fewestBytes = splits.Where(s => s.Slowest <= optimum * (1 + Tolerance)).Min(s => s.Bytes);
        output.WriteLine($"{model} in {parts}: {splits.Count} splits, optimum {optimum}, balancer [{string.Join(",", chosen)}] "
            + $"slowest {Slowest(analysis, chosen)}, {Bytes(analysis, chosen)} bytes (fewest {fewestBytes})");

        Assert.InRange(Slowest(analysis, chosen), optimum, optimum * (1 + Tolerance));
        Assert.Equal(fewestBytes, Bytes(analysis, chosen));
    }

    [Fact]
    public void Of_two_cuts_that_carry_the_same_bytes_the_one_after_the_relu_is_cheaper_on_the_wire_and_chosen()
    {
        var analysis = Load("zoo:tinynet");
        var add = analysis.Cuts.Single(c => c.AfterNode == "block.add");
        var relu = analysis.Cuts.Single(c => c.AfterNode == "block.relu2");

        Assert.Equal(add.Bytes, relu.Bytes);
        Assert.Equal(add.Bytes, add.WireBytes); // about half negative: nothing to suppress
        Assert.InRange(relu.Cargo[0].ZeroShare, 0.3, 0.7); // the negative half became exact zeros
        Assert.InRange(relu.WireBytes, relu.Bytes * 0.3, relu.Bytes * 0.75);

        // Only these two positions allowed: they split the FLOPs alike, so the bytes on the wire decide.
        Assert.Equal([relu.Position], Balancer.Balance(analysis, 2, candidates: [add.Position, relu.Position], tolerance: 0.05));
    }

    [Fact]
    public void One_part_needs_no_cuts()
    {
        Assert.Empty(Balancer.Balance(Load("zoo:tinynet"), 1));
    }

    [Theory]
    [InlineData(2.0, 1.0)]
    [InlineData(1.0, 2.0)]
    public void A_stage_on_a_device_twice_as_fast_gets_about_twice_the_flops(double firstSpeed, double secondSpeed)
    {
        var analysis = Load("zoo:squeezenet");
        var cut = Balancer.Balance(analysis, 2, speeds: [firstSpeed, secondSpeed])[0];
        double Time(int c) => Math.Max(analysis.FlopsBetween(0, c) / firstSpeed, analysis.FlopsBetween(c, analysis.NodeCount) / secondSpeed);
        var fast = firstSpeed > secondSpeed ? analysis.FlopsBetween(0, cut) : analysis.FlopsBetween(cut, analysis.NodeCount);
        var slow = analysis.FlopsBetween(0, analysis.NodeCount) - fast;
        var best = analysis.Cuts.Min(c => Time(c.Position));
        output.WriteLine($"speeds {firstSpeed}:{secondSpeed} -> cut {cut}, fast stage {fast} vs slow stage {slow} FLOPs (ratio "
            + $"{(double)fast / slow:F2}); time {Time(cut):F0}, best {best:F0}");

        // squeezenet's cuts are coarse, so "about twice" is as near as its cuts allow: the weighted optimum
        Assert.InRange(Time(cut), best, best * (1 + Tolerance));
        Assert.InRange((double)fast / slow, 1.5, 3.0);
    }

    [Fact]
    public void More_parts_than_cuts_allow_is_refused_with_a_sentence_naming_the_limit()
    {
        var analysis = Load("zoo:tinynet");
        var count = analysis.Cuts.Count;
        var error = Assert.Throws<PipelineInputException>(() => Balancer.Balance(analysis, count + 2));
        Assert.Contains($"--parts {count + 2}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"at most {count + 1} parts", error.Message, StringComparison.Ordinal);
        Assert.Equal(count, Balancer.Balance(analysis, count + 1).Count);
    }

    private static ModelAnalysis Load(string model) =>
        model.StartsWith("zoo:", StringComparison.Ordinal)
            ? ModelAnalysis.Analyze(ModelZoo.Build(model[4..]))
            : ModelAnalysis.Analyze(OnnxModelFile.Load(Path.Combine(TestModels.ModelsFolder, model)), TestModels.Sizes("x=1,3,48,192"));

    private static long Slowest(ModelAnalysis analysis, IReadOnlyList<int> cuts)
    {
        var bounds = new List<int> { 0 };
        bounds.AddRange(cuts);
        bounds.Add(analysis.NodeCount);
        return Enumerable.Range(0, bounds.Count - 1).Max(i => analysis.FlopsBetween(bounds[i], bounds[i + 1]));
    }

    private static long Bytes(ModelAnalysis analysis, IReadOnlyList<int> cuts) => cuts.Sum(p => analysis.CutAt(p).WireBytes);

    private static IEnumerable<int[]> Combinations(List<int> items, int count)
    {
        var index = Enumerable.Range(0, count).ToArray();
        while (true)
        {
            yield return index.Select(i => items[i]).ToArray();
            var k = count - 1;
            while (k >= 0 && index[k] == items.Count - count + k)
            {
                k--;
            }

            if (k < 0)
            {
                yield break;
            }

            index[k]++;
            for (var j = k + 1; j < count; j++)
            {
                index[j] = index[j - 1] + 1;
            }
        }
    }
}
