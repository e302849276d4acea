namespace PipelineActors.Harness.Tests;

/// <summary>Bench's per-node overhead and CPU per MB, on made-up runs whose figures are worked out by hand.</summary>
public sealed class NodeOverheadSpecs
{
    private static NodeRow Node(string name, double cpuSecondsPerFrame) => new(name, "0", 10, cpuSecondsPerFrame, 1 << 20);

    private static StageRow Stage(int index, string node, long bytesIn, long bytesOut) =>
        new(index, node, "0..9", 100, 1, 1, bytesIn, bytesOut, 90);

    private static BareLoopResult Loop(long frames, double cpuSeconds) => new(frames, 5, frames / 5.0, cpuSeconds, 1 << 20, 1);

    [Fact]
    public void Each_node_is_set_against_the_bare_loop_of_the_stage_it_hosted_in_the_runs_node_order()
    {
        // Node b hosts stage 1, node a stage 0, node c nothing.
        var nodes = new[] { Node("b", 0.0300), Node("c", 0.0010), Node("a", 0.0525) };
        var stages = new[] { Stage(0, "a", 150_528, 401_408), Stage(1, "b", 401_408, 4_000) };
        // Stage 0 alone: 5.0 s of CPU over 100 runs = 50 ms a frame; stage 1: 5.6 s over 200 runs = 28 ms.
        var loops = new[] { Loop(100, 5.0), Loop(200, 5.6) };

        var overheads = NodeOverhead.Of(nodes, stages, loops);

        Assert.Equal(["b", "c", "a"], overheads.Select(o => o.Node));
        // b: (30 - 28) / 28 = 7.14 %; 2 ms over 0.405408 MB = 4.933 ms/MB.
        Assert.Equal(new NodeOverhead("b", 1, 30, 28, 7.1, 401_408, 4_000, 4.93), overheads[0]);
        Assert.Equal(new NodeOverhead("c", null, 1, null, null, 0, 0, null), overheads[1]);
        // a: (52.5 - 50) / 50 = 5 %; 2.5 ms over 0.551936 MB = 4.530 ms/MB.
        Assert.Equal(new NodeOverhead("a", 0, 52.5, 50, 5.0, 150_528, 401_408, 4.53), overheads[2]);
    }

    [Fact]
    public void A_node_cheaper_than_its_stage_alone_has_a_negative_overhead_and_nothing_to_divide_by_gives_no_figure()
    {
        Assert.Equal(-4.0, NodeOverhead.Percent(48, 50)!.Value, 9);
        Assert.Equal(-2.0, NodeOverhead.CpuMsPerMB(48, 50, 1_000_000)!.Value, 9);
        Assert.Null(NodeOverhead.Percent(10, 0));
        Assert.Null(NodeOverhead.CpuMsPerMB(10, 5, 0));
        Assert.Equal(0, NodeOverhead.CpuMsPerFrame(Loop(0, 1.0)));
        Assert.Equal(12.5, NodeOverhead.CpuMsPerFrame(Loop(80, 1.0)), 9);
    }

    [Fact]
    public void A_stage_whose_loop_ran_no_frame_or_is_missing_gives_the_node_no_overhead()
    {
        var nodes = new[] { Node("a", 0.020), Node("b", 0.020) };
        var stages = new[] { Stage(0, "a", 1000, 1000), Stage(1, "b", 1000, 1000) };

        var overheads = NodeOverhead.Of(nodes, stages, [Loop(0, 0)]);

        Assert.All(overheads, o => Assert.Null(o.OverheadPercent));
        Assert.Equal([0, 1], overheads.Select(o => o.Stage));
        Assert.All(overheads, o => Assert.Equal(20, o.NodeCpuMsPerFrame));
    }
}
