namespace PipelineActors.Cli.Tests.Commands;

/// <summary><c>pipeline bench --objective</c>: spelt as in <c>pipeline plan</c>, refused in one sentence before anything runs.</summary>
public sealed class BenchObjectiveSpecs
{
    [Fact]
    public void An_unknown_objective_is_one_error_line()
    {
        Cli.AssertUserError(Cli.Run("bench", "--emulate", "cpu=1.0;cpu=0.4", "--objective", "fast"), "--objective", "'fast'");
    }

    [Fact]
    public void An_objective_without_emulated_workers_says_to_add_them()
    {
        Cli.AssertUserError(Cli.Run("bench", "--objective", "latency"), "--objective", "--emulate SPEC");
    }
}
