using System.Text.Json.Serialization;

namespace PipelineActors.Transfer.Calibration;

/// <summary>
/// Statistics of one channel over calibration activations. Every field merges exactly across frames: counts add,
/// mean and M2 combine by Chan's parallel formula, and the histogram's bins are fixed in advance (log-spaced in |x|,
/// each 2 % wide, like DDSketch), so bins of two frames add one to one. Values of magnitude below 1e-12 (zeros and
/// denormals) share one bin; NaN and infinities are counted apart and left out of the moments.
/// </summary>
public sealed class ChannelStatistics
{
    /// <summary>Ratio of a bin's upper to lower edge; quantiles read off the histogram are within 1 % of a true value.</summary>
    public const double BinGrowth = 1.02;

    /// <summary>Magnitudes below this land in the near-zero bin.</summary>
    public const double NearZero = 1e-12;

    private static readonly double LogGrowth = Math.Log(BinGrowth);

    /// <summary>Finite values seen.</summary>
    public long Count { get; set; }

    public long NanCount { get; set; }

    public long PositiveInfinityCount { get; set; }

    public long NegativeInfinityCount { get; set; }

    /// <summary>Values whose float bits are exactly zero (+0.0 or -0.0).</summary>
    public long ZeroCount { get; set; }

    /// <summary>Smallest finite value (0 while <see cref="Count"/> is 0).</summary>
    public double Min { get; set; }

    /// <summary>Largest finite value (0 while <see cref="Count"/> is 0).</summary>
    public double Max { get; set; }

    public double Mean { get; set; }

    /// <summary>Sum of squared deviations from the mean (Welford's M2).</summary>
    public double M2 { get; set; }

    /// <summary>Sum of |x| over finite values; with the sums above it gives exact one-sided moments.</summary>
    public double SumAbs { get; set; }

    /// <summary>Finite values with |x| below <see cref="NearZero"/> (including the exact zeros).</summary>
    public long NearZeroCount { get; set; }

    /// <summary>Bin index to count for positive values: bin i holds (g^(i-1), g^i] with g = <see cref="BinGrowth"/>.</summary>
    public Dictionary<int, long> PositiveBins { get; set; } = [];

    /// <summary>Bin index to count for negative values, by magnitude as for <see cref="PositiveBins"/>.</summary>
    public Dictionary<int, long> NegativeBins { get; set; } = [];

    [JsonIgnore]
    public double Variance => Count > 1 ? M2 / Count : 0;

    [JsonIgnore]
    public double StandardDeviation => Math.Sqrt(Variance);

    /// <summary>Share of finite values that are exactly zero.</summary>
    [JsonIgnore]
    public double ZeroFraction => Count == 0 ? 0 : (double)ZeroCount / Count;

    /// <summary>Mean of the positive values, exact (zeros add nothing to the sum); 0 when there are none.</summary>
    [JsonIgnore]
    public double MeanOfPositives => Min >= 0 && Count > ZeroCount ? Mean * Count / (Count - ZeroCount) : 0;

    /// <summary>Mean |x - mean|, read off the histogram (each value taken at its bin's centre, so within about 1 % of |x|).</summary>
    [JsonIgnore]
    public double MeanAbsoluteDeviation
    {
        get
        {
            if (Count == 0)
            {
                return 0;
            }

            var sum = NearZeroCount * Math.Abs(Mean);
            foreach (var (index, count) in PositiveBins)
            {
                sum += count * Math.Abs(Clamp(BinValue(index)) - Mean);
            }

            foreach (var (index, count) in NegativeBins)
            {
                sum += count * Math.Abs(Clamp(-BinValue(index)) - Mean);
            }

            return sum / Count;
        }
    }

    /// <summary>Adds a run of values (one channel's values for one row of a tensor).</summary>
    public void Add(ReadOnlySpan<float> values)
    {
        long n = 0;
        double sum = 0, sumAbs = 0, min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                if (float.IsNaN(v))
                {
                    NanCount++;
                }
                else if (v > 0)
                {
                    PositiveInfinityCount++;
                }
                else
                {
                    NegativeInfinityCount++;
                }

                continue;
            }

