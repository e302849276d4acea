namespace PipelineActors.Transfer.Codecs;

/// <summary>What a decoder may allocate for one tensor; checked against the header before any buffer is made.</summary>
/// <param name="MaxElements">Most elements a decoded tensor may have.</param>
/// <param name="MaxRank">Most dimensions a decoded tensor may have.</param>
public sealed record DecodeLimits(long MaxElements, int MaxRank)
{
    /// <summary>64 Mi elements (256 MiB of float32) and rank 8: far above any cut tensor of the bundled and zoo models.</summary>
    public static DecodeLimits Default { get; } = new(64L * 1024 * 1024, 8);

    /// <summary>Limits sized for one known tensor: its element count and rank exactly.</summary>
    public static DecodeLimits For(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            count = checked(count * d);
        }

        return new DecodeLimits(count, shape.Length);
    }
}
