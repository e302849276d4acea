using PipelineActors.Onnx.Cost;

namespace PipelineActors.Onnx.Tests.Cost;

/// <summary>One percentile definition for every room that measures: index floor(p * n) of the sorted samples.</summary>
public sealed class PercentilesSpecs
{
    [Fact]
    public void The_median_p95_and_extremes_follow_floor_of_p_times_n()
    {
        var sorted = Percentiles.Sorted([9.0, 1, 8, 2, 7, 3, 6, 4, 5, 10]);

        Assert.Equal([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10], sorted);
        Assert.Equal(6, Percentiles.At(sorted, 0.5)); // index 5
        Assert.Equal(10, Percentiles.At(sorted, 0.95)); // index 9
        Assert.Equal(1, Percentiles.At(sorted, 0));
        Assert.Equal(10, Percentiles.At(sorted, 1)); // index 10 is past the end: the last sample
    }

    [Fact]
    public void No_samples_give_zero_and_one_sample_is_every_percentile()
    {
        Assert.Equal(0, Percentiles.At([], 0.5));
        Assert.Equal(4.5, Percentiles.At([4.5], 0.99));
    }
}
