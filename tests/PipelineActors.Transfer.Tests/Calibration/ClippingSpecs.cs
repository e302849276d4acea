using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Tests.Calibration;

/// <summary>Clip ranges from statistics: ACIQ's optimal alphas, one-sided channels clipped from zero, percentiles from the histogram.</summary>
public sealed class ClippingSpecs
{
    // Banner, Nahshan and Soudry (ACIQ), optimal clipping values alpha / scale for M-bit quantisation.
    [Theory]
    [InlineData(2, true, 2.83)]
    [InlineData(3, true, 3.89)]
    [InlineData(4, true, 5.03)]
    [InlineData(8, true, 9.89)]
    [InlineData(2, false, 1.71)]
    [InlineData(3, false, 2.15)]
    [InlineData(4, false, 2.55)]
    [InlineData(8, false, 3.92)]
    public void The_two_sided_aciq_alpha_matches_the_published_table(int bits, bool laplace, double published)
    {
        Assert.Equal(published, Clipping.AlphaOverScale(bits, laplace, oneSided: false), 0.02);
    }

    [Fact]
    public void A_one_sided_channel_clips_from_zero_with_a_wider_alpha_than_a_two_sided_one_and_tighter_with_fewer_bits()
    {
        // Post-ReLU-like: half exact zeros, the rest exponential (the one-sided Laplace fit's own family).
        var random = new Random(7);
        var values = Enumerable.Range(0, 10_000).Select(_ => random.Next(2) == 0 ? 0f : (float)(-Math.Log(1 - random.NextDouble()) * 0.7)).ToArray();
        var s = TensorStatistics.Of("t", values, [1, 1, 100, 100]).Channels[0];

        var (low8, high8) = Clipping.Range(s, 8, ClipMethod.AciqLaplace);
        var (low4, high4) = Clipping.Range(s, 4, ClipMethod.AciqLaplace);

        Assert.Equal(0, low8);
        Assert.Equal(0, low4);
        Assert.True(high4 < high8 && high8 <= s.Max, $"4-bit clip {high4}, 8-bit clip {high8}, max {s.Max}");
        Assert.True(Clipping.AlphaOverScale(4, true, oneSided: true) > Clipping.AlphaOverScale(4, true, oneSided: false));
        Assert.Equal(s.MeanOfPositives * Clipping.AlphaOverScale(4, true, oneSided: true), high4, 1e-9);
    }

    [Fact]
    public void A_percentile_clip_reads_the_histogram_and_a_min_max_clip_keeps_everything_seen()
    {
        var values = TestTensors.Gaussians(50_000, seed: 1, mean: 0, std: 1);
        var s = TensorStatistics.Of("t", values, [values.Length]).Channels[0];

        Assert.Equal((s.Percentile(0.01), s.Percentile(99.99)), Clipping.Range(s, 8, ClipMethod.Percentile));
        Assert.Equal((s.Min, s.Max), Clipping.Range(s, 8, ClipMethod.MinMax));
        var (low, high) = Clipping.Range(s, 4, ClipMethod.AciqGauss);
        Assert.Equal(-2.55, low, 0.1);
        Assert.Equal(2.55, high, 0.1);
    }
}
