using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;
using Xunit.Abstractions;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>The lossy codecs' bounds hold over many values: int8 and int4 within scale/2 inside the clip range, fp16 within 2^-11.</summary>
public sealed class ErrorBoundSpecs(ITestOutputHelper output)
{
    [Theory]
    [InlineData(8, ClipMethod.AciqLaplace)]
    [InlineData(8, ClipMethod.Percentile)]
    [InlineData(4, ClipMethod.AciqGauss)]
    [InlineData(4, ClipMethod.MinMax)]
    public void Quantised_values_inside_the_clip_range_are_within_half_a_scale_and_outside_it_come_back_at_its_edge(int bits, ClipMethod method)
    {
        long[] shape = [2, 8, 30, 30];
        var calibration = TestTensors.Gaussians((int)TestTensors.Count(shape), seed: 4, mean: 0.3, std: 2);
        var codec = QuantizedCodec.Calibrated(bits, TensorStatistics.Of("t", calibration, shape), method);
        // Fresh values: uniform over each channel's range, plus some beyond it on both sides.
        var random = new Random(8);
        var layout = ChannelLayout.Of(shape, 1);
        var values = new float[calibration.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var q = codec.Channels[(int)(i / layout.Inner % layout.Channels)];
            var width = q.High - q.Low;
            values[i] = (float)(q.Low + (width * ((random.NextDouble() * 1.2) - 0.1)));
        }

        var decoded = codec.Decode(codec.Encode(values, shape), DecodeLimits.Default).Values;

        TestTensors.AssertKeepsPromise(codec, values, shape, decoded);
        double worst = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var q = codec.Channels[(int)(i / layout.Inner % layout.Channels)];
            if (values[i] >= q.Low && values[i] <= q.High)
            {
                worst = Math.Max(worst, Math.Abs(decoded[i] - values[i]) / q.Scale);
            }
            else
            {
                Assert.Equal(values[i] < q.Low ? q.Low : q.High, decoded[i], q.Scale * 1e-4);
            }
        }

        output.WriteLine($"int{bits} {method}: worst error inside the clip range {worst:F6} scales (bound 0.5)");
        Assert.InRange(worst, 0.4, 0.5 + 1e-4); // uniform values reach close to the bound, and never past it
    }

    [Fact]
    public void Fp16_relative_error_stays_within_two_to_the_minus_eleven_over_the_normal_range()
    {
        var random = new Random(6);
        // Log-uniform magnitudes over the whole normal half range, both signs.
        var values = Enumerable.Range(0, 200_000)
            .Select(_ => (float)((random.Next(2) * 2 - 1) * Math.Pow(2, -14 + (random.NextDouble() * 29.99))))
            .Where(v => Math.Abs(v) <= 65504)
            .ToArray();
        var codec = new Fp16Codec();

        var decoded = codec.Decode(codec.Encode(values, [values.Length]), DecodeLimits.Default).Values;

        double worst = 0;
        for (var i = 0; i < values.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs((double)decoded[i] - values[i]) / Math.Abs(values[i]));
        }

        output.WriteLine($"fp16: worst relative error {worst:E4} over {values.Length} values (bound {Fp16Codec.RelativeBound:E4})");
        Assert.InRange(worst, Fp16Codec.RelativeBound * 0.9, Fp16Codec.RelativeBound);
    }
}
