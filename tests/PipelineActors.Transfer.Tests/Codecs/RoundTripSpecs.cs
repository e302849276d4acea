using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>Every codec round-trips every shape, empty and single-element tensors and extreme values within its promise.</summary>
public sealed class RoundTripSpecs
{
    public static TheoryData<string, long[]> CodecsAndShapes()
    {
        long[][] shapes = [[7], [3, 5], [2, 3, 4], [1, 4, 5, 6], [2, 3, 2, 3, 2], [0], [1, 3, 0, 4], [1], [1, 1, 1, 1], [1, 64, 9, 9]];
        var data = new TheoryData<string, long[]>();
        foreach (var codec in TestTensors.CodecNames)
        {
            foreach (var shape in shapes)
            {
                data.Add(codec, shape);
            }
        }

        return data;
    }

    public static TheoryData<string> Codecs() => new(TestTensors.CodecNames);

    [Theory]
    [MemberData(nameof(CodecsAndShapes))]
    public void A_tensor_of_any_rank_or_size_comes_back_with_its_shape_and_within_the_codecs_promise(string name, long[] shape)
    {
        var values = TestTensors.PostRelu(shape, seed: 11);
        var codec = TestTensors.Codec(name, values, shape);

        var decoded = codec.Decode(codec.Encode(values, shape), DecodeLimits.Default);

        Assert.Equal(shape, decoded.Shape);
        TestTensors.AssertKeepsPromise(codec, values, shape, decoded.Values);
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Infinities_nans_denormals_huge_values_zero_and_constant_channels_come_back_as_promised(string name)
    {
        long[] shape = [1, 4, 4, 4];
        var values = TestTensors.Gaussians(64, seed: 5);
        float[] extremes =
        [
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, BitConverter.Int32BitsToSingle(0x7FC0_1234), float.Epsilon, -float.Epsilon,
            1e-40f, 3e38f, -3e38f, float.MaxValue, float.MinValue, 70000f, -1e6f, 65519f, 65520f, -0f,
        ];
        extremes.CopyTo(values, 0);
        Array.Fill(values, 0f, 16, 16); // an all-zero channel
        Array.Fill(values, 2.5f, 32, 16); // a constant channel
        var codec = TestTensors.Codec(name, values, shape);

        var decoded = codec.Decode(codec.Encode(values, shape), DecodeLimits.Default).Values;

        TestTensors.AssertKeepsPromise(codec, values, shape, decoded);
        if (codec is not Lz4Codec)
        {
            Assert.All(decoded.AsSpan(16, 16).ToArray(), v => Assert.Equal(0f, v));
        }

        if (codec is QuantizedCodec)
        {
            // A constant channel's value is the top of its range, so it is a code of its own.
            Assert.All(decoded.AsSpan(32, 16).ToArray(), v => Assert.Equal(2.5, v, 1e-6));
        }
        else
        {
            Assert.All(decoded.AsSpan(32, 16).ToArray(), v => Assert.Equal(2.5f, v));
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_large_all_zero_tensor_shrinks_to_a_small_fraction_and_comes_back_as_zeros(string name)
    {
        long[] shape = [1, 256, 64, 64];
        var values = new float[TestTensors.Count(shape)];
        var codec = TestTensors.Codec(name, values, shape);

        var encoded = codec.Encode(values, shape);
        var decoded = codec.Decode(encoded, DecodeLimits.Default);

        Assert.True(encoded.Length * 100L < values.Length * 4L, $"{name}: {encoded.Length} bytes for {values.Length * 4} zero bytes");
        Assert.DoesNotContain(decoded.Values, v => BitConverter.SingleToUInt32Bits(v) != 0);
    }

    [Fact]
    public void A_negative_channel_keeps_its_sign_and_a_two_sided_channel_keeps_zero_exact()
    {
        long[] shape = [2, 2, 50];
        var values = TestTensors.Gaussians(200, seed: 9, mean: -3, std: 1).Select((v, i) => i % 100 < 50 ? Math.Min(v, -0.5f) : v + 3).ToArray();
        values[60] = 0f;
        foreach (var name in new[] { "int8", "int4" })
        {
            var codec = TestTensors.Codec(name, values, shape);
            var decoded = codec.Decode(codec.Encode(values, shape), DecodeLimits.Default).Values;
            TestTensors.AssertKeepsPromise(codec, values, shape, decoded);
            Assert.Equal(0f, decoded[60]);
            Assert.All(decoded.Take(50), v => Assert.True(v < 0));
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(4)]
    public void A_declared_channel_axis_quantises_per_channel_of_that_axis(int bits)
    {
        // NHWC, as BlazeFace takes its input: channels last, each with its own range.
        long[] shape = [1, 6, 5, 3];
        var values = new float[90];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (i % 3 + 1) * 10f * (i / 3 % 7) / 7f;
        }

        var statistics = TensorStatistics.Of("nhwc", values, shape, channelAxis: 3);
        var codec = QuantizedCodec.Calibrated(bits, statistics, ClipMethod.MinMax);

        var decoded = TensorCodecs.Decoder($"int{bits}").Decode(codec.Encode(values, shape), DecodeLimits.Default).Values;

        Assert.Equal(3, codec.Channels.Count);
        Assert.True(codec.Channels[2].Scale > 2.5 * codec.Channels[0].Scale);
        for (var i = 0; i < values.Length; i++)
        {
            TestTensors.AssertQuantized(codec.Channels[i % 3], values[i], decoded[i], i);
        }
    }

    [Fact]
    public void The_fp16_codec_rounds_exactly_as_a_half_conversion_does_and_saturates_finite_overflow()
    {
        var random = new Random(2);
        var values = Enumerable.Range(0, 100_000).Select(_ => BitConverter.Int32BitsToSingle(random.Next())).ToArray();
        var codec = new Fp16Codec();

        var decoded = codec.Decode(codec.Encode(values, [values.Length]), DecodeLimits.Default).Values;

        for (var i = 0; i < values.Length; i++)
        {
            var half = (Half)values[i];
            var expected = Half.IsInfinity(half) && float.IsFinite(values[i]) ? Math.Sign(values[i]) * 65504f : (float)half;
            var same = BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(decoded[i]);
            Assert.True(same || (float.IsNaN(expected) && float.IsNaN(decoded[i])),
                $"element {i}: {values[i]:R} -> {decoded[i]:R}, expected {expected:R}");
            TestTensors.AssertFp16(values[i], decoded[i], i);
        }
    }

    [Fact]
    public void Encoding_refuses_a_shape_that_does_not_match_the_values_or_the_calibrated_channels()
    {
        var values = TestTensors.PostRelu([1, 4, 3], seed: 1);
        Assert.Throws<ArgumentException>(() => new Lz4Codec().Encode(values, [1, 4, 4]));
        Assert.Throws<ArgumentException>(() => new Fp16Codec().Encode(values, [1, -4, -3]));
        var int8 = TestTensors.Codec("int8", values, [1, 4, 3]);
        Assert.Throws<ArgumentException>(() => int8.Encode(values, [1, 3, 4]));
    }
}
