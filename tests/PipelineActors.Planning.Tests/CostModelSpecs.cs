namespace PipelineActors.Planning.Tests;

/// <summary>The cost model on examples worked by hand; the arithmetic is in the comments.</summary>
public sealed class CostModelSpecs
{
    // cam (pi4, the source) and edge (edge): b0 = 40 ms on pi4, 4 ms on edge, 100,000 B out;
    // b1 = 60 ms on pi4, 6 ms on edge, 1,000 B out. The frame is 150,000 B. cam -> edge: 20 Mbit/s, 10 ms.
    private static PlanProblem TwoDevices(string? sink = null) => new(
        150_000,
        [
            new PlanBlock("b0", 100_000, new Dictionary<string, double> { ["pi4"] = 40, ["edge"] = 4 }),
            new PlanBlock("b1", 1_000, new Dictionary<string, double> { ["pi4"] = 60, ["edge"] = 6 }),
        ],
        [new PlanDevice("cam", "pi4", IsSource: true), new PlanDevice("edge", "edge")],
        [new PlanLink("cam", "edge", 20, 10), new PlanLink("edge", "cam", 20, 10)],
        sink: sink);

    [Fact]
    public void A_cut_after_the_first_block_is_priced_by_hand()
    {
        var problem = TwoDevices();
        var figures = PlanEvaluator.Evaluate(problem, Plan.Chain(problem, [0, 1], [1, 2]));

        // The hop carries b0's 100,000 B: 100,000 * 8 / (20 * 1000) = 40 ms on the link, + 10 ms latency = 50 ms.
        var hop = Assert.Single(figures.Hops);
        Assert.Equal(100_000, hop.Bytes);
        Assert.Equal(40, hop.OccupancyMs, 9);
        Assert.Equal(50, hop.HopMs, 9);

        // Period = max(cam 40, edge 6, link 40) = 40 ms, 25 frames/s; latency = 40 + 50 + 6 = 96 ms.
        Assert.Equal(40, figures.PeriodMs, 9);
        Assert.Equal(25, figures.FramesPerSecond, 9);
        Assert.Equal(96, figures.LatencyMs, 9);
        Assert.True(figures.IsFeasible);
    }

    [Theory]
    // int8: 25,000 B, 10 ms on the link + 2 ms encode + 1 ms decode = 13 ms against exact's 40 ms; int4 (12,000 B: 4.8 + 3 = 7.8 ms)
    // measured 0.95, below 0.99. Hop = 10 ms latency + 13 = 23 ms; period = max(cam 40, edge 6, link 10) = 40; latency 40 + 23 + 6.
    [InlineData(0.99, "int8", 25_000, 10, 23, 69)]
    // At 0.9 int4 is allowed: hop 10 + 7.8 = 17.8 ms, link busy 4.8 ms; latency 40 + 17.8 + 6 = 63.8 ms.
    [InlineData(0.9, "int4", 12_000, 4.8, 17.8, 63.8)]
    // A budget of one leaves only the exact bytes: the example above.
    [InlineData(1.0, "exact", 100_000, 40, 50, 96)]
    public void A_hop_takes_the_codec_a_frame_spends_least_time_on_within_the_budget_priced_by_hand(
        double budget, string codec, long bytes, double busyMs, double hopMs, double latencyMs)
    {
        var exact = TwoDevices();
        var problem = new PlanProblem(
            exact.InputBytes,
            [exact.Blocks[0] with { Codecs = [new PlanCodec("int8", 25_000, 2, 1, 0.995), new PlanCodec("int4", 12_000, 2, 1, 0.95)] },
                exact.Blocks[1]],
            exact.Devices,
            exact.Links,
            fidelityBudget: budget);

        var figures = PlanEvaluator.Evaluate(problem, Plan.Chain(problem, [0, 1], [1, 2]));

        var link = Assert.Single(Assert.Single(figures.Hops).Links);
        Assert.Equal(codec, link.Codec);
        Assert.Equal(bytes, link.Bytes);
        Assert.Equal(busyMs, link.OccupancyMs, 9);
        Assert.Equal(hopMs, link.HopMs, 9);
        Assert.Equal(40, figures.PeriodMs, 9);
        Assert.Equal(latencyMs, figures.LatencyMs, 9);
    }

