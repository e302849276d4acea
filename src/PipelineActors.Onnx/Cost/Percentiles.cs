namespace PipelineActors.Onnx.Cost;

/// <summary>
/// Percentiles of measured samples (inference times, latencies, confirmation times), with one definition for every
/// room that measures: the sample at index floor(p * n) of the sorted samples, the last one for p = 1, 0 for none.
/// It lives in the lowest project that every measuring room references (the profiler here, stages, ingest, sink,
/// harness).
/// </summary>
public static class Percentiles
{
    /// <summary>The sample at <paramref name="fraction"/> (0..1) of <paramref name="sorted"/>, which must be in ascending order.</summary>
    public static double At(ReadOnlySpan<double> sorted, double fraction) =>
        sorted.IsEmpty ? 0 : sorted[Math.Clamp((int)(fraction * sorted.Length), 0, sorted.Length - 1)];

    /// <summary>A sorted copy of the samples.</summary>
    public static double[] Sorted(IEnumerable<double> samples)
    {
        var sorted = samples.ToArray();
        Array.Sort(sorted);
        return sorted;
    }

    /// <inheritdoc cref="Sorted(IEnumerable{double})"/>
    public static double[] Sorted(ReadOnlySpan<double> samples)
    {
        var sorted = samples.ToArray();
        Array.Sort(sorted);
        return sorted;
    }
}
