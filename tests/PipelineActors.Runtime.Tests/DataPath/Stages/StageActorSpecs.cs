using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.TestKit;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Stages;

/// <summary>Hosts the middle tinynet stage as a child of the test actor, on the production configuration.</summary>
public abstract class StageActorTestKit(Config config, TinyNetStages stages) : Akka.TestKit.Xunit2.TestKit(config, PipelineConfig.SystemName)
{
    protected const int Parts = 3;

    protected TinyNetStages Stages { get; } = stages;

    protected IActorRef StartStage()
    {
        var chunkBytes = Sys.Settings.Config.GetInt("pipeline.chunk-bytes");
        var stage = ChildActorOf(StageActor.Props(Parts, Stages.Middle, Stages.MiddlePath, 1, chunkBytes));
        var ready = ExpectMsg<StageReady>(TimeSpan.FromSeconds(20));
        Assert.Equal((Parts, Stages.Middle.Index), (ready.Parts, ready.Index));
        return stage;
    }

    /// <summary>Wires <paramref name="stage"/> for <paramref name="epoch"/>; the wiring is confirmed to the supervisor and reported to the
    /// parent.</summary>
    protected void Wire(IActorRef stage, long epoch, IActorRef successor, IActorRef ingest)
    {
        var supervisor = CreateTestProbe();
        stage.Tell(new WireStage("job-1", epoch, [successor], ingest), supervisor.Ref);
        supervisor.ExpectMsg(new StageWired("job-1", epoch, Parts, Stages.Middle.Index));
        var local = ExpectMsg<StageWiredLocally>();
        Assert.Equal(epoch, local.Epoch);
    }

    /// <summary>The output carries the input's identity, the stage's outputs as ONNX Runtime computes them, then the forwarded tensors
    /// unchanged.</summary>
    protected void AssertOutputOf(Frame input, Frame output)
    {
        Assert.Equal((input.FrameId, input.SourceId, input.Epoch, input.CaptureUnixMicros, input.Attempt),
            (output.FrameId, output.SourceId, output.Epoch, output.CaptureUnixMicros, output.Attempt));
        Assert.Equal(Stages.Middle.Outputs.Concat(Stages.Middle.Forwarded), output.Tensors.Select(t => t.Name));
        var expected = Stages.Expected(input);
        foreach (var name in Stages.Middle.Outputs)
        {
            var tensor = output.Tensors.Single(t => t.Name == name);
            var difference = HostTensor.RelativeDifference(expected[name], new HostTensor(tensor.Info, tensor.Data));
            Assert.True(difference <= 1e-5, $"{name}: relative difference {difference:E2}");
        }

        foreach (var name in Stages.Middle.Forwarded)
        {
            Assert.Equal(input.Tensors.Single(t => t.Name == name), output.Tensors.Single(t => t.Name == name));
        }
    }

    /// <summary>The frame without the stage's first input tensor.</summary>
    protected Frame WithoutInput(Frame frame) => frame with { Tensors = frame.Tensors.Where(t => t.Name != Stages.Middle.Inputs[0]).ToList() };

    protected StageStats Stats(IActorRef stage)
    {
        stage.Tell(GetStageStats.Instance);
        return ExpectMsg<StageStats>();
    }

    /// <summary>Two frames in a row: the first result must not change when the stage reuses its buffers for the second.</summary>
    protected void AssertResultsAreNotOverwrittenByTheNextFrame(IActorRef stage, TestProbe successor)
    {
        var first = Stages.FrameFor(10, 1, seed: 21);
        var second = Stages.FrameFor(11, 1, seed: 22);
        stage.Tell(first);
        var firstOut = successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
        var snapshot = firstOut.Tensors.Select(t => t.Data.ToArray()).ToList();

        stage.Tell(second);
        var secondOut = successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));

        AssertOutputOf(first, firstOut);
        AssertOutputOf(second, secondOut);
        Assert.Equal(snapshot, firstOut.Tensors.Select(t => t.Data));
        for (var i = 0; i < Stages.Middle.Outputs.Count; i++)
        {
            Assert.NotSame(firstOut.Tensors[i].Data, secondOut.Tensors[i].Data);
            Assert.NotEqual(firstOut.Tensors[i].Data, secondOut.Tensors[i].Data);
        }
    }
}

[Collection(ClusterCollection.Name)]
public sealed class StageActorSpecs(TinyNetStages stages) : StageActorTestKit(TestNodes.Config(Roles.Worker), stages), IClassFixture<TinyNetStages>
{
    [Fact]
    public void The_chosen_stage_computes_outputs_and_forwards_a_tensor()
    {
        Assert.NotEmpty(Stages.Middle.Outputs);
        Assert.NotEmpty(Stages.Middle.Forwarded);
    }

    [Fact]
    public void A_stage_runs_on_the_pinned_stage_dispatcher()
    {
        var props = StageActor.Props(Parts, Stages.Middle, Stages.MiddlePath, 1, 65536);
        Assert.Equal("pipeline.stage-dispatcher", props.Dispatcher);
        Assert.IsType<PinnedDispatcher>(Sys.Dispatchers.Lookup(props.Dispatcher));
    }