    [Fact]
    public void Without_a_budget_a_blocks_codecs_are_not_used()
    {
        var exact = TwoDevices();
        var problem = new PlanProblem(
            exact.InputBytes, [exact.Blocks[0] with { Codecs = [new PlanCodec("zstd", 60_000, 1, 1)] }, exact.Blocks[1]], exact.Devices, exact.Links);

        var figures = PlanEvaluator.Evaluate(problem, Plan.Chain(problem, [0, 1], [1, 2]));

        Assert.Equal("exact", Assert.Single(Assert.Single(figures.Hops).Links).Codec);
        Assert.Equal(50, figures.Hops[0].HopMs, 9);
    }

    [Fact]
    public void Sending_the_frame_puts_the_input_bytes_on_the_first_hop()
    {
        var problem = TwoDevices();
        var figures = PlanEvaluator.Evaluate(problem, Plan.Chain(problem, [0, 1], [0, 2]));

        // 150,000 * 8 / 20,000 = 60 ms on the link; period = max(0, 4 + 6, 60) = 60; latency = 70 + 10 = 80.
        Assert.Equal(150_000, figures.Hops[0].Bytes);
        Assert.Equal(60, figures.PeriodMs, 9);
        Assert.Equal(80, figures.LatencyMs, 9);
        Assert.True(figures.Bottleneck.IsHop);
        Assert.Contains("cam -> edge", figures.Bottleneck.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void A_named_sink_adds_the_return_hop_and_none_when_the_results_are_already_there()
    {
        var problem = TwoDevices(sink: "cam");
        var split = PlanEvaluator.Evaluate(problem, Plan.Chain(problem, [0, 1], [1, 2]));

        // Back to cam: 1,000 * 8 / 20,000 = 0.4 ms busy, 10.4 ms for the frame; latency 96 + 10.4 = 106.4.
        Assert.Equal(2, split.Hops.Count);
        Assert.Equal(-1, split.Hops[1].ToStage);
        Assert.Equal(0.4, split.Hops[1].OccupancyMs, 9);
        Assert.Equal(106.4, split.LatencyMs, 9);
        Assert.Equal(40, split.PeriodMs, 9);

        // All on cam, which is the sink: no hop at all; 40 + 60 = 100 ms, period 100 ms.
        var local = PlanEvaluator.Evaluate(problem, Plan.AllOnSource(problem));
        Assert.Empty(local.Hops);
        Assert.Equal(100, local.LatencyMs, 9);
        Assert.Equal(100, local.PeriodMs, 9);
    }

    [Fact]
    public void The_planner_picks_the_hand_computed_optimum_for_each_objective()
    {
        // Candidates (period, latency): all on cam (100, 100), cut after b0 (40, 96), send the frame (60, 80),
        // edge runs b0 and cam b1 is impossible (cam is the source and runs leading blocks only).
        var problem = TwoDevices();
        var throughput = Planner.Plan(problem, new PlanRequest(PlanObjective.Throughput)).Figures;
        Assert.Equal(40, throughput.PeriodMs, 9);
        Assert.Equal(1, throughput.Plan.Stages[0].BlockCount);

        var latency = Planner.Plan(problem, new PlanRequest(PlanObjective.Latency)).Figures;
        Assert.Equal(80, latency.LatencyMs, 9);
        Assert.Equal(0, latency.Plan.Stages[0].BlockCount);

        // A 20 frames/s floor is a 50 ms cap: sending the frame (60 ms) misses it, the cut (40 ms) meets it.
        var floored = Planner.Plan(problem, new PlanRequest(PlanObjective.Latency, MinFps: 20)).Figures;
        Assert.Equal(96, floored.LatencyMs, 9);
    }

    [Fact]
    public void Replicas_share_frames_by_speed_and_their_links_carry_their_shares()
    {
        // One block: 30 ms on pi4, 60 ms on pi3; the 10,000 B frame goes from cam to pi-a and pi-b at 100 Mbit/s, 1 ms.
        var problem = new PlanProblem(
            10_000,
            [new PlanBlock("b0", 10, new Dictionary<string, double> { ["pi4"] = 30, ["pi3"] = 60 })],
            [new PlanDevice("cam", "pi4", IsSource: true), new PlanDevice("pi-a", "pi4"), new PlanDevice("pi-b", "pi3")],
            [new PlanLink("cam", "pi-a", 100, 1), new PlanLink("cam", "pi-b", 100, 1)]);
        var plan = new Plan([new PlanStage([0], 0, 0), new PlanStage([1, 2], 0, 1)]);
        var figures = PlanEvaluator.Evaluate(problem, plan);

        // Capacity 1/30 + 1/60 = 1/20: effective 20 ms; shares 2/3 and 1/3.
        var stage = figures.Stages[1];
        Assert.Equal(20, stage.ComputeMs, 9);
        Assert.Equal(2.0 / 3, stage.Shares[0], 9);
        Assert.Equal(1.0 / 3, stage.Shares[1], 9);

        // 10,000 * 8 / 100,000 = 0.8 ms per frame on a link: 2/3 * 0.8 = 0.5333 on pi-a's, 0.2667 on pi-b's.
        var links = figures.Hops[0].Links;
        Assert.Equal(0.8 * 2 / 3, links[0].OccupancyMs, 9);
        Assert.Equal(0.8 / 3, links[1].OccupancyMs, 9);

        // Period 20 ms (50 frames/s); latency = slowest hop 1.8 + slowest replica 60 = 61.8 ms.
        Assert.Equal(20, figures.PeriodMs, 9);
        Assert.Equal(61.8, figures.LatencyMs, 9);

        // Without replication the best is one pi4 (30 ms); with two replicas the planner finds the 20 ms plan.
        Assert.Equal(30, Planner.Plan(problem, new PlanRequest(MaxReplicas: 1)).Figures.PeriodMs, 9);
        var replicated = Planner.Plan(problem, new PlanRequest(MaxReplicas: 2)).Figures;
        Assert.Equal(20, replicated.PeriodMs, 9);
        Assert.True(replicated.Plan.Stages[^1].IsReplicated);
    }

    [Fact]
    public void Replicas_send_their_share_of_the_results_to_the_sink_and_a_replica_on_the_sink_sends_nothing()
    {
        // cam sends the 2,000 B frame to e1 and e2 (10 ms each) over 8 Mbit/s, 1 ms links: 2 ms of transfer, 3 ms a
        // frame; each link carries half the frames, so 1 ms busy per frame. The 1,000 B result goes back to cam:
        // 1 ms of transfer, 2 ms a frame, 0.5 ms busy. Period = max(1 / (1/10 + 1/10) = 5, 1, 0.5) = 5; latency 3 + 10 + 2 = 15.
        PlanProblem Problem(string sink) => new(
            2_000,
            [new PlanBlock("b0", 1_000, new Dictionary<string, double> { ["pi4"] = 100, ["edge"] = 10 })],
            [new PlanDevice("cam", "pi4", IsSource: true), new PlanDevice("e1", "edge"), new PlanDevice("e2", "edge")],
            [],
            new LinkFigures(8, 1),
            sink);
        var plan = new Plan([new PlanStage([0], 0, 0), new PlanStage([1, 2], 0, 1)]);

        var toCam = PlanEvaluator.Evaluate(Problem("cam"), plan);
        Assert.Equal(5, toCam.PeriodMs, 9);
        Assert.Equal(15, toCam.LatencyMs, 9);
        Assert.Equal([1.0, 1.0], toCam.Hops[0].Links.Select(l => Math.Round(l.OccupancyMs, 9)));
        Assert.Equal([0.5, 0.5], toCam.Hops[1].Links.Select(l => Math.Round(l.OccupancyMs, 9)));

        // With e1 as the sink only e2's half of the results travels; the slowest path is still 3 + 10 + 2 = 15.
        var toE1 = PlanEvaluator.Evaluate(Problem("e1"), plan);
        var back = Assert.Single(toE1.Hops[1].Links);
        Assert.Equal(2, back.FromDevice);
        Assert.Equal(0.5, back.Share, 9);
        Assert.Equal(15, toE1.LatencyMs, 9);

        // The planner finds it: one edge alone is a 10 ms period, the pair 5 ms.
        Assert.Equal(5, Planner.Plan(Problem("cam"), new PlanRequest(MaxReplicas: 2)).Figures.PeriodMs, 9);
    }

    [Fact]
    public void A_stage_must_fit_its_device_with_weights_and_the_largest_activation()
    {
        // b0: 600 KiB of weights, reads the 100,000 B frame and writes 200,000 B: 300,000 B of activations.
        // b1: 300 KiB of weights, 50,000 B of activations given. Together: 900 KiB + 300,000 B = 1,221,600 B.
        var problem = new PlanProblem(
            100_000,
            [
                new PlanBlock("b0", 200_000, new Dictionary<string, double> { ["t"] = 1 }, WeightBytes: 600 * 1024),
                new PlanBlock("b1", 10, new Dictionary<string, double> { ["t"] = 1 }, WeightBytes: 300 * 1024, ActivationBytes: 50_000),
            ],
            [new PlanDevice("cam", "t", IsSource: true, MemoryMiB: 1), new PlanDevice("edge", "t", MemoryMiB: 2)],
            [new PlanLink("cam", "edge", 100, 1)]);
        Assert.Equal(1_221_600, problem.StageBytes(0, 2));

        // 1 MiB is 1,048,576 B: both blocks do not fit cam; b0 alone (914,400 B) does.
        var local = PlanEvaluator.Evaluate(problem, Plan.AllOnSource(problem));
        Assert.False(local.IsFeasible);
        Assert.Contains("on cam", local.Problem, StringComparison.Ordinal);
        Assert.True(PlanEvaluator.Evaluate(problem, Plan.Chain(problem, [0, 1], [1, 2])).IsFeasible);

        var planned = Planner.Plan(problem, new PlanRequest(PlanObjective.Latency)).Figures;
        Assert.True(planned.IsFeasible);
        Assert.NotEqual(2, planned.Plan.Stages[0].BlockCount);
    }

    [Fact]
    public void A_pair_without_a_link_is_no_hop_unless_the_table_has_a_default_link()
    {
        var blocks = new[] { new PlanBlock("b0", 10, new Dictionary<string, double> { ["t"] = 5 }) };
        var devices = new[] { new PlanDevice("cam", "t", IsSource: true), new PlanDevice("edge", "t") };
        var without = new PlanProblem(1000, blocks, devices, []);
        var sent = Plan.Chain(without, [0, 1], [0, 1]);
        Assert.Contains("no link from cam to edge", PlanEvaluator.Evaluate(without, sent).Problem, StringComparison.Ordinal);

        // With a default link of 8 Mbit/s and 2 ms: 1,000 * 8 / 8,000 = 1 ms busy, 3 ms for the frame; latency 3 + 5 = 8.
        var with = new PlanProblem(1000, blocks, devices, [], new LinkFigures(8, 2));
        var figures = PlanEvaluator.Evaluate(with, Plan.Chain(with, [0, 1], [0, 1]));
        Assert.True(figures.IsFeasible);
        Assert.Equal(8, figures.LatencyMs, 9);
        Assert.Equal(5, figures.PeriodMs, 9);
    }

    [Fact]
    public void The_bound_spreads_the_whole_model_over_every_device_by_speed()
    {
        // Whole model: 100 ms on cam, 10 ms on edge: 1 / (1/100 + 1/10) = 9.0909 ms.
        Assert.Equal(1 / (0.01 + 0.1), Planner.Bound(TwoDevices()), 9);
    }
}
