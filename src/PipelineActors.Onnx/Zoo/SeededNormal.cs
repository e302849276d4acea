using System.Runtime.InteropServices;

namespace PipelineActors.Onnx.Zoo;

/// <summary>Deterministic normal random numbers for zoo weights, one independent stream per tensor.</summary>
/// <remarks>
/// SplitMix64 plus Box-Muller rather than <see cref="Random"/>: it is several times faster for the
/// 138M weights of VGG-16, and its output is fixed by this code, not by a runtime version.
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
        var i = 0;
        for (; i + 1 < values.Length; i += 2)
        {
            var (a, b) = NextPair(ref state);
            values[i] = mean + (std * a);
            values[i + 1] = mean + (std * b);
        }

        if (i < values.Length)
        {
            values[i] = mean + (std * NextPair(ref state).A);
        }

        return bytes;
    }

    private static (float A, float B) NextPair(ref ulong state)
    {
        var bits = SplitMix64(ref state);
        // Upper 24 bits give u1 in (0, 1] so Log never sees zero; lower 24 bits give u2 in [0, 1).
        var u1 = ((bits >> 40) + 1) * (1f / (1 << 24));
        var u2 = (bits & 0xFFFFFF) * (1f / (1 << 24));
        var radius = MathF.Sqrt(-2f * MathF.Log(u1));
        var (sin, cos) = MathF.SinCos(2f * MathF.PI * u2);
        return (radius * cos, radius * sin);
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
