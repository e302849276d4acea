using Akka.Actor;
using Akka.TestKit;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Link;

/// <summary>
/// Frames to a remote actor cross in chunks of at most <c>pipeline.chunk-bytes</c> (two actor
/// systems on 127.0.0.1) and <see cref="FrameAssembler"/> puts them back together.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class FrameLinkSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly ActorSystem _remoteSystem;
    private readonly int _chunkBytes;

    public FrameLinkSpecs()
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
        _remoteSystem = ActorSystem.Create(PipelineConfig.SystemName, TestNodes.Config(Roles.Worker));
        _chunkBytes = Sys.Settings.Config.GetInt("pipeline.chunk-bytes");
    }

    [Fact]
    public async Task A_1_MB_frame_sent_to_a_remote_actor_arrives_in_chunks_no_larger_than_chunk_bytes_and_reassembles_to_an_equal_frame()
    {
        var (receiver, remoteRef) = RemoteProbe();
        var frame = Frame(7, 1_000_000, seed: 1);

        var sent = FrameLink.Send(remoteRef, frame, TestActor, _chunkBytes);

        var chunks = await ReceiveChunksAsync(receiver, ExpectedChunks(frame));
        Assert.Equal(FrameCodec.Encode(frame).Length, sent);
        Assert.All(chunks, c => Assert.InRange(c.Chunk.Payload.Length, 1, _chunkBytes));
        Assert.All(chunks, c => Assert.InRange(_remoteSystem.Serialization.FindSerializerFor(c.Chunk).ToBinary(c.Chunk).Length, 1, _chunkBytes + 64));
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.Chunk.Index));
        Assert.All(chunks, c => Assert.Equal((frame.FrameId, frame.Epoch, frame.Attempt, chunks.Count), (c.Chunk.FrameId, c.Chunk.Epoch, c.Chunk.Attempt, c.Chunk.Count)));

        var assembler = new FrameAssembler();
        var rebuilt = chunks.Select(c => assembler.Add(c.Chunk, c.Sender)).ToList();

        Assert.All(rebuilt.SkipLast(1), Assert.Null);
        Assert.Equal(frame, rebuilt[^1]);
        Assert.Equal(0, assembler.Partial);
    }

    [Fact]
    public async Task Interleaved_chunks_of_two_frames_with_the_same_id_from_two_senders_reassemble_to_both_frames()
    {
        var (receiver, remoteRef) = RemoteProbe();
        var senderA = CreateTestProbe();
        var senderB = CreateTestProbe();
        var frameA = Frame(5, 300_000, seed: 2);
        var frameB = Frame(5, 200_000, seed: 3);

        FrameLink.Send(remoteRef, frameA, senderA.Ref, _chunkBytes);
        FrameLink.Send(remoteRef, frameB, senderB.Ref, _chunkBytes);
        var chunks = await ReceiveChunksAsync(receiver, ExpectedChunks(frameA) + ExpectedChunks(frameB));

        var fromA = chunks.Where(c => c.Sender.Path.Name == senderA.Ref.Path.Name).ToList();
        var fromB = chunks.Where(c => c.Sender.Path.Name == senderB.Ref.Path.Name).ToList();
        Assert.Equal(ExpectedChunks(frameA), fromA.Count);
        Assert.Equal(ExpectedChunks(frameB), fromB.Count);

        // Alternate the two streams, each still in its own order (Akka's per-sender guarantee).
        var interleaved = new List<(FrameChunk Chunk, IActorRef Sender)>();
        for (var i = 0; i < Math.Max(fromA.Count, fromB.Count); i++)
        {
            interleaved.AddRange(fromB.Skip(i).Take(1));
            interleaved.AddRange(fromA.Skip(i).Take(1));
        }

        var assembler = new FrameAssembler();
        var rebuilt = interleaved.Select(c => (c.Sender, Frame: assembler.Add(c.Chunk, c.Sender))).Where(r => r.Frame is not null).ToList();

        Assert.Equal(2, rebuilt.Count);
        Assert.Equal(frameA, rebuilt.Single(r => r.Sender.Path.Name == senderA.Ref.Path.Name).Frame);
        Assert.Equal(frameB, rebuilt.Single(r => r.Sender.Path.Name == senderB.Ref.Path.Name).Frame);
        Assert.Equal(0, assembler.Partial);
        Assert.Equal(0, assembler.Dropped);
    }

    [Fact]
    public void The_assembler_keeps_at_most_its_bound_of_partial_frames_and_evicts_the_oldest_first()
    {
        var assembler = new FrameAssembler(maxPartial: 2);
        var frames = Enumerable.Range(0, 3).Select(i => Frame(i, 1_000, seed: 10 + i)).ToList();
        var halves = frames.Select(Halves).ToList();

        Assert.Null(assembler.Add(halves[0][0], TestActor));
        Assert.Null(assembler.Add(halves[1][0], TestActor));
        Assert.Null(assembler.Add(halves[2][0], TestActor));

        Assert.Equal(2, assembler.Partial);
        Assert.Equal(1, assembler.Dropped);
        Assert.Equal(frames[1], assembler.Add(halves[1][1], TestActor));
        Assert.Equal(frames[2], assembler.Add(halves[2][1], TestActor));

        // Frame 0's first half was evicted: its second half alone never completes it.
        Assert.Null(assembler.Add(halves[0][1], TestActor));
        Assert.Equal(1, assembler.Partial);
    }

    [Fact]
    public void The_assembler_bound_holds_over_many_frames_that_never_complete()
    {
        var assembler = new FrameAssembler(maxPartial: 4);
        for (var i = 0; i < 100; i++)
        {
            Assert.Null(assembler.Add(Halves(Frame(i, 100, seed: i))[0], TestActor));
            Assert.InRange(assembler.Partial, 1, 4);
        }

        Assert.Equal(96, assembler.Dropped);
        var last = Frame(99, 100, seed: 99);
        Assert.Equal(last, assembler.Add(Halves(last)[1], TestActor));
    }

    [Fact]
    public async Task A_frame_just_too_big_to_cross_whole_crosses_as_a_single_chunk_and_is_rebuilt()
    {
        var (receiver, remoteRef) = RemoteProbe();
        var frame = Frame(9, _chunkBytes - 200, seed: 4);
        Assert.True(frame.Bytes + 256 > _chunkBytes);

        FrameLink.Send(remoteRef, frame, TestActor, _chunkBytes);

        var chunk = Assert.Single(await ReceiveChunksAsync(receiver, 1));
        Assert.Equal((0, 1), (chunk.Chunk.Index, chunk.Chunk.Count));
        Assert.Equal(frame, new FrameAssembler().Add(chunk.Chunk, chunk.Sender));
    }

    [Fact]
    public async Task A_small_frame_crosses_whole_and_a_frame_for_a_local_actor_is_never_cut()
    {
        var (receiver, remoteRef) = RemoteProbe();
        var small = Frame(1, 1_000, seed: 5);
        var large = Frame(2, 1_000_000, seed: 6);

        Assert.Equal(small.Bytes, FrameLink.Send(remoteRef, small, TestActor, _chunkBytes));
        Assert.Equal(small, await receiver.ExpectMsgAsync<Frame>(TimeSpan.FromSeconds(10)));

        Assert.Equal(0, FrameLink.Send(TestActor, large, TestActor, _chunkBytes));
        Assert.Same(large, await ExpectMsgAsync<Frame>());
    }

    [Fact]
    public async Task With_a_link_delay_frames_and_chunks_for_a_remote_actor_wait_that_long_in_order_while_a_local_actor_gets_its_frame_at_once()
    {
        var (receiver, remoteRef) = RemoteProbe();
        var delay = TimeSpan.FromMilliseconds(300);
        using var link = new LinkDelay(delay);
        var small = Frame(1, 1_000, seed: 7);
        var large = Frame(2, 300_000, seed: 8);
        var local = Frame(3, 1_000, seed: 9);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        FrameLink.Send(remoteRef, small, TestActor, _chunkBytes, link);
        FrameLink.Send(remoteRef, large, TestActor, _chunkBytes, link);
        Assert.Equal(0, FrameLink.Send(TestActor, local, TestActor, _chunkBytes, link));

        Assert.Same(local, await ExpectMsgAsync<Frame>(TimeSpan.FromSeconds(5)));
        Assert.True(clock.Elapsed < delay, $"the local frame took {clock.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(small, await receiver.ExpectMsgAsync<Frame>(TimeSpan.FromSeconds(10)));
        var arrived = clock.Elapsed;
        var chunks = await ReceiveChunksAsync(receiver, ExpectedChunks(large));

        Assert.True(arrived >= delay, $"the delayed frame arrived after {arrived.TotalMilliseconds:0} ms, inside the 300 ms delay");
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.Chunk.Index));
        var assembler = new FrameAssembler();
        // Every chunk must go through the assembler: Select(...).Last() on a list would run the selector on the last one only.
        var rebuilt = chunks.Select(c => assembler.Add(c.Chunk, c.Sender)).ToList();
        Assert.Equal(large, rebuilt[^1]);
    }

    protected override void AfterAll()
    {
        _remoteSystem.Terminate().Wait(TimeSpan.FromSeconds(10));
        base.AfterAll();
    }

    /// <summary>A probe in the second system and a ref to it as the first system sees it (remote).</summary>
    private (TestProbe Probe, IActorRef Ref) RemoteProbe()
    {
        var probe = CreateTestProbe(_remoteSystem);
        var address = ((ExtendedActorSystem)_remoteSystem).Provider.DefaultAddress;
        var remote = ((ExtendedActorSystem)Sys).Provider.ResolveActorRef(probe.Ref.Path.ToStringWithAddress(address));
        Assert.False(remote.Path.Address.HasLocalScope);
        return (probe, remote);
    }

    private int ExpectedChunks(Frame frame) => (FrameCodec.Encode(frame).Length + _chunkBytes - 1) / _chunkBytes;

    private static async Task<List<(FrameChunk Chunk, IActorRef Sender)>> ReceiveChunksAsync(TestProbe probe, int count)
    {
        var chunks = new List<(FrameChunk, IActorRef)>();
        for (var i = 0; i < count; i++)
        {
            chunks.Add((await probe.ExpectMsgAsync<FrameChunk>(TimeSpan.FromSeconds(10)), probe.LastSender));
        }

        return chunks;
    }

    /// <summary>A frame of two tensors (float and uint8) carrying about <paramref name="bytes"/> bytes.</summary>
    private static Frame Frame(long id, int bytes, int seed)
    {
        var random = new Random(seed);
        var floats = new byte[bytes / 8 * 4];
        var mask = new byte[bytes - floats.Length];
        random.NextBytes(floats);
        random.NextBytes(mask);
        return new Frame(id, "camera-" + seed, 3, 1_700_000_000_000_000 + id, 1,
        [
            new FrameTensor("features", DataType.Float, [1, floats.Length / 4], floats),
            new FrameTensor("mask", DataType.Uint8, [mask.Length], mask),
        ]);
    }

    private static FrameChunk[] Halves(Frame frame)
    {
        var encoded = FrameCodec.Encode(frame);
        var half = encoded.Length / 2;
        return
        [
            new FrameChunk(frame.FrameId, frame.Epoch, frame.Attempt, 0, 2, encoded[..half]),
            new FrameChunk(frame.FrameId, frame.Epoch, frame.Attempt, 1, 2, encoded[half..]),
        ];
    }
}
