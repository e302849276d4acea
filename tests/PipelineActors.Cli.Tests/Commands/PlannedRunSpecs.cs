using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// The planner on emulated workers (real cgroups, real worker processes; the tests run as root): a slowed worker moves the
/// plan's cut towards the fast one, and <c>pipeline run --plan planned</c> runs the plan's cuts on the workers it named.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class PlannedRunSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    [Fact(Timeout = 180_000)]
    public async Task A_slowed_worker_gets_fewer_blocks_in_the_plan_than_the_same_worker_at_full_speed()
    {
        // SqueezeNet, not tinynet: tinynet's blocks take 0.01 to 0.1 ms, which a loaded machine's noise outweighed in CI
        // (worker-1 kept 4 of 16 blocks both ways); SqueezeNet's take 6 ms a frame at full speed, 39 of 65 blocks against 5.
        var model = Zoo("squeezenet");

        var even = await Task.Run(() => BlocksOn(model, "cpu=1.0;cpu=1.0", "worker-1"));
        var slowed = await Task.Run(() => BlocksOn(model, "cpu=1.0;cpu=0.2", "worker-1"));
        output.WriteLine($"squeezenet: worker-1 runs {even.Blocks} of {even.Total} blocks at cpu=1.0, {slowed.Blocks} at cpu=0.2");

        // At a fifth of a core the worker should take about a sixth of the model, against about half at full speed.
        Assert.True(even.Blocks > 0, "at full speed both workers should share the model");
        Assert.True(slowed.Blocks < even.Blocks, $"worker-1 kept {slowed.Blocks} blocks slowed against {even.Blocks} at full speed");
    }

    [Fact(Timeout = 180_000)]
    public async Task Run_with_the_planned_plan_puts_each_stage_on_the_worker_the_plan_named_and_delivers_every_frame()
    {
        var model = Zoo("tinynet");

        // A recovery plan is not the planner's: it puts the stages where the workers still are.
        var root = await Task.Run(() => Cli.RunWithoutRecovery(
            () =>
            {
                var run = Cli.Run(
                    "run", "--model", model, "--nodes", "2", "--frames", "30", "--fps", "0", "--emulate", "cpu=0.3;cpu=1.0", "--plan",
                        "planned", "--json");
                Assert.True(run.ExitCode == 0, run.Error + run.Output);
                return JsonDocument.Parse(run.Output).RootElement.Clone();
            },
            output.WriteLine));

        Assert.Equal(30, root.GetProperty("resultsOut").GetInt64());
        Assert.True(root.GetProperty("predictedFramesPerSecond").GetDouble() > 0);
        var planned = root.GetProperty("plannedStages").EnumerateArray().Select(s => PlannedStage().Match(s.GetString()!)).ToList();
        Assert.NotEmpty(planned);
        Assert.All(planned, m => Assert.True(m.Success));
        var nodeOf = root.GetProperty("emulation").EnumerateArray().Select(e => e.GetProperty("node").GetString()).ToList();
        var stages = root.GetProperty("stages").EnumerateArray().ToList();
        Assert.Equal(planned.Count, stages.Count);
        for (var i = 0; i < stages.Count; i++)
        {
            // The stage ran where the plan put it, on the nodes the plan gave it.
            Assert.Equal(nodeOf[int.Parse(planned[i].Groups[1].Value)], stages[i].GetProperty("node").GetString());
            var nodes = $"{planned[i].Groups[2].Value}..{planned[i].Groups[3].Value} ";
            Assert.StartsWith(nodes, stages[i].GetProperty("layers").GetString(), StringComparison.Ordinal);

            // Read from the live stage after the run: a stage stopped before the report would show 0. A frame the ingest
            // resent (its deadline passed while the slowed worker warmed up) or replayed may be computed twice, never more than that.
            var again = root.GetProperty("resent").GetInt64() + root.GetProperty("replayed").GetInt64();
            Assert.InRange(stages[i].GetProperty("frames").GetInt64(), 30, 30 + again);
        }

        output.WriteLine(string.Join("; ", root.GetProperty("plannedStages").EnumerateArray()));
    }

    [Theory]
    [InlineData(new[] { "run", "--nodes", "2", "--plan", "fastest" }, "--plan takes planned or balanced", "'fastest'")]
    [InlineData(new[] { "plan" }, "Give --table FILE", "--model M with --emulate SPEC")]
    [InlineData(new[] { "plan", "--table", "t.json", "--model", "MODEL" }, "Give --table or --model", "not both")]
    [InlineData(new[] { "plan", "--model", "MODEL" }, "--model plans on emulated workers", "add --emulate SPEC")]
    public void A_bad_plan_choice_is_one_sentence_and_exit_code_2(string[] args, string first, string second)
    {
        var model = Zoo("tinynet");

        var run = Cli.Run(args.Select(a => a == "MODEL" ? model : a).Concat(args[0] == "run" ? ["--model", model] : []).ToArray());

        Cli.AssertUserError(run, first, second);
    }

    public void Dispose() => _folder.Dispose();

    private static (int Blocks, int Total) BlocksOn(string model, string spec, string device)
    {
        var plan = Cli.Run("plan", "--model", model, "--emulate", spec, "--json");
        Assert.True(plan.ExitCode == 0, plan.Error + plan.Output);
        using var json = JsonDocument.Parse(plan.Output);
        var stages = json.RootElement.GetProperty("stages").EnumerateArray().ToList();
        var total = stages.Sum(s => s.GetProperty("lastBlock").GetInt32() - s.GetProperty("firstBlock").GetInt32() + 1);
        var blocks = stages.Where(s => s.GetProperty("device").GetString() == device)
            .Sum(s => s.GetProperty("lastBlock").GetInt32() - s.GetProperty("firstBlock").GetInt32() + 1);
        return (blocks, total);
    }

    private string Zoo(string name)
    {
        var path = _folder[name + ".onnx"];
        if (!File.Exists(path))
        {
            var written = Cli.Run("zoo", name, "--out", path);
            Assert.True(written.ExitCode == 0, written.Error);
        }

        return path;
    }

    [GeneratedRegex(@"^worker-(\d+): nodes (\d+)\.\.(\d+),")]
    private static partial Regex PlannedStage();
}
