using System.Runtime.Serialization;
using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Link;

/// <summary>
/// The chunk assembler under hostile input, seeded so runs repeat: chunks with forged counts, indices, offsets and
/// lengths, flipped payload bits, duplicates and several senders interleaved. It never throws anything but the documented
/// SerializationException (a frame whose chunks all came but do not decode), never allocates for a length a chunk merely
/// claims, keeps its bounds in all and per sender, and drops a frame that never completes after its timeout.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class HostileChunkSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const int FrameLimit = 64 * 1024;
    private static readonly WireLimits Wire = WireLimits.Default with { FrameBytes = FrameLimit };

    public HostileChunkSpecs()
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void Forged_chunks_are_counted_and_dropped_never_thrown_and_never_allocate_what_they_claim(int seed)
    {
        var random = new Random(seed);
        var senders = Enumerable.Range(0, 3).Select(_ => CreateTestProbe().Ref).ToList();
        var frames = Enumerable.Range(0, 4).Select(i => Frame(i, 12_000 + (i * 3_000), seed + i)).ToList();
        var cut = frames.Select(f => FrameLink.Cut(f, 4096)).ToList();
        var assembler = new FrameAssembler(new AssemblyLimits(MaxPartial: 6, PerSender: 3, TimeSpan.FromSeconds(30), Wire));
        var (rebuilt, cases, attempt) = (0, 0, 1);
        while (cases < 3_000)
        {
            // One send of a frame by one sender, its chunks in any order, a third of them forged; a fresh attempt each
            // time, so a frame rebuilt before can be rebuilt again.
            var sender = senders[random.Next(senders.Count)];
            var send = cut[random.Next(cut.Count)].Select(c => c with { Attempt = attempt }).OrderBy(_ => random.Next()).ToList();
            attempt++;
            foreach (var chunk in send)
            {
                var (forged, kind) = random.Next(3) == 0 ? Forge(chunk, random) : (chunk, "honest");
                var before = GC.GetAllocatedBytesForCurrentThread();
                try
                {
                    // A frame may complete from honest chunks after flipped ones: what it decodes to is not this spec's to judge.
                    rebuilt += assembler.Add(forged, sender) is null ? 0 : 1;
                }
                catch (SerializationException)
                {
                    // Documented: every chunk came, but together they do not decode.
                }
                catch (Exception e)
                {
                    Assert.Fail($"seed {seed} case {cases} ({kind}): {e.GetType().Name}: {e.Message}");
                }

                // A chunk costs its own bookkeeping; only a completed frame takes a buffer, and frames are at most the limit.
                var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.True(allocated <= (3L * FrameLimit) + (64 * 1024), $"seed {seed} case {cases} ({kind}): {allocated} bytes allocated");
                Assert.InRange(assembler.Partial, 0, 6);
                cases++;
            }
        }

        Assert.True(assembler.Malformed > 200, $"{assembler.Malformed} malformed");
        Assert.True(rebuilt > 50, $"{rebuilt} frames rebuilt: honest sends should mostly complete");
        Assert.True(assembler.Dropped > 0, "the bounds were never reached");
    }

    [Fact]
    public void A_chunk_claiming_a_frame_of_int_MaxValue_bytes_is_refused_without_allocating_for_it()
    {
        var assembler = new FrameAssembler(new AssemblyLimits(8, 8, TimeSpan.FromSeconds(30), Wire));
        var before = GC.GetAllocatedBytesForCurrentThread();

        Assert.Null(assembler.Add(new FrameChunk(1, 1, 1, 0, 2, 0, int.MaxValue, new byte[100]), TestActor));
        Assert.Null(assembler.Add(new FrameChunk(2, 1, 1, 0, int.MaxValue, 0, 60_000, new byte[100]), TestActor));

        Assert.Equal(2, assembler.Malformed);
        Assert.Equal(0, assembler.Partial);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 16 * 1024);
    }

    [Fact]
    public void A_partial_frame_claiming_the_limit_holds_only_the_bytes_its_sender_sent()
    {
        var assembler = new FrameAssembler(new AssemblyLimits(64, 64, TimeSpan.FromSeconds(30), Wire));
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 64; i++)
        {
            Assert.Null(assembler.Add(new FrameChunk(i, 1, 1, 0, 16, 0, FrameLimit, new byte[10]), TestActor));
        }

        Assert.Equal(64, assembler.Partial);

        // 64 frames claiming 64 KiB each would be 4 MiB if buffers were taken up front.
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 512 * 1024);
    }

    [Fact]
    public void A_chunked_frame_that_never_completes_is_dropped_after_the_timeout_and_its_late_chunks_do_not_revive_it()
    {
        var now = TimeSpan.Zero;
        var assembler = new FrameAssembler(new AssemblyLimits(8, 8, TimeSpan.FromSeconds(30), Wire), () => now);
        var stuck = FrameLink.Cut(Frame(1, 10_000, seed: 1), 4096);
        var next = FrameLink.Cut(Frame(2, 10_000, seed: 2), 4096);

        Assert.Null(assembler.Add(stuck[0], TestActor));
        now = TimeSpan.FromSeconds(20);
        Assert.Null(assembler.Add(next[0], TestActor));
        Assert.Equal((2, 0L), (assembler.Partial, assembler.Expired));

        now = TimeSpan.FromSeconds(31);
        Assert.Null(assembler.Add(next[1], TestActor));
        Assert.Equal((1, 1L, 1L), (assembler.Partial, assembler.Expired, assembler.Dropped));

        // The stuck frame's missing chunks alone start it again, and it never completes; the other frame does.
        Assert.All(stuck.Skip(1), c => Assert.Null(assembler.Add(c, TestActor)));
        Assert.Equal(Frame(2, 10_000, seed: 2), assembler.Add(next[2], TestActor));
    }

    [Fact]
    public void One_sender_cannot_crowd_out_the_partial_frames_of_another()
    {
        var assembler = new FrameAssembler(new AssemblyLimits(MaxPartial: 8, PerSender: 2, TimeSpan.FromSeconds(30), Wire));
        var (flooder, honest) = (CreateTestProbe().Ref, CreateTestProbe().Ref);
        var frame = Frame(100, 10_000, seed: 5);
        var chunks = FrameLink.Cut(frame, 4096);
        Assert.Null(assembler.Add(chunks[0], honest));

        for (var i = 0; i < 50; i++)
        {
            Assert.Null(assembler.Add(FrameLink.Cut(Frame(i, 10_000, seed: i), 4096)[0], flooder));
        }

        Assert.Equal(3, assembler.Partial);
        Assert.Equal(48, assembler.Dropped);
        Assert.Null(assembler.Add(chunks[1], honest));
        Assert.Equal(frame, assembler.Add(chunks[2], honest));
    }

    [Fact]
    public void The_node_limits_in_reference_conf_give_the_assembler_its_per_sender_bound_and_timeout()
    {
        var limits = Runtime.Hosting.Security.NodeLimits.Of(Sys);

        Assert.Equal(64, limits.PartialFramesPerSender);
        Assert.Equal(TimeSpan.FromSeconds(30), limits.PartialFrameTimeout);
        Assert.Equal(1_000_000, limits.EpochStep);
        Assert.Equal(new AssemblyLimits(256, 64, TimeSpan.FromSeconds(30), WireLimits.Default), limits.Assembly(256));
    }

    private static (FrameChunk Chunk, string Kind) Forge(FrameChunk chunk, Random random)
    {
        int[] hostile = [int.MaxValue, int.MinValue, -1, 0, 1, FrameLimit + 1, 1 << 20, random.Next()];
        int Pick() => hostile[random.Next(hostile.Length)];
        switch (random.Next(7))
        {
            case 0:
                return (chunk with { Count = Pick() }, "count");
            case 1:
                return (chunk with { Index = Pick() }, "index");
            case 2:
                return (chunk with { Offset = Pick() }, "offset");
            case 3:
                return (chunk with { TotalBytes = Pick() }, "total");
            case 4:
                var flipped = chunk.Payload.ToArray();
                flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
                return (chunk with { Payload = flipped }, "bit-flipped");
            case 5:
                return (chunk with { Payload = chunk.Payload[..random.Next(chunk.Payload.Length)] }, "truncated");
            default:
                return (chunk with { Index = (chunk.Index + 1) % chunk.Count }, "wrong index");
        }
    }

    private static Frame Frame(long id, int bytes, int seed)
    {
        var data = new byte[bytes / 4 * 4];
        new Random(seed).NextBytes(data);
        return new Frame(id, "camera-" + seed, 3, 1_700_000_000_000_000 + id, 1,
            [new HostTensor("features", DataType.Float, [1, data.Length / 4], data)]);
    }
}
