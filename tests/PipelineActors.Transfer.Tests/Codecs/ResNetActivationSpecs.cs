using System.Diagnostics;
using PipelineActors.Transfer.Codecs;
using Xunit.Abstractions;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>
/// Compression ratios, codec times and reconstruction error on a real post-ReLU activation: the zoo ResNet-18 (random
/// weights) after layer3.0, [1,256,14,14], from synthetic pictures. Fidelity here is reconstruction, not accuracy.
/// </summary>
public sealed class ResNetActivationSpecs(ResNetCut cut, ITestOutputHelper output) : IClassFixture<ResNetCut>
{
    [Fact]
    public void Each_codec_meets_its_nature_on_a_real_post_relu_activation_and_the_figures_are_printed()
    {
        var activation = cut.TestActivations[0];
        var shape = cut.Cargo.Shape;
        var raw = activation.Length * 4L;
        var zeros = activation.Count(v => v == 0) / (double)activation.Length;
        output.WriteLine($"{cut.Cargo}: {raw} bytes as float32, {zeros:P1} exact zeros; calibrated on {cut.Calibration.Frames} pictures "
            + $"(statistics {cut.Calibration.ToJson().Length} bytes of JSON)");
        output.WriteLine(
            "codec | bytes | ratio vs float32 | encode ms | decode ms | worst cut rel. L2 | worst logits rel. L2 | top-1 agreement (4 pictures)");

        ITensorCodec[] codecs = [new Lz4Codec(), new Fp16Codec(), QuantizedCodec.EightBit(cut.Calibration), QuantizedCodec.FourBit(cut.Calibration)];
        var ratios = new Dictionary<string, double>();
        foreach (var codec in codecs)
        {
            var encoded = codec.Encode(activation, shape);
            var decoded = codec.Decode(encoded, DecodeLimits.For(shape)).Values;
            var encodeMs = MedianMs(() => codec.Encode(activation, shape));
            var decodeMs = MedianMs(() => codec.Decode(encoded, DecodeLimits.For(shape)));
            var agree = 0;
            double logitsError = 0, error = 0;
            foreach (var test in cut.TestActivations)
            {
                var exact = cut.Logits(test);
                var back = codec.Decode(codec.Encode(test, shape), DecodeLimits.For(shape)).Values;
                var approximate = cut.Logits(back);
                agree += ArgMax(exact) == ArgMax(approximate) ? 1 : 0;
                logitsError = Math.Max(logitsError, RelativeL2(exact, approximate));
                error = Math.Max(error, RelativeL2(test, back));
            }

            ratios[codec.Name] = (double)raw / encoded.Length;
            output.WriteLine(
                $"{codec.Name} | {encoded.Length} | {ratios[codec.Name]:F2}x | {encodeMs:F3} | {decodeMs:F3} | {error:E2} | "
                + $"{logitsError:E2} | {agree}/4");
            if (codec.Promise.Exact)
            {
                Assert.Equal(0, error);
            }

            TestTensors.AssertKeepsPromise(codec, activation, shape, decoded);
        }

        Assert.True(ratios["lz4"] > 1.0, "lz4 should pay on a tensor with exact zeros");
        Assert.True(ratios["fp16"] >= 1.99, $"fp16 ratio {ratios["fp16"]:F2}");
        Assert.True(ratios["int8"] >= 4, $"int8 ratio {ratios["int8"]:F2}");
        Assert.True(ratios["int4"] >= 8, $"int4 ratio {ratios["int4"]:F2}");
    }

    [Fact]
    public void The_default_clip_beats_no_clipping_at_four_bits_and_the_percentile_clip_at_eight()
    {
        var shape = cut.Cargo.Shape;
        var errors = new Dictionary<(int, ClipMethod), double>();
        foreach (var bits in new[] { 8, 4 })
        {
            foreach (var method in Enum.GetValues<ClipMethod>())
            {
                var codec = QuantizedCodec.Calibrated(bits, cut.Calibration, method);
                var error = cut.TestActivations.Average(a => RelativeL2(a, codec.Decode(codec.Encode(a, shape), DecodeLimits.For(shape)).Values));
                errors[(bits, method)] = error;
                output.WriteLine($"int{bits} {method}: mean activation rel. L2 error {error:E3} over {cut.TestActivations.Count} pictures");
            }
        }

        Assert.True(errors[(4, Clipping.Default)] < errors[(4, ClipMethod.MinMax)]);
        Assert.True(errors[(8, Clipping.Default)] < errors[(8, ClipMethod.Percentile)]);
    }

    private static double RelativeL2(float[] expected, float[] actual)
    {
        double diff = 0, norm = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            diff += (expected[i] - (double)actual[i]) * (expected[i] - (double)actual[i]);
            norm += expected[i] * (double)expected[i];
        }

        return norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm);
    }

    private static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());

    private static double MedianMs(Action action)
    {
        action(); // warm up the JIT
        var times = new double[21];
        for (var i = 0; i < times.Length; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            times[i] = watch.Elapsed.TotalMilliseconds;
        }

        Array.Sort(times);
        return times[times.Length / 2];
    }
}
