namespace PipelineActors.Transfer.Codecs;

/// <summary>Turns a float32 tensor of a given shape into bytes for the wire and back; codecs are immutable, so threads may share one.</summary>
public interface ITensorCodec
{
    /// <summary>The codec's name as plans and flags spell it (<c>lz4</c>, <c>fp16</c>, <c>int8</c>, <c>int4</c>).</summary>
    string Name { get; }

    /// <summary>Exact, or lossy with a bound.</summary>
    CodecPromise Promise { get; }

    /// <summary>Encodes <paramref name="values"/> (row-major, as many as the shape holds) into a self-describing buffer.</summary>
    byte[] Encode(ReadOnlySpan<float> values, ReadOnlySpan<long> shape);

    /// <summary>
    /// Decodes a buffer <see cref="Encode"/> wrote; every length and count is checked against the buffer and
    /// <paramref name="limits"/> before anything is allocated, and any fault is a <see cref="TensorCodecException"/>.
    /// </summary>
    DecodedTensor Decode(ReadOnlySpan<byte> encoded, DecodeLimits limits);
}

/// <summary>A decoded float32 tensor: its shape and row-major values.</summary>
public sealed record DecodedTensor(long[] Shape, float[] Values);
