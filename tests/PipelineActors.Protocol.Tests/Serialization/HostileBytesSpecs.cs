using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.Serialization;
using Akka.Serialization;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Protocol.Tests.Serialization;

/// <summary>
/// Property-style fuzzing of the three serializers with a seeded <see cref="Random"/> (runs repeat): every protocol
/// message's bytes truncated, bit-flipped, with hostile length fields written over them, with bytes appended, and
/// replaced by noise. Each case either decodes, is refused as another version, or throws a SerializationException (what
/// Akka.Remote drops with a log line; anything else may fail the association), and none allocates more than a small
/// multiple of its own length. The node's limits are lowered here so that the limit checks, not the message's length,
/// are what refuses a large frame.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class HostileBytesSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const int FrameLimit = 256 * 1024;

    private static readonly int[] HostileInts = [int.MaxValue, int.MinValue, -1, 0x7FFF_FFF0, 1 << 30, 65_537, FrameLimit + 1];
    private static readonly long[] HostileLongs = [long.MaxValue, long.MinValue, -1, 1L << 40];

    public HostileBytesSpecs()
        : base(TestNodes.Config($"pipeline.limits.frame-bytes = {FrameLimit}b", Roles.Worker), PipelineConfig.SystemName)
    {
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Mutated_messages_decode_or_throw_a_SerializationException_and_allocate_little(int seed)
    {
        var random = new Random(seed);
        var samples = ProtocolSerializerSpecs.Samples(TestActor, TestActor);
        var cases = 0;
        var refused = 0;
        foreach (var message in samples)
        {
            var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
            var manifest = serializer.Manifest(message);
            var bytes = serializer.ToBinary(message);
            for (var i = 0; i < 60; i++)
            {
                var (kind, mutated) = Mutate(bytes, random);
                refused += Decode(serializer, mutated, manifest, $"seed {seed}, {message.GetType().Name}, case {i} ({kind})") ? 0 : 1;
                cases++;
            }
        }

        Assert.True(cases >= 2_000, $"{cases} cases");

        // Most mutations break a message; a few (a flipped bit in a number) leave one that decodes to other values.
        Assert.InRange(refused, cases / 3, cases);
    }

    [Fact]
    public void Noise_under_every_manifest_and_unknown_manifests_decode_or_throw_a_SerializationException()
    {
        var random = new Random(7);
        var serializers = ProtocolSerializerSpecs.Samples(TestActor, TestActor)
            .Select(m => (Serializer: (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(m),
                Manifest: ((SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(m)).Manifest(m)))
            .ToList();
        var cases = 0;
        foreach (var (serializer, manifest) in serializers)
        {
            for (var i = 0; i < 30; i++)
            {
                var noise = new byte[random.Next(0, 400)];
                random.NextBytes(noise);
                if (noise.Length > 0)
                {
                    noise[0] = WireFormat.Version;
                }

                Decode(serializer, noise, manifest, $"noise {i} under '{manifest}'");
                Decode(serializer, noise, manifest + "x", $"noise {i} under unknown manifest '{manifest}x'");
                cases += 2;
            }
        }

        Assert.True(cases >= 2_000, $"{cases} cases");
    }

    [Fact]
    public void A_length_of_int_MaxValue_is_refused_at_once_without_allocating_it()
    {
        var frame = new Frame(1, "camera-1", 2, 3, 1, [new HostTensor("input", DataType.Float, [1, 4], new byte[16])]);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(frame);
        var bytes = serializer.ToBinary(frame);

        // The tensor travels raw (under 1 KiB): its length field comes just before its 16 bytes, at the end of the message.
        var rawLength = bytes.Length - 16 - 4;
        Assert.Equal(16, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(rawLength)));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(rawLength), int.MaxValue);

        var clock = Stopwatch.StartNew();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, serializer.Manifest(frame)));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("2147483647", error.Message, StringComparison.Ordinal);
        Assert.InRange(allocated, 0, 64 * 1024);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.Elapsed}");
    }

    [Fact]
    public void A_frame_past_the_nodes_frame_limit_is_refused_even_when_its_bytes_are_all_there()
    {
        // Zero-suppressed zeros: 40 KiB on the wire decode to 1.25 MiB, past the 256 KiB limit of this node.
        var zeros = new HostTensor("act", DataType.Float, [1, 320, 32, 32], new byte[320 * 32 * 32 * 4]);
        var frame = new Frame(5, "camera-1", 1, 1, 1, [zeros]);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(frame);
        var bytes = serializer.ToBinary(frame);
        Assert.InRange(bytes.Length, 1, 64 * 1024);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, serializer.Manifest(frame)));

        Assert.Contains("limit", error.Message, StringComparison.Ordinal);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 64 * 1024);
    }

    [Fact]
    public void A_chunk_of_a_frame_past_the_limit_or_with_more_chunks_than_its_bytes_is_refused()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(new FrameChunk(1, 1, 1, 0, 1, 0, 1, new byte[1]));
        var huge = new FrameChunk(1, 1, 1, 0, 2, 0, int.MaxValue, new byte[8]);
        var countless = new FrameChunk(1, 1, 1, 0, int.MaxValue, 0, 100_000, new byte[8]);

        Assert.Contains("limit", Refusal(serializer, huge), StringComparison.Ordinal);
        Assert.Contains("cannot be 2147483647 chunks", Refusal(serializer, countless), StringComparison.Ordinal);
        Assert.Contains("puts 0 bytes", Refusal(serializer, new FrameChunk(1, 1, 1, 0, 2, 0, 100, ReadOnlyMemory<byte>.Empty)),
            StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("/srv/models/prod")]
    [InlineData("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08")]
    [InlineData("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0")]
    public void A_sha256_that_is_not_64_lowercase_hex_digits_is_refused_in_every_message_that_names_a_file(string sha)
    {
        object[] forged =
        [
            new FetchFileChunk(sha, 0),
            new FileChunk(sha, 0, 1, 3, [1, 2, 3]),
            new FileUnavailable(sha),
            new DeployStage("job-1", 1, 1, new StageSpec(0, new StageFile(sha, 10), ["x"], ["y"], [], 1, "0..1"), TestActor),
            new PrefetchFiles("job-1", [new StageFile(sha, 10)], TestActor),
            new StopStage("job-1", 1, 0, sha),
        ];

        foreach (var message in forged)
        {
            var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
            var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(serializer.ToBinary(message),
                serializer.Manifest(message)));
            Assert.Contains("is not a SHA-256", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Counts_and_indices_out_of_range_are_refused()
    {
        var sha = new string('a', 64);
        object[] forged =
        [
            new FileChunk(sha, 5, 5, 3, [1, 2, 3]),
            new FileChunk(sha, 0, -1, 3, [1, 2, 3]),
            new DeployStage("job-1", 1, 2, new StageSpec(2, new StageFile(sha, 10), ["x"], ["y"], [], 1, "0..1"), TestActor),
            new PlanActivated("job-1", -5, 1, [TestActor], [], PlanReason.Recovery),
            new PipelineJob("job-1", [new SplitPlan(0, [])], TestActor, TestActor, TestActor, 4),
            new PipelineJob("job-1", [], TestActor, TestActor, TestActor, -3),
            new StageWired("job-1", 1, 2, 9),
        ];

        foreach (var message in forged)
        {
            var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
            Assert.Throws<SerializationException>(() => serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message)));
        }
    }

    [Fact]
    public void The_limits_in_reference_conf_are_the_ones_code_falls_back_to()
    {
        Assert.Equal(WireLimits.Default, WireLimits.From(PipelineConfig.Build(new NodeOptions())));
        Assert.Equal(FrameLimit, WireLimits.From(Sys.Settings.Config).FrameBytes);
    }

    private static string Refusal(SerializerWithStringManifest serializer, FrameChunk chunk) =>
        Assert.Throws<SerializationException>(() => serializer.FromBinary(serializer.ToBinary(chunk), serializer.Manifest(chunk))).Message;

    /// <summary>One case: true when the bytes decoded (or were refused as another version), false when refused as malformed.</summary>
    private static bool Decode(SerializerWithStringManifest serializer, byte[] bytes, string manifest, string what)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        bool decoded;
        try
        {
            serializer.FromBinary(bytes, manifest);
            decoded = true;
        }
        catch (SerializationException)
        {
            decoded = false;
        }
        catch (Exception e)
        {
            Assert.Fail($"{what}: {e.GetType().Name}: {e.Message}");
            throw;
        }

        // Zero suppression may expand a tensor up to 32 times (one bit per 4-byte zero); nothing else may ask for more.
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated <= (64L * bytes.Length) + (256 * 1024), $"{what}: {allocated} bytes allocated for a {bytes.Length}-byte message");
        return decoded;
    }

    private static (string Kind, byte[] Bytes) Mutate(byte[] original, Random random)
    {
        var bytes = original.ToArray();
        switch (random.Next(6))
        {
            case 0 when bytes.Length >= 2:
                return ("truncated", bytes[..random.Next(1, bytes.Length)]);
            case 1 when bytes.Length >= 2:
                for (var i = random.Next(1, 5); i > 0; i--)
                {
                    // The version byte stays: a foreign version is refused before anything is read.
                    var at = 1 + random.Next(bytes.Length - 1);
                    bytes[at] ^= (byte)(1 << random.Next(8));
                }

                return ("bit-flipped", bytes);
            case 2 when bytes.Length >= 5:
                var at32 = 1 + random.Next(bytes.Length - 4);
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at32), HostileInts[random.Next(HostileInts.Length)]);
                return ("hostile int32", bytes);
            case 3 when bytes.Length >= 9:
                var at64 = 1 + random.Next(bytes.Length - 8);
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at64), HostileLongs[random.Next(HostileLongs.Length)]);
                return ("hostile int64", bytes);
            case 4 when bytes.Length >= 6:
                // A string's 7-bit length of int.MaxValue, where BinaryWriter put a length or anything else.
                var at7 = 1 + random.Next(bytes.Length - 5);
                new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x07 }.CopyTo(bytes, at7);
                return ("7-bit length", bytes);
            default:
                var tail = new byte[random.Next(1, 64)];
                random.NextBytes(tail);
                return ("appended", [.. bytes, .. tail]);
        }
    }
}
