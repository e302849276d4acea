using System.Runtime.InteropServices;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Transfer.Codecs;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Link;

/// <summary>A frame's coded cut tensor that cannot be read: of another codec, corrupt, too large, or not coded at all.</summary>
public sealed class CutCodingException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// One stage's end of its coded cuts, as its <see cref="StageSpec"/> says: the cut tensors it sends on are replaced by
/// the transfer layer's encoded buffers (a uint8 tensor of the same name, shaped [bytes]), and the coded ones it reads
/// are decoded back to float32 before inference; the source's pictures that crossed the first hop as JPEG (a
/// <c>jpeg:Q</c> entry in <see cref="StageSpec.Decodes"/>, encoded by the ingest) are decoded back to uint8 pixels. A stage
/// encodes whether its successor is local or remote, so what a stage computes never depends on where the plan put its
/// neighbours. Tensors it only forwards stay as they arrived.
/// </summary>
public sealed class CutCoding
{
    private readonly Dictionary<string, ITensorCodec> _encoders;
    private readonly Dictionary<string, (ITensorCodec Codec, string Name)> _decoders;
    private readonly Dictionary<string, string> _pictures;
    private readonly Func<string, DecodeLimits> _limits;

    private CutCoding(
        Dictionary<string, ITensorCodec> encoders,
        Dictionary<string, (ITensorCodec, string)> decoders,
        Dictionary<string, string> pictures,
        Func<string, DecodeLimits> limits)
    {
        _encoders = encoders;
        _decoders = decoders;
        _pictures = pictures;
        _limits = limits;
    }

    /// <summary>
    /// The coding <paramref name="spec"/> asks for, or null for the exact wire; <paramref name="limits"/> gives, per input,
    /// what a decoder may allocate (the stage's declared shape, where it has one).
    /// </summary>
    public static CutCoding? For(StageSpec spec, Func<string, DecodeLimits>? limits = null)
    {
        return (spec.Encodes?.Count ?? 0) == 0 && (spec.Decodes?.Count ?? 0) == 0 ? null : Of(spec.Encodes ?? [], spec.Decodes ?? [], limits);
    }

    /// <summary>A coding that encodes the cut tensors <paramref name="codes"/> name, as their stage would: a codec measured outside a
    /// stage.</summary>
    public static CutCoding Encoding(IReadOnlyList<CutCodec> codes) => Of(codes, [], null);

    /// <summary>A coding that decodes what <see cref="Encoding"/> of the same <paramref name="codes"/> encodes.</summary>
    public static CutCoding Decoding(IReadOnlyList<CutCodec> codes) => Of([], [.. codes.Select(c => c.ForDecoding())], null);

    private static CutCoding Of(IReadOnlyList<CutCodec> encodes, IReadOnlyList<CutCodec> decodes, Func<string, DecodeLimits>? limits)
    {
        var encoders = encodes.ToDictionary(
            c => c.Tensor,
            c => TensorCodecs.WithQuantizers(
                c.Codec, c.ChannelAxis, [.. c.Scales.Select((scale, i) => new ChannelQuantization(scale, c.ZeroPoints[i], 8))]),
            StringComparer.Ordinal);
        var pictures = decodes.Where(c => JpegCodec.Names(c.Codec)).ToDictionary(c => c.Tensor, c => c.Codec, StringComparer.Ordinal);
        var decoders = decodes.Where(c => !JpegCodec.Names(c.Codec))
            .ToDictionary(c => c.Tensor, c => (TensorCodecs.Decoder(c.Codec), c.Codec), StringComparer.Ordinal);
        return new CutCoding(encoders, decoders, pictures, limits ?? (_ => DecodeLimits.Default));
    }

    /// <summary>The frame's tensors with every coded cut tensor decoded to float32; anything unreadable is a <see
    /// cref="CutCodingException"/>.</summary>
    public IReadOnlyList<HostTensor> Decode(IReadOnlyList<HostTensor> tensors)
    {
        var decoded = new List<HostTensor>(tensors.Count);
        foreach (var tensor in tensors)
        {
            if (_pictures.TryGetValue(tensor.Name, out var jpeg))
            {
                decoded.Add(DecodePicture(tensor, jpeg));
                continue;
            }

            if (!_decoders.TryGetValue(tensor.Name, out var decoder))
            {
                decoded.Add(tensor);
                continue;
            }

            if (tensor.ElementType != TensorProto.Types.DataType.Uint8 || tensor.Shape.Length != 1 || tensor.Shape[0] != tensor.Data.Length)
            {
                throw new CutCodingException(
                    $"Tensor '{tensor.Name}' arrived as {tensor.ElementType} [{string.Join(",", tensor.Shape)}], not encoded with {decoder.Name} "
                    + "as the plan says: the sending stage runs another plan.");
            }

            try
            {
                var values = decoder.Codec.Decode(tensor.Data, _limits(tensor.Name));
                decoded.Add(new HostTensor(tensor.Name, TensorProto.Types.DataType.Float, values.Shape,
                    MemoryMarshal.AsBytes(values.Values.AsSpan()).ToArray()));
            }
            catch (TensorCodecException e)
            {
                throw new CutCodingException($"Tensor '{tensor.Name}' does not decode as {decoder.Name}: {e.Message}", e);
            }
        }

        return decoded;
    }

    private HostTensor DecodePicture(HostTensor tensor, string codec)
    {
        if (tensor.ElementType != TensorProto.Types.DataType.Uint8 || tensor.Shape.Length != 1 || tensor.Shape[0] != tensor.Data.Length)
        {
            throw new CutCodingException(
                $"Tensor '{tensor.Name}' arrived as {tensor.ElementType} [{string.Join(",", tensor.Shape)}], "
                + $"not as the {codec} the plan's first hop says: "
                + "the ingest runs another plan.");
        }

        try
        {
            var pixels = JpegCodec.Decode(tensor.Data, _limits(tensor.Name));
            return new HostTensor(tensor.Name, TensorProto.Types.DataType.Uint8, pixels.Shape, pixels.Values);
        }
        catch (TensorCodecException e)
        {
            throw new CutCodingException($"Tensor '{tensor.Name}' does not decode as {codec}: {e.Message}", e);
        }
    }

    /// <summary>The stage's outputs with every coded cut tensor replaced by its encoded buffer.</summary>
    public IReadOnlyList<HostTensor> Encode(IReadOnlyList<HostTensor> tensors)
    {
        if (_encoders.Count == 0)
        {
            return tensors;
        }

        var encoded = new List<HostTensor>(tensors.Count);
        foreach (var tensor in tensors)
        {
            if (!_encoders.TryGetValue(tensor.Name, out var codec) || tensor.ElementType != TensorProto.Types.DataType.Float)
            {
                encoded.Add(tensor);
                continue;
            }

            var bytes = codec.Encode(MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan()), tensor.Shape);
            encoded.Add(new HostTensor(tensor.Name, TensorProto.Types.DataType.Uint8, [bytes.Length], bytes));
        }

        return encoded;
    }
}
