using System.Runtime.InteropServices;

namespace PipelineActors.Transfer.Codecs;

/// <summary>
/// <c>lz4</c> (or <c>zstd</c>): the float32 bits themselves through the lossless stage. Exact to the bit (-0.0, NaN
/// payloads, denormals and infinities come back as they went), and smaller only where the bytes repeat (zeros after a
/// ReLU). Both write codec id 1; the lossless block's flag says which compressor was used, so one decoder reads both.
/// </summary>
public sealed class Lz4Codec(LosslessMethod method = LosslessMethod.Lz4) : ITensorCodec
{
    public string Name => method == LosslessMethod.Zstd ? "zstd" : "lz4";

    public CodecPromise Promise { get; } =
        new(true, "exact: every float comes back with its bits (including -0.0, NaN payloads, denormals, infinities)");

    public byte[] Encode(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        CodecHeader.CheckShape(shape, values.Length);
        var block = LosslessStage.Encode(MemoryMarshal.AsBytes(values), sizeof(float), method);
        return Assemble(CodecId.Lz4, shape, [], block);
    }

    public DecodedTensor Decode(ReadOnlySpan<byte> encoded, DecodeLimits limits)
    {
        var (shape, count, offset) = CodecHeader.Read(encoded, CodecId.Lz4, Name, limits);
        LosslessStage.CheckPlausible(encoded[offset..], count * sizeof(float), sizeof(float), $"{Name} tensor");
        var values = new float[count];
        LosslessStage.Decode(encoded[offset..], MemoryMarshal.AsBytes(values.AsSpan()), sizeof(float), $"{Name} tensor");
        return new DecodedTensor(shape, values);
    }

    /// <summary>Header, then the codec's parameters, then the lossless block: every codec's buffer is laid out so.</summary>
    internal static byte[] Assemble(CodecId id, ReadOnlySpan<long> shape, ReadOnlySpan<byte> parameters, ReadOnlySpan<byte> block)
    {
        var headerSize = CodecHeader.Size(shape.Length);
        var buffer = new byte[headerSize + parameters.Length + block.Length];
        CodecHeader.Write(buffer, id, shape);
        parameters.CopyTo(buffer.AsSpan(headerSize));
        block.CopyTo(buffer.AsSpan(headerSize + parameters.Length));
        return buffer;
    }
}
