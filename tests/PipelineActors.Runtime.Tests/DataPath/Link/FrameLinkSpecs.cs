using System.Runtime.InteropServices;
using Akka.Actor;
using Akka.Serialization;
using Akka.TestKit;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;
using Xunit.Abstractions;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Link;

/// <summary>
/// Frames to a remote actor cross in chunks of at most <c>pipeline.chunk-bytes</c> (two actor
/// systems on 127.0.0.1) and <see cref="FrameAssembler"/> puts them back together, in any order.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class FrameLinkSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly ActorSystem _remoteSystem;
    private readonly int _chunkBytes;
    private readonly ITestOutputHelper _output;

    public FrameLinkSpecs(ITestOutputHelper output)
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
        _output = output;
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
        var expected = (frame.FrameId, frame.Epoch, frame.Attempt, chunks.Count);
        Assert.All(chunks, c => Assert.Equal(expected, (c.Chunk.FrameId, c.Chunk.Epoch, c.Chunk.Attempt, c.Chunk.Count)));

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
    public async Task Both_ends_count_a_link_in_encoded_bytes_whole_or_chunked_and_a_sparse_frame_counts_smaller()
    {
        var (receiver, remoteRef) = RemoteProbe();
        var small = Frame(1, 2_000, seed: 7);
        var sparse = Sparse(Frame(2, 400_000, seed: 8));

        var sentSmall = FrameLink.Send(remoteRef, small, TestActor, _chunkBytes);
        var arrivedSmall = await receiver.ExpectMsgAsync<Frame>(TimeSpan.FromSeconds(10));
        Assert.Equal(sentSmall, FrameLink.Received(arrivedSmall, receiver.LastSender));

        var sentSparse = FrameLink.Send(remoteRef, sparse, TestActor, _chunkBytes);
        var chunks = await ReceiveChunksAsync(receiver, ExpectedChunks(sparse));
        Assert.Equal(sentSparse, chunks.Sum(c => FrameLink.Received(c.Chunk)));
        Assert.True(sentSparse < sparse.Bytes * 0.85, $"{sentSparse} bytes on the link for {sparse.Bytes} bytes of tensors");

        // Nothing crosses between local actors, on either end.
        Assert.Equal(0, FrameLink.Received(small, TestActor));
    }

    [Fact]
    public void Chunks_are_slices_of_one_encoded_buffer_that_tile_it_exactly()
    {
        var frame = Frame(3, 500_000, seed: 9);
        var chunks = FrameLink.Cut(frame, _chunkBytes);
        var encoded = FrameCodec.Encode(frame);

        Assert.True(MemoryMarshal.TryGetArray(chunks[0].Payload, out var first));
        Assert.All(chunks, c =>
        {
            Assert.True(MemoryMarshal.TryGetArray(c.Payload, out var segment));
            Assert.Same(first.Array, segment.Array);
            Assert.Equal(c.Offset, segment.Offset);
            Assert.Equal(encoded.Length, c.TotalBytes);
        });
        Assert.Equal(chunks.Skip(1).Select(c => c.Offset), chunks.SkipLast(1).Select(c => c.Offset + c.Payload.Length));
        Assert.Equal(encoded.Length, chunks[^1].Offset + chunks[^1].Payload.Length);
        Assert.Equal(encoded, chunks.SelectMany(c => c.Payload.ToArray()));
    }

    [Fact]
    public void Chunks_that_arrive_in_any_order_reassemble_to_the_frame_that_was_sent()
    {
        var frame = Sparse(Frame(4, 700_000, seed: 11));
        var chunks = FrameLink.Cut(frame, _chunkBytes).Select(OverTheWire).ToList();
        Assert.True(chunks.Count > 4);
        var random = new Random(16);
        var shuffled = chunks.OrderBy(_ => random.Next()).ToList();
        shuffled.Remove(chunks[^1]);
        shuffled.Insert(0, chunks[^1]); // the short last piece first: the buffer is sized from TotalBytes, not the payload

        var assembler = new FrameAssembler();
        var rebuilt = shuffled.Select(c => assembler.Add(c, TestActor)).ToList();

        Assert.All(rebuilt.SkipLast(1), Assert.Null);
        Assert.Equal(frame, rebuilt[^1]);
        Assert.Equal((0, 0L, 0L), (assembler.Partial, assembler.Dropped, assembler.Ignored));
    }

    [Fact]
    public void Duplicate_chunks_are_ignored_before_and_after_the_frame_completes()
    {
        var frame = Frame(5, 300_000, seed: 12);
        var chunks = FrameLink.Cut(frame, _chunkBytes).Select(OverTheWire).ToList();
        var assembler = new FrameAssembler();

        Assert.Null(assembler.Add(chunks[0], TestActor));
        Assert.Null(assembler.Add(chunks[0], TestActor));
        Assert.Null(assembler.Add(chunks[1], TestActor));
        var rebuilt = chunks.Skip(2).Select(c => assembler.Add(c, TestActor)).ToList();
        Assert.Equal(frame, rebuilt[^1]);

        // A late copy of any piece neither starts the frame again nor yields it twice.
        Assert.All(chunks, c => Assert.Null(assembler.Add(c, TestActor)));
        Assert.Equal(0, assembler.Partial);
        Assert.Equal(1 + chunks.Count, assembler.Ignored);
    }

    [Fact]
    public void A_chunk_of_an_older_attempt_is_dropped_and_a_newer_attempt_replaces_a_half_built_older_one()
    {
        var first = Frame(6, 300_000, seed: 13);
        var second = first with { Attempt = 2 };
        var third = first with { Attempt = 3 };
        var one = FrameLink.Cut(first, _chunkBytes);
        var two = FrameLink.Cut(second, _chunkBytes);
        var three = FrameLink.Cut(third, _chunkBytes);
        var assembler = new FrameAssembler();

        Assert.Null(assembler.Add(one[0], TestActor));
        Assert.Null(assembler.Add(two[0], TestActor)); // attempt 2 supersedes the half-built attempt 1
        Assert.Equal(1, assembler.Partial);
        Assert.All(one.Skip(1), c => Assert.Null(assembler.Add(c, TestActor)));
        Assert.Equal(one.Length - 1, assembler.Ignored);

        var rebuilt = two.Skip(1).Select(c => assembler.Add(c, TestActor)).ToList();
        Assert.Equal(second, rebuilt[^1]);
        Assert.Equal(2, rebuilt[^1]!.Attempt);

        // After attempt 2 completed, attempt 1 cannot start again; a later attempt 3 still assembles.
        Assert.Null(assembler.Add(one[0], TestActor));
        Assert.Equal(0, assembler.Partial);
        Assert.Equal(third, three.Select(c => assembler.Add(c, TestActor)).ToList()[^1]);
    }

    [Fact]
    public void A_chunk_that_contradicts_its_frame_or_overruns_it_is_ignored()
    {
        var frame = Frame(7, 200_000, seed: 14);
        var chunks = FrameLink.Cut(frame, _chunkBytes);
        var assembler = new FrameAssembler();

        Assert.Null(assembler.Add(chunks[0], TestActor));
        Assert.Null(assembler.Add(chunks[1] with { TotalBytes = chunks[1].TotalBytes + 1 }, TestActor));
        Assert.Null(assembler.Add(chunks[1] with { Offset = chunks[1].TotalBytes - 1 }, TestActor));
        Assert.Null(assembler.Add(chunks[1] with { Index = chunks.Length }, TestActor));

        // The first contradicts the frame's first chunk; the other two could belong to no frame at all.
        Assert.Equal((1, 2), (assembler.Ignored, assembler.Malformed));

        Assert.Equal(frame, chunks.Skip(1).Select(c => assembler.Add(c, TestActor)).ToList()[^1]);
    }

    [Fact]
    public void An_800_KiB_frame_allocates_two_frames_to_send_and_one_to_receive()
    {
        var data = new byte[800 * 1024];
        new Random(15).NextBytes(data);
        var frame = new Frame(8, "camera-1", 1, 1_700_000_000_000_000, 1, [new HostTensor("x", DataType.Float, [data.Length / 4], data)]);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(FrameLink.Cut(frame, _chunkBytes)[0]);
        long sent = 0, received = 0;
        for (var round = 0; round < 3; round++)
        {
            // Encode, cut and serialize as the sending node does; then read and assemble as the receiving node does.
            var start = GC.GetAllocatedBytesForCurrentThread();
            var wire = FrameLink.Cut(frame, _chunkBytes).Select(c => serializer.ToBinary(c)).ToList();
            sent = GC.GetAllocatedBytesForCurrentThread() - start;

            start = GC.GetAllocatedBytesForCurrentThread();
            var assembler = new FrameAssembler();
            Frame? rebuilt = null;
            foreach (var bytes in wire)
            {
                rebuilt = assembler.Add((FrameChunk)serializer.FromBinary(bytes, "FC"), TestActor) ?? rebuilt;
            }

            received = GC.GetAllocatedBytesForCurrentThread() - start;
            Assert.Equal(frame, rebuilt);
        }

        _output.WriteLine($"{frame.Bytes} tensor bytes: send {sent} B allocated ({(double)sent / frame.Bytes:F2}x), "
            + $"receive {received} B ({(double)received / frame.Bytes:F2}x)");

        // The chunk-copying code allocated 3.0x on each side (encode, a copy per chunk, header + payload; a copy per
        // chunk, the concatenation, the decode). Now: the encoded buffer and the wire arrays (2x); the decode only, as the
        // whole-frame buffer is pooled and the payloads are slices of the wire arrays (1x).
        Assert.InRange(sent, frame.Bytes, (long)(frame.Bytes * 2.2));
        Assert.InRange(received, frame.Bytes, (long)(frame.Bytes * 1.2));
    }

    [Fact]
    public async Task A_small_frame_crosses_whole_and_a_frame_for_a_local_actor_is_never_cut()
    {
        var (receiver, remoteRef) = RemoteProbe();
        var small = Frame(1, 1_000, seed: 5);
        var large = Frame(2, 1_000_000, seed: 6);

        Assert.Equal(FrameCodec.EncodedLength(small), FrameLink.Send(remoteRef, small, TestActor, _chunkBytes));
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

    /// <summary>Every other float zeroed, so the frame travels zero-suppressed.</summary>
    private static Frame Sparse(Frame frame) => frame with
    {
        Tensors = frame.Tensors.Select(t =>
        {
            if (t.ElementType != DataType.Float)
            {
                return t;
            }

            var copy = t.Data.ToArray();
            for (var i = 0; i + 4 <= copy.Length; i += 8)
            {
                copy.AsSpan(i, 4).Clear();
            }

            return t with { Data = copy };
        }).ToList(),
    };

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
            new HostTensor("features", DataType.Float, [1, floats.Length / 4], floats),
            new HostTensor("mask", DataType.Uint8, [mask.Length], mask),
        ]);
    }

    private static FrameChunk[] Halves(Frame frame)
    {
        var chunks = FrameLink.Cut(frame, (FrameCodec.EncodedLength(frame) + 1) / 2);
        Assert.Equal(2, chunks.Length);
        return chunks;
    }

    /// <summary>What a chunk becomes on the other side of the link: written and read by the frame serializer.</summary>
    private FrameChunk OverTheWire(FrameChunk chunk)
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(chunk);
        return (FrameChunk)serializer.FromBinary(serializer.ToBinary(chunk), serializer.Manifest(chunk));
    }
}
