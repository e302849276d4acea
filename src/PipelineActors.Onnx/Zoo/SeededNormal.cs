using System.Runtime.InteropServices;

namespace PipelineActors.Onnx.Zoo;

/// <summary>Deterministic normal random numbers for zoo weights, one independent stream per tensor.</summary>
/// <remarks>
/// SplitMix64 plus Box-Muller rather than <see cref="Random"/>, which is several times slower for the
/// 138M weights of VGG-16. Log, sine and cosine are short series in plain double arithmetic, not
/// Math calls, which are both slower and free to differ in the last bit between CPUs and runtimes:
/// as the JIT does not fuse multiply-adds, a seed gives the same bytes on every machine.
/// Each tensor's stream is keyed by the model seed and the tensor's name, so a tensor's values do
/// not depend on the order in which the model is built.
/// </remarks>
internal static class SeededNormal
{
    /// <summary>Fills a new little-endian float32 buffer with N(mean, std^2) samples.</summary>
    public static byte[] Fill(int seed, string tensorName, int count, float mean, float std)
    {
        if (!BitConverter.IsLittleEndian)
        {
            // ONNX raw_data is little-endian; writing it through a float span is only right on such hosts.
            throw new PlatformNotSupportedException("The model zoo writes weights through a float view and needs a little-endian machine.");
        }

        var bytes = new byte[checked(count * sizeof(float))];
        var values = MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
        var state = StreamKey(seed, tensorName);
        for (var i = 0; i < values.Length; i += 2)
        {
            var bits = SplitMix64(ref state);
            // Box-Muller. Upper 26 bits give u1 in (0, 1] so Log never sees zero; lower 26 give u2 in [0, 1).
            var u1 = ((bits >> 38) + 1) * (1.0 / (1 << 26));
            var u2 = (bits & 0x3FFFFFF) * (1.0 / (1 << 26));
            var radius = std * Math.Sqrt(-2.0 * Log(u1));
            var (sin, cos) = SinCosOfTurn(u2);
            values[i] = (float)(mean + (radius * cos));
            if (i + 1 < values.Length)
            {
                values[i + 1] = (float)(mean + (radius * sin));
            }
        }

        return bytes;
    }

    /// <summary>Natural log for x in (0, 1] from + - * / only, accurate to about 1e-12 relative.</summary>
    private static double Log(double x)
    {
        // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 artanh(s), s = (m - 1) / (m + 1), |s| < 0.172.
        var exponent = (int)((BitConverter.DoubleToInt64Bits(x) >> 52) & 0x7FF) - 1023;
        var m = BitConverter.Int64BitsToDouble((BitConverter.DoubleToInt64Bits(x) & 0x000FFFFFFFFFFFFFL) | 0x3FF0000000000000L);
        if (m > 1.4142135623730951)
        {
            m *= 0.5;
            exponent++;
        }

        var s = (m - 1.0) / (m + 1.0);
        var s2 = s * s;
        var series = 1.0 + (s2 * ((1.0 / 3)
            + (s2 * ((1.0 / 5) + (s2 * ((1.0 / 7) + (s2 * ((1.0 / 9) + (s2 * ((1.0 / 11) + (s2 * (1.0 / 13))))))))))));
        return (exponent * 0.6931471805599453) + (2.0 * s * series);
    }

    /// <summary>Sine and cosine of the angle 2 pi t for t in [0, 1), from + - * only, accurate to about 1e-9.</summary>
    private static (double Sin, double Cos) SinCosOfTurn(double t)
    {
        // Split the turn into quadrants; in each, x lies in [0, pi/2) where short Taylor series suffice.
        var quarters = t * 4.0;
        var quadrant = (int)quarters;
        var x = (quarters - quadrant) * (Math.PI / 2);
        var x2 = x * x;
        // Taylor series in Horner form, sin to x^13 and cos to x^14: truncation below 1e-9 on [0, pi/2).
        var sin = (x2 * (1.0 / 6227020800)) - (1.0 / 39916800);
        sin = (x2 * sin) + (1.0 / 362880);
        sin = (x2 * sin) - (1.0 / 5040);
        sin = (x2 * sin) + (1.0 / 120);
        sin = (x2 * sin) - (1.0 / 6);
        sin = x + (x * x2 * sin);
        var cos = (x2 * (-1.0 / 87178291200)) + (1.0 / 479001600);
        cos = (x2 * cos) - (1.0 / 3628800);
        cos = (x2 * cos) + (1.0 / 40320);
        cos = (x2 * cos) - (1.0 / 720);
        cos = (x2 * cos) + (1.0 / 24);
        cos = (x2 * cos) - 0.5;
        cos = 1.0 + (x2 * cos);
        return quadrant switch
        {
            0 => (sin, cos),
            1 => (cos, -sin),
            2 => (-sin, -cos),
            _ => (-cos, sin),
        };
    }

    private static ulong StreamKey(int seed, string tensorName)
    {
        // FNV-1a over the name: stable across processes, unlike string.GetHashCode.
        var hash = 14695981039346656037UL;
        foreach (var c in tensorName)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        var state = hash ^ ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL);
        return SplitMix64(ref state);
    }

    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
