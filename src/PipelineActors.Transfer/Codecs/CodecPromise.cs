namespace PipelineActors.Transfer.Codecs;

/// <summary>What a codec promises about decoded values: bit-exact, or lossy within a stated bound.</summary>
/// <param name="Exact">True when every decoded float has the encoded float's bits.</param>
/// <param name="Bound">The error bound in words (for a lossy codec), or what "exact" covers.</param>
public sealed record CodecPromise(bool Exact, string Bound);
