using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>Truncated, bit-flipped, oversized or foreign buffers give one clear exception, never an index error, and allocate nothing big.</summary>
public sealed class CorruptInputSpecs
{
    private static readonly long[] Shape = [1, 3, 4, 5];

    public static TheoryData<string> Codecs() => new(TestTensors.CodecNames);

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Every_truncation_of_an_encoded_tensor_is_a_codec_error(string name)
    {
        var (codec, encoded) = Encoded(name);
        for (var length = 0; length < encoded.Length; length++)
        {
            var error = Assert.Throws<TensorCodecException>(() => codec.Decode(encoded.AsSpan(0, length), DecodeLimits.Default));
            Assert.EndsWith(".", error.Message);
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Every_bit_flip_in_the_header_is_a_codec_error(string name)
    {
        var (codec, encoded) = Encoded(name);
        var header = 4 + (8 * Shape.Length) + 12;
        for (var bit = 0; bit < header * 8; bit++)
        {
            var corrupt = (byte[])encoded.Clone();
            corrupt[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.Throws<TensorCodecException>(() => codec.Decode(corrupt, DecodeLimits.Default));
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_bit_flip_in_the_body_is_a_codec_error_or_a_tensor_of_the_right_shape_never_another_exception(string name)
    {
        var (codec, encoded) = Encoded(name);
        var header = 4 + (8 * Shape.Length) + 12;
        var errors = 0;
        for (var bit = header * 8; bit < encoded.Length * 8; bit++)
        {
            var corrupt = (byte[])encoded.Clone();
            corrupt[bit / 8] ^= (byte)(1 << (bit % 8));
            try
            {
                Assert.Equal(Shape, codec.Decode(corrupt, DecodeLimits.Default).Shape);
            }
            catch (TensorCodecException)
            {
                errors++;
            }
        }

        Assert.True(errors > 0, "no body corruption was detected at all"); // the length prefix at least is checked
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Random_bytes_and_random_bytes_behind_a_valid_header_are_codec_errors(string name)
    {
        var (codec, encoded) = Encoded(name);
        var random = new Random(21);
        var header = 4 + (8 * Shape.Length) + 12;
        for (var i = 0; i < 2_000; i++)
        {
            var garbage = new byte[random.Next(0, 200)];
            random.NextBytes(garbage);
            if (i % 2 == 1 && garbage.Length > header)
            {
                encoded.AsSpan(0, header).CopyTo(garbage);
            }

            try
            {
                codec.Decode(garbage, DecodeLimits.Default);
            }
            catch (TensorCodecException)
            {
            }
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_header_that_claims_more_elements_or_dimensions_than_the_limits_fails_before_allocating(string name)
    {
        var codec = TestTensors.Codec(name, new float[6], [1, 6]);
        var huge = Header(name, [1 << 20, 1 << 20], bodyBytes: 64);
        var overflowing = Header(name, [long.MaxValue / 2, 4, 4], bodyBytes: 64);
        var deep = Header(name, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], bodyBytes: 64);
        // Within the default limits but far more than 64 bytes can hold: refused before the 256 MiB buffer is made.
        var implausible = Header(name, [1, 64, 1024, 1024], bodyBytes: 64);

        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("limit", Assert.Throws<TensorCodecException>(() => codec.Decode(huge, DecodeLimits.Default)).Message);
        Assert.Throws<TensorCodecException>(() => codec.Decode(overflowing, DecodeLimits.Default));
        Assert.Contains("rank 10", Assert.Throws<TensorCodecException>(() => codec.Decode(deep, DecodeLimits.Default)).Message);
        Assert.Throws<TensorCodecException>(() => codec.Decode(implausible, DecodeLimits.Default));
        Assert.Contains("limit", Assert.Throws<TensorCodecException>(() => codec.Decode(Header(name, [1, 6], 64), new DecodeLimits(5, 4))).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000, "a refused header still allocated a large buffer");
    }

    [Fact]
    public void A_buffer_of_one_codec_given_to_another_names_both()
    {
        var (_, int8) = Encoded("int8");
        var error = Assert.Throws<TensorCodecException>(() => new Fp16Codec().Decode(int8, DecodeLimits.Default));
        Assert.Contains("not a fp16 tensor", error.Message);
    }

    private static (ITensorCodec Codec, byte[] Encoded) Encoded(string name)
    {
        var values = TestTensors.PostRelu(Shape, seed: 3);
        var codec = TestTensors.Codec(name, values, Shape);
        return (codec, codec.Encode(values, Shape));
    }

    /// <summary>A well-formed header (checksum included) for any dims, with an LZ4-flagged body behind it.</summary>
    private static byte[] Header(string name, long[] dims, int bodyBytes)
    {
        var id = name switch { "lz4" => CodecId.Lz4, "fp16" => CodecId.Fp16, "int8" => CodecId.Int8, _ => CodecId.Int4 };
        var buffer = new byte[CodecHeader.Size(dims.Length) + bodyBytes];
        CodecHeader.Write(buffer, id, dims);
        var body = buffer.AsSpan(CodecHeader.Size(dims.Length));
        if (name is "int8" or "int4")
        {
            body[4] = (byte)(dims.Length > 1 ? dims[1] : 1); // channel count, with scales of 0 that a decoder would refuse later
            body = body[13..];
        }

        body[0] = 1;
        BitConverter.TryWriteBytes(body[1..], body.Length - 5);
        return buffer;
    }
}
