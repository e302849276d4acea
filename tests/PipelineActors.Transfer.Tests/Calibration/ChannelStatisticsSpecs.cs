using PipelineActors.Onnx;
using PipelineActors.Transfer.Calibration;

namespace PipelineActors.Transfer.Tests.Calibration;

/// <summary>Per-channel calibration statistics: right on known data, exactly mergeable across frames, and round-tripped through JSON.</summary>
public sealed class ChannelStatisticsSpecs
{
    [Fact]
    public void Moments_extremes_and_the_zero_fraction_match_a_direct_computation_per_channel()
    {
        long[] shape = [2, 3, 40, 40];
        var values = TestTensors.PostRelu(shape, seed: 12, zeroShare: 0.3);
        values[5] = float.NaN;
        values[6] = float.PositiveInfinity;

        var statistics = TensorStatistics.Of("t", values, shape);

        Assert.Equal(3, statistics.Channels.Length);
        for (var c = 0; c < 3; c++)
        {
            var mine = ChannelValues(values, shape, c);
            var finite = mine.Where(float.IsFinite).Select(v => (double)v).ToArray();
            var s = statistics.Channels[c];
            var mean = finite.Average();
            Assert.Equal(finite.Length, s.Count);
            Assert.Equal(mean, s.Mean, 1e-9);
            Assert.Equal(Math.Sqrt(finite.Average(v => (v - mean) * (v - mean))), s.StandardDeviation, 1e-9);
            Assert.Equal(finite.Min(), s.Min);
            Assert.Equal(finite.Max(), s.Max);
            Assert.Equal(finite.Count(v => v == 0) / (double)finite.Length, s.ZeroFraction, 12);
            Assert.Equal(finite.Average(v => Math.Abs(v - mean)), s.MeanAbsoluteDeviation, finite.Average(v => Math.Abs(v - mean)) * 0.01);
            Assert.Equal(c == 0 ? 1 : 0, s.NanCount);
            Assert.Equal(c == 0 ? 1 : 0, s.PositiveInfinityCount);
        }
    }

    [Theory]
    [InlineData(50.0)]
    [InlineData(99.0)]
    [InlineData(99.9)]
    [InlineData(0.1)]
    public void A_percentile_from_the_histogram_is_within_one_percent_of_the_true_order_statistic(double percent)
    {
        var values = TestTensors.Gaussians(100_000, seed: 3, mean: 1, std: 3);
        var statistics = TensorStatistics.Of("t", values, [values.Length]);
        var sorted = values.Select(v => (double)v).Order().ToArray();
        var exact = sorted[(int)Math.Floor(percent / 100 * (sorted.Length - 1))];

        var estimate = statistics.Channels[0].Percentile(percent);

        Assert.True(Math.Abs(estimate - exact) <= Math.Abs(exact) * 0.0101, $"p{percent}: {estimate} against {exact}");
    }

    [Fact]
    public void Statistics_merged_frame_by_frame_equal_those_of_all_frames_at_once()
    {
        long[] frame = [1, 4, 16, 16];
        var frames = Enumerable.Range(0, 5).Select(i => TestTensors.PostRelu(frame, seed: 40 + i)).ToArray();
        var merged = TensorStatistics.Of("t", frames[0], frame);
        for (var i = 1; i < frames.Length; i++)
        {
            merged.Merge(TensorStatistics.Of("t", frames[i], frame));
        }

        long[] all = [5, 4, 16, 16];
        var whole = TensorStatistics.Of("t", frames.SelectMany(f => f).ToArray(), all);

        Assert.Equal(5, merged.Frames);
        for (var c = 0; c < 4; c++)
        {
            var (a, b) = (merged.Channels[c], whole.Channels[c]);
            Assert.Equal(b.Count, a.Count);
            Assert.Equal(b.ZeroCount, a.ZeroCount);
            Assert.Equal(b.Min, a.Min);
            Assert.Equal(b.Max, a.Max);
            Assert.Equal(b.Mean, a.Mean, 1e-12);
            Assert.Equal(b.M2, a.M2, b.M2 * 1e-12);
            Assert.Equal(b.PositiveBins.OrderBy(p => p.Key), a.PositiveBins.OrderBy(p => p.Key));
            Assert.Equal(b.Percentile(99.99), a.Percentile(99.99));
        }
    }

    [Fact]
    public void Statistics_survive_a_json_round_trip_and_broken_json_is_a_clear_input_error()
    {
        long[] shape = [1, 3, 10, 10];
        var values = TestTensors.Gaussians(300, seed: 2);
        var statistics = TensorStatistics.Of("layer3.0.relu2.output", values, shape);

        var json = statistics.ToJson();
        var back = TensorStatistics.FromJson(json, "stats.json");

        Assert.Equal(json, back.ToJson());
        Assert.Equal(statistics.Channels[2].Percentile(90), back.Channels[2].Percentile(90));
        var broken = Assert.Throws<PipelineInputException>(() => TensorStatistics.FromJson(json[..(json.Length / 2)], "stats.json"));
        Assert.Contains("'stats.json' does not hold calibration statistics", broken.Message);
        Assert.Throws<PipelineInputException>(() => TensorStatistics.FromJson("{\"name\":\"x\",\"channelAxis\":1,\"channels\":[]}", "stats.json"));
    }

    [Fact]
    public void A_frame_with_another_channel_count_is_refused()
    {
        var statistics = new TensorStatistics("t", 1, 4);
        Assert.Throws<ArgumentException>(() => statistics.Add(new float[12], [1, 3, 4]));
        Assert.Throws<ArgumentException>(() => statistics.Merge(new TensorStatistics("t", 1, 3)));
    }

    private static float[] ChannelValues(float[] values, long[] shape, int channel)
    {
        var layout = ChannelLayout.Of(shape, 1);
        return values.Where((_, i) => i / layout.Inner % layout.Channels == channel).ToArray();
    }
}
