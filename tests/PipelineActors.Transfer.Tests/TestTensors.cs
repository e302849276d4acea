using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Tests;

/// <summary>Tensors and codecs the specs share: seeded values, and each codec calibrated on the tensor it encodes.</summary>
internal static class TestTensors
{
    public static readonly string[] CodecNames = ["lz4", "fp16", "int8", "int4"];

    public static long Count(long[] shape) => shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Post-ReLU-like values: a share of exact zeros, the rest half-normal with a per-channel spread.</summary>
    public static float[] PostRelu(long[] shape, int seed, double zeroShare = 0.5)
    {
        var random = new Random(seed);
        var values = new float[Count(shape)];
        var layout = ChannelLayout.Of(shape, 1);
        for (var i = 0; i < values.Length; i++)
        {
            var channel = layout.Inner == 0 ? 0 : (i / layout.Inner) % layout.Channels;
            var spread = 0.5 + channel % 4;
            values[i] = random.NextDouble() < zeroShare ? 0f : (float)Math.Abs(Gaussian(random) * spread);
        }

        return values;
    }

    public static float[] Gaussians(int count, int seed, double mean = 0, double std = 1)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(mean + (std * Gaussian(random)))).ToArray();
    }

    public static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    /// <summary>The named codec; the quantisers are calibrated on <paramref name="values"/> themselves.</summary>
    public static ITensorCodec Codec(string name, float[] values, long[] shape, ClipMethod? method = null) => name switch
    {
        "lz4" => new Lz4Codec(),
        "fp16" => new Fp16Codec(),
        "int8" => QuantizedCodec.EightBit(TensorStatistics.Of("t", values, shape), method),
        "int4" => QuantizedCodec.FourBit(TensorStatistics.Of("t", values, shape), method),
        _ => throw new ArgumentException(name, nameof(name)),
    };

    /// <summary>Asserts that every decoded value keeps the codec's promise for its input value.</summary>
    public static void AssertKeepsPromise(ITensorCodec codec, float[] input, long[] shape, float[] decoded)
    {
        Assert.Equal(input.Length, decoded.Length);
        switch (codec)
        {
            case Lz4Codec:
                for (var i = 0; i < input.Length; i++)
                {
                    var same = BitConverter.SingleToUInt32Bits(input[i]) == BitConverter.SingleToUInt32Bits(decoded[i]);
                    Assert.True(same, $"lz4 changed element {i}: {input[i]} -> {decoded[i]}");
                }

                break;
            case Fp16Codec:
                for (var i = 0; i < input.Length; i++)
                {
                    AssertFp16(input[i], decoded[i], i);
                }

                break;
            case QuantizedCodec q:
                var layout = ChannelLayout.Of(shape, 1);
                for (var i = 0; i < input.Length; i++)
                {
                    var channel = q.Channels.Count == 1 ? 0 : (int)(i / layout.Inner % layout.Channels);
                    AssertQuantized(q.Channels[channel], input[i], decoded[i], i);
                }

                break;
            default:
                throw new ArgumentException($"No promise check for {codec.Name}.", nameof(codec));
        }
    }

    public static void AssertFp16(float x, float d, int i)
    {
        if (float.IsNaN(x))
        {
            Assert.True(float.IsNaN(d), $"fp16 element {i}: NaN came back as {d}");
            return;
        }

        if (float.IsInfinity(x))
        {
            Assert.Equal(x, d);
            return;
        }

        var magnitude = Math.Abs((double)x);
        double error = Math.Abs((double)d - x);
        if (magnitude > 65504)
        {
            Assert.Equal(Math.Sign(x) * 65504f, d);
        }
        else if (magnitude >= Math.Pow(2, -14))
        {
            Assert.True(error <= magnitude * Fp16Codec.RelativeBound, $"fp16 element {i}: {x} -> {d}, relative error {error / magnitude:E3}");
        }
        else
        {
            Assert.True(error <= Math.Pow(2, -25), $"fp16 element {i}: {x} -> {d}, absolute error {error:E3} below the normal range");
        }
    }

    public static void AssertQuantized(ChannelQuantization q, float x, float d, int i)
    {
        if (float.IsNaN(x))
        {
            Assert.Equal(0f, d);
            return;
        }

        var clipped = Math.Clamp((double)x, q.Low, q.High);
        var error = Math.Abs(d - clipped);
        // scale/2, plus the float roundings of x / scale and of the decoded product.
        var bound = (q.Scale / 2.0) + (4 * Math.Pow(2, -24) * Math.Max(Math.Abs(clipped), Math.Abs(d)));
        Assert.True(error <= bound, $"{q.Bits}-bit element {i}: {x} -> {d}, error {error:E3} above scale/2 = {q.Scale / 2:E3}");
    }
}