            n++;
            sum += v;
            sumAbs += Math.Abs(v);
            min = Math.Min(min, v);
            max = Math.Max(max, v);
            AddToHistogram(v);
        }

        if (n == 0)
        {
            return;
        }

        // Two passes over the run (mean, then squared deviations) keep M2 accurate; Chan's formula merges the run in.
        var mean = sum / n;
        double m2 = 0;
        foreach (var v in values)
        {
            if (float.IsFinite(v))
            {
                var d = v - mean;
                m2 += d * d;
            }
        }

        Merge(n, mean, m2, min, max);
        SumAbs += sumAbs;
    }

    /// <summary>Adds <paramref name="other"/>'s values to these, as if both runs had been added here.</summary>
    public void Merge(ChannelStatistics other)
    {
        NanCount += other.NanCount;
        PositiveInfinityCount += other.PositiveInfinityCount;
        NegativeInfinityCount += other.NegativeInfinityCount;
        ZeroCount += other.ZeroCount;
        NearZeroCount += other.NearZeroCount;
        SumAbs += other.SumAbs;
        foreach (var (index, count) in other.PositiveBins)
        {
            PositiveBins[index] = PositiveBins.GetValueOrDefault(index) + count;
        }

        foreach (var (index, count) in other.NegativeBins)
        {
            NegativeBins[index] = NegativeBins.GetValueOrDefault(index) + count;
        }

        if (other.Count > 0)
        {
            Merge(other.Count, other.Mean, other.M2, other.Min, other.Max);
        }
    }

    /// <summary>
    /// The value below which <paramref name="percent"/> % of the finite values lie, read off the histogram: within about
    /// 1 % of a true order statistic's magnitude, and clamped to [<see cref="Min"/>, <see cref="Max"/>].
    /// </summary>
    public double Percentile(double percent)
    {
        if (percent is < 0 or > 100 || double.IsNaN(percent))
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "A percentile lies in 0..100.");
        }

        if (Count == 0)
        {
            return 0;
        }

        // The rank of the order statistic (0-based); walk from the most negative value up.
        var rank = (long)Math.Floor(percent / 100 * (Count - 1));
        long seen = 0;
        foreach (var (index, count) in NegativeBins.OrderByDescending(b => b.Key))
        {
            seen += count;
            if (seen > rank)
            {
                return Clamp(-BinValue(index));
            }
        }

        seen += NearZeroCount;
        if (seen > rank)
        {
            return Clamp(0);
        }

        foreach (var (index, count) in PositiveBins.OrderBy(b => b.Key))
        {
            seen += count;
            if (seen > rank)
            {
                return Clamp(BinValue(index));
            }
        }

        return Max;
    }

    /// <summary>The value that represents bin <paramref name="index"/>: the point whose relative distance to both edges is equal.</summary>
    internal static double BinValue(int index) => 2 * Math.Pow(BinGrowth, index) / (BinGrowth + 1);

    internal static int BinIndex(double magnitude) => (int)Math.Ceiling(Math.Log(magnitude) / LogGrowth);

    private double Clamp(double v) => Math.Clamp(v, Min, Max);

    private void AddToHistogram(float v)
    {
        if (BitConverter.SingleToUInt32Bits(v) << 1 == 0)
        {
            ZeroCount++;
        }

        var magnitude = Math.Abs((double)v);
        if (magnitude < NearZero)
        {
            NearZeroCount++;
            return;
        }

        var bins = v > 0 ? PositiveBins : NegativeBins;
        var index = BinIndex(magnitude);
        bins[index] = bins.GetValueOrDefault(index) + 1;
    }

    private void Merge(long n, double mean, double m2, double min, double max)
    {
        if (Count == 0)
        {
            Min = min;
            Max = max;
        }
        else
        {
            Min = Math.Min(Min, min);
            Max = Math.Max(Max, max);
        }

        var total = Count + n;
        var delta = mean - Mean;
        Mean += delta * n / total;
        M2 += m2 + (delta * delta * Count * n / total);
        Count = total;
    }
}