    [Fact]
    public void A_stage_reports_ready_to_its_parent_and_drops_frames_until_it_is_wired()
    {
        var stage = StartStage();

        stage.Tell(Stages.FrameFor(0, 0, seed: 1));

        var stats = Stats(stage);
        Assert.Equal((0L, 1L), (stats.Frames, stats.Dropped));
        ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void A_wired_stage_sends_the_stage_outputs_and_the_forwarded_tensors_to_its_successor()
    {
        var stage = StartStage();
        var successor = CreateTestProbe();
        Wire(stage, 1, successor.Ref, CreateTestProbe().Ref);
        var frame = Stages.FrameFor(4, 1, seed: 2, attempt: 2);

        stage.Tell(frame);

        var output = successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));

        AssertOutputOf(frame, output);
        Assert.Equal(stage, successor.LastSender);
        var forwarded = Stages.Middle.Forwarded[0];
        Assert.Same(frame.Tensors.Single(t => t.Name == forwarded), output.Tensors.Single(t => t.Name == forwarded)); // local hops copy nothing
    }

    [Fact]
    public void A_frame_of_an_epoch_older_than_the_wiring_is_dropped()
    {
        var stage = StartStage();
        var successor = CreateTestProbe();
        Wire(stage, 1, successor.Ref, CreateTestProbe().Ref);

        stage.Tell(Stages.FrameFor(0, 0, seed: 3));
        var newer = Stages.FrameFor(1, 2, seed: 4);
        stage.Tell(newer);

        // Frames of a newer epoch than the wiring are run (the supervisor wires before it activates the plan).
        AssertOutputOf(newer, successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10)));
        successor.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        var stats = Stats(stage);
        Assert.Equal((1L, 1L), (stats.Frames, stats.Dropped));
    }

    [Fact]
    public void A_stage_wired_for_an_older_epoch_keeps_its_newer_wiring()
    {
        var stage = StartStage();
        var current = CreateTestProbe();
        var stale = CreateTestProbe();
        Wire(stage, 2, current.Ref, CreateTestProbe().Ref);

        stage.Tell(new WireStage("job-1", 1, [stale.Ref], CreateTestProbe().Ref), stale.Ref);
        stale.ExpectMsg(new StageWired("job-1", 1, Parts, Stages.Middle.Index));
        stage.Tell(Stages.FrameFor(0, 2, seed: 5));

        current.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
        stale.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        ExpectNoMsg(TimeSpan.FromMilliseconds(50)); // no StageWiredLocally for the stale wiring
    }

    [Fact]
    public void A_frame_without_the_stage_input_is_rejected_to_the_ingest_and_the_stage_keeps_working()
    {
        var stage = StartStage();
        var successor = CreateTestProbe();
        var ingest = CreateTestProbe();
        Wire(stage, 1, successor.Ref, ingest.Ref);
        var good = Stages.FrameFor(3, 1, seed: 6);
        var missing = Stages.Middle.Inputs[0];
        var bad = WithoutInput(Stages.FrameFor(2, 1, seed: 6, attempt: 3));

        stage.Tell(bad);
        var rejected = ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10));
        stage.Tell(good);

        Assert.Equal((2L, 3, Stages.Middle.Index), (rejected.FrameId, rejected.Attempt, rejected.StageIndex));
        Assert.Contains(missing, rejected.Reason, StringComparison.Ordinal);
        AssertOutputOf(good, successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10)));
        successor.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(1, Stats(stage).Frames);
    }

    [Fact]
    public void A_malformed_chunk_undecodable_chunks_and_a_negative_frame_id_are_rejected_and_the_next_good_frame_is_still_processed()
    {
        var stage = StartStage();
        var successor = CreateTestProbe();
        var ingest = CreateTestProbe();
        Wire(stage, 1, successor.Ref, ingest.Ref);
        var encoded = FrameCodec.Encode(Stages.FrameFor(6, 1, seed: 8));
        var truncated = encoded.AsMemory(0, encoded.Length / 2);

        // A chunk that claims its frame has no chunks at all (it once completed at once and decoded nothing: a stopped stage).
        stage.Tell(new FrameChunk(5, 1, 2, 0, 0, 0, 10, new byte[10]));
        var noChunks = ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10));
        // The first half of a real encoded frame, sent as if it were all of it: lengths that run past the end.
        stage.Tell(new FrameChunk(6, 1, 1, 0, 1, 0, truncated.Length, truncated));
        var undecodable = ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10));
        // A negative id once picked a successor at a negative index, outside the stage's try.
        stage.Tell(Stages.FrameFor(-3, 1, seed: 9));
        var negative = ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10));
        var good = Stages.FrameFor(7, 1, seed: 10);
        stage.Tell(good);

        Assert.Equal((5L, 2, Stages.Middle.Index), (noChunks.FrameId, noChunks.Attempt, noChunks.StageIndex));
        Assert.Contains("0 chunks", noChunks.Reason, StringComparison.Ordinal);
        Assert.Equal((6L, 1), (undecodable.FrameId, undecodable.Attempt));
        Assert.Contains("do not decode", undecodable.Reason, StringComparison.Ordinal);
        Assert.Equal(-3L, negative.FrameId);
        AssertOutputOf(good, successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10)));
        successor.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, Stats(stage).Frames);
    }

    [Fact]
    public void Bytes_in_count_what_crossed_the_link_and_a_sparse_frame_crosses_smaller()
    {
        var stage = StartStage();
        var successor = CreateTestProbe();
        Wire(stage, 1, successor.Ref, CreateTestProbe().Ref);
        var dense = Stages.FrameFor(0, 1, seed: 40);
        var sparse = dense with { Tensors = dense.Tensors.Select(t => t with { Data = ZeroEveryOtherElement(t.Data) }).ToList() };
        var encoded = FrameCodec.Encode(sparse);

        // As a remote predecessor sends it: in pieces.
        var halves = FrameLink.Cut(sparse, (encoded.Length + 1) / 2);
        Assert.Equal(2, halves.Length);
        stage.Tell(halves[0]);
        stage.Tell(halves[1]);

        AssertOutputOf(sparse, successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10)));
        var stats = Stats(stage);
        Assert.Equal(encoded.Length, stats.BytesIn);
        Assert.True(stats.BytesIn < sparse.Bytes * 0.6, $"{stats.BytesIn} bytes on the link for {sparse.Bytes} bytes of tensors");
    }

    private static byte[] ZeroEveryOtherElement(byte[] data)
    {
        var copy = data.ToArray();
        for (var i = 0; i + 4 <= copy.Length; i += 8)
        {
            copy.AsSpan(i, 4).Clear();
        }

        return copy;
    }

    [Fact]
    public void Stage_stats_count_frames_bytes_and_drops()
    {
        var stage = StartStage();
        var successor = CreateTestProbe();
        Wire(stage, 1, successor.Ref, CreateTestProbe().Ref);
        var frames = Enumerable.Range(0, 3).Select(i => Stages.FrameFor(i, 1, seed: 30 + i)).ToList();

        frames.ForEach(f => stage.Tell(f));
        var stale = Stages.FrameFor(9, 0, seed: 1);
        stage.Tell(stale);
        successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
        successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
        successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
        var stats = Stats(stage);

        Assert.Equal((Parts, Stages.Middle.Index), (stats.Parts, stats.Index));
        Assert.Equal(3, stats.Frames);
        Assert.Equal(1, stats.Dropped);
        Assert.Equal(0, stats.BytesIn); // the frames came from a local sender: nothing crossed a link (chunks: see above)
        Assert.Equal(0, stats.BytesOut); // the successor is local: nothing crossed a link
        Assert.True(stats.ComputeMsP50 > 0 && stats.ComputeMsP95 >= stats.ComputeMsP50, $"p50 {stats.ComputeMsP50} p95 {stats.ComputeMsP95}");
        Assert.InRange(stats.BusyFraction, 0, 1);
        Assert.EndsWith(":" + ((ExtendedActorSystem)Sys).Provider.DefaultAddress.Port, stats.Node, StringComparison.Ordinal);
    }

    [Fact]
    public void The_outputs_of_one_frame_are_not_overwritten_by_the_next_frame()
    {
        var stage = StartStage();
        var successor = CreateTestProbe();
        Wire(stage, 1, successor.Ref, CreateTestProbe().Ref);

        AssertResultsAreNotOverwrittenByTheNextFrame(stage, successor);
    }
}

