using MathNet.Numerics;
using PipelineActors.Transfer.Calibration;

namespace PipelineActors.Transfer.Codecs;

/// <summary>How a quantiser chooses each channel's clip range from its calibration statistics.</summary>
public enum ClipMethod
{
    /// <summary>ACIQ for a Laplace (two-sided) or exponential (one-sided, post-ReLU) fit: the default.</summary>
    AciqLaplace,

    /// <summary>ACIQ for a Gaussian (two-sided) or half-normal (one-sided) fit.</summary>
    AciqGauss,

    /// <summary>The 0.01th and 99.99th percentiles of the calibration histogram.</summary>
    Percentile,

    /// <summary>The calibration minimum and maximum: no clipping of anything seen in calibration.</summary>
    MinMax,
}

/// <summary>
/// Clip ranges from calibration statistics. ACIQ (Banner et al., "Post training 4-bit quantization of convolutional
/// networks for rapid deployment") picks the clip alpha that minimises the expected squared error of a fitted
/// distribution: clipping error plus the uniform quantisation noise alpha^2 / (3 * 4^M) (range 2 alpha) or
/// alpha^2 / (12 * 4^M) (one-sided range alpha). A channel whose minimum is at least 0 (a ReLU's output) is fitted
/// one-sided from 0, so that zero stays exact and the codes of zeros stay 0.
/// ACIQ-Laplace is the default, by measurement on the trained BlazeFace with real photographs (the transfer tests):
/// of the three clipping methods it gave the lowest error of the model's outputs at 8 and at 4 bits. At 8 bits it
/// clips nothing there (tying min/max); at 4 bits the percentile clip has a lower error at the cut but a higher one at
/// the outputs (the tail values it clips matter downstream), and plain min/max was lower still at the outputs.
/// </summary>
public static class Clipping
{
    /// <summary>The clip method used where none is named.</summary>
    public const ClipMethod Default = ClipMethod.AciqLaplace;

    /// <summary>The upper percentile <see cref="ClipMethod.Percentile"/> uses (the lower one is 100 minus it).</summary>
    public const double UpperPercentile = 99.99;

    /// <summary>The clip range [low, high] of one channel for <paramref name="bits"/>-bit codes.</summary>
    public static (double Low, double High) Range(ChannelStatistics s, int bits, ClipMethod method)
    {
        if (s.Count == 0)
        {
            return (0, 0);
        }

        var oneSided = s.Min >= 0;
        switch (method)
        {
            case ClipMethod.MinMax:
                return (s.Min, s.Max);
            case ClipMethod.Percentile:
                return (oneSided ? s.Min : s.Percentile(100 - UpperPercentile), s.Percentile(UpperPercentile));
            case ClipMethod.AciqLaplace:
            case ClipMethod.AciqGauss:
                var laplace = method == ClipMethod.AciqLaplace;
                if (oneSided)
                {
                    // Exponential fit: its scale is the mean of the positives; half-normal: sqrt of their mean square.
                    var positives = s.Count - s.ZeroCount;
                    var scale = laplace
                        ? s.MeanOfPositives
                        : positives == 0 ? 0 : Math.Sqrt(((s.M2 / s.Count) + (s.Mean * s.Mean)) * s.Count / positives);
                    return (s.Min, Math.Min(s.Max, Math.Max(s.Min, AlphaOverScale(bits, laplace, oneSided: true) * scale)));
                }

                var spread = laplace ? s.MeanAbsoluteDeviation : s.StandardDeviation;
                var alpha = AlphaOverScale(bits, laplace, oneSided: false) * spread;
                return (Math.Max(s.Min, s.Mean - alpha), Math.Min(s.Max, s.Mean + alpha));
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown clip method.");
        }
    }

    /// <summary>The optimal clip alpha in units of the fit's scale (Laplace b or Gaussian sigma) for M-bit codes.</summary>
    public static double AlphaOverScale(int bits, bool laplace, bool oneSided)
    {
        var levels = Math.Pow(4, bits);
        var noise = oneSided ? 12 * levels : 3 * levels;
        // Clipping error of both tails (two-sided) or the one tail with twice the density (one-sided): the same formula.
        Func<double, double> clip = laplace
            ? k => 2 * Math.Exp(-k)
            : k => 2 * (((1 + (k * k)) * 0.5 * SpecialFunctions.Erfc(k / Math.Sqrt(2))) - (k * Math.Exp(-k * k / 2) / Math.Sqrt(2 * Math.PI)));
        return GoldenSection(k => clip(k) + (k * k / noise), 0, 64);
    }

    private static double GoldenSection(Func<double, double> f, double a, double b)
    {
        var ratio = (Math.Sqrt(5) - 1) / 2;
        var c = b - (ratio * (b - a));
        var d = a + (ratio * (b - a));
        while (b - a > 1e-9)
        {
            if (f(c) < f(d))
            {
                b = d;
            }
            else
            {
                a = c;
            }

            c = b - (ratio * (b - a));
            d = a + (ratio * (b - a));
        }

        return (a + b) / 2;
    }
}
