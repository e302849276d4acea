using PipelineActors.Harness.Emulation;
using PipelineActors.Onnx;

namespace PipelineActors.Harness.Tests.Emulation;

public class EmulationSpecSpecs
{
    [Fact]
    public void The_issue_example_gives_one_entry_per_worker()
    {
        var spec = EmulationSpec.Parse("cpu=1.0;cpu=0.5,link=20;cpu=0.25", cores: 2);

        Assert.Equal(3, spec.Workers.Count);
        Assert.Equal(new WorkerEmulation(Cpu: 1.0), spec.Workers[0]);
        Assert.Equal(new WorkerEmulation(Cpu: 0.5, LinkMbit: 20), spec.Workers[1]);
        Assert.Equal(new WorkerEmulation(Cpu: 0.25), spec.Workers[2]);
        Assert.True(spec.HasLinks);
        Assert.True(spec.HasQuotas);
    }

    [Fact]
    public void Latency_spaces_and_key_case_are_read()
    {
        var spec = EmulationSpec.Parse(" LINK = 1.6 , latency=12.5 ; cpu=2 ", cores: 2);

        Assert.Equal(new WorkerEmulation(LinkMbit: 1.6, LatencyMs: 12.5), spec.Workers[0]);
        Assert.Equal(new WorkerEmulation(Cpu: 2), spec.Workers[1]);
    }

    [Fact]
    public void An_empty_entry_is_a_full_speed_worker()
    {
        var spec = EmulationSpec.Parse("cpu=0.5;;link=20;", cores: 2);

        Assert.Equal(4, spec.Workers.Count);
        Assert.True(spec.Workers[1].IsFullSpeed);
        Assert.True(spec.Workers[3].IsFullSpeed);
        Assert.False(spec.Workers[2].IsFullSpeed);
    }

    [Fact]
    public void A_spec_prints_back_as_it_parses()
    {
        var text = "cpu=0.25,link=20,latency=5;;link=200";

        Assert.Equal(text, EmulationSpec.Parse(text, cores: 2).ToString());
    }

    [Theory]
    [InlineData("cpu=abc", "entry 1", "cpu must be a finite number")]
    [InlineData("cpu=NaN", "entry 1", "cpu must be a finite number")]
    [InlineData("link=Infinity", "entry 1", "link must be a finite number")]
    [InlineData("cpu=1;cpu=-0.5", "entry 2", "cpu must be above 0")]
    [InlineData("cpu=0", "entry 1", "cpu must be above 0")]
    [InlineData("cpu=3", "entry 1", "at most 2")]
    [InlineData("cpu=0.001", "entry 1", "the smallest quota")]
    [InlineData("link=0", "entry 1", "link must be at least")]
    [InlineData("link=-20", "entry 1", "link must be at least")]
    [InlineData(";latency=-1", "entry 2", "latency must be between 0")]
    [InlineData("speed=2", "entry 1", "'speed' is not a key")]
    [InlineData("cpu", "entry 1", "is not key=value")]
    [InlineData("cpu=0.5,cpu=0.25", "entry 1", "cpu is given twice")]
    [InlineData("  ", "--emulate is empty", "one entry per worker")]
    public void Each_error_is_one_sentence_naming_the_entry_and_the_problem(string text, string where, string what)
    {
        var error = Assert.Throws<PipelineInputException>(() => EmulationSpec.Parse(text, cores: 2));

        Assert.Contains(where, error.Message, StringComparison.Ordinal);
        Assert.Contains(what, error.Message, StringComparison.Ordinal);
        Assert.EndsWith(".", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_spec_for_another_number_of_workers_is_refused_in_one_sentence()
    {
        var spec = EmulationSpec.Parse("cpu=1;cpu=0.5", cores: 2);

        Assert.Same(spec, spec.RequireWorkers(2));
        var error = Assert.Throws<PipelineInputException>(() => spec.RequireWorkers(3));
        Assert.Equal(
            "--emulate has 2 entries but the run has 3 worker(s); give one entry per worker (an empty entry is a full-speed worker).",
            error.Message);
    }
}