/// <summary>
/// The same stage with every message serialized and deserialized on its way, as if each hop were
/// remote: frames, wiring (actor refs) and stats survive, and results are still fresh arrays.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class StageActorSerializationSpecs(TinyNetStages stages)
    : StageActorTestKit(TestNodes.Config("akka.actor.serialize-messages = on\nakka.actor.serialize-creators = off", Roles.Worker),
        stages), IClassFixture<TinyNetStages>
{
    [Fact]
    public void Frames_wiring_and_stats_survive_serialization_and_results_are_not_overwritten_by_the_next_frame()
    {
        Assert.True(Sys.Settings.SerializeAllMessages);
        var stage = StartStage();
        var successor = CreateTestProbe();
        var ingest = CreateTestProbe();
        Wire(stage, 1, successor.Ref, ingest.Ref);

        AssertResultsAreNotOverwrittenByTheNextFrame(stage, successor);

        // Proof that the hops were serialized: the forwarded tensor arrives as a copy.
        var frame = Stages.FrameFor(13, 1, seed: 24);
        stage.Tell(frame);
        var output = successor.ExpectMsg<Frame>(TimeSpan.FromSeconds(10));
        AssertOutputOf(frame, output);
        var forwarded = Stages.Middle.Forwarded[0];
        Assert.NotSame(frame.Tensors.Single(t => t.Name == forwarded).Data, output.Tensors.Single(t => t.Name == forwarded).Data);

        stage.Tell(WithoutInput(Stages.FrameFor(12, 1, seed: 23)));
        Assert.Equal(12, ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10)).FrameId);
        Assert.Equal(3, Stats(stage).Frames);
    }
}
