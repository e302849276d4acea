using PipelineActors.Protocol;
using PipelineActors.Transfer.Codecs;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Link;

/// <summary>
/// The ingest's end of the first hop: the source tensors some stage of the job's plans decodes from JPEG (a <c>jpeg:Q</c>
/// entry in its <see cref="StageSpec.Decodes"/>) are encoded once, when the frame is admitted, so a re-sent or replayed
/// frame carries the same bytes. Every split of a job carries the same first hop, so any plan the supervisor picks reads them.
/// </summary>
public sealed class FirstHopEncoding
{
    private readonly Dictionary<string, (JpegCodec Codec, int ChannelAxis)> _encoders;

    private FirstHopEncoding(Dictionary<string, (JpegCodec, int)> encoders) => _encoders = encoders;

    /// <summary>The codec's name per encoded tensor, as the plan spells it (<c>jpeg:90</c>).</summary>
    public string Text => string.Join(",", _encoders.Values.Select(e => e.Codec.Name).Distinct());

    /// <summary>The tensors it encodes, in quotes, comma separated (for the ingest's log).</summary>
    public string Tensors => string.Join(", ", _encoders.Keys.Select(name => $"'{name}'"));

    /// <summary>The encoding the job's splits ask of the ingest, or null when the first hop carries raw pixels.</summary>
    public static FirstHopEncoding? For(IEnumerable<SplitPlan> splits)
    {
        var encoders = new Dictionary<string, (JpegCodec, int)>(StringComparer.Ordinal);
        foreach (var decode in splits.SelectMany(s => s.Stages).SelectMany(s => s.Decodes ?? []).Where(c => JpegCodec.Names(c.Codec)))
        {
            encoders.TryAdd(decode.Tensor, (JpegCodec.Parse(decode.Codec), decode.ChannelAxis));
        }

        return encoders.Count == 0 ? null : new FirstHopEncoding(encoders);
    }

    /// <summary>
    /// The source's tensors with each one the plan decodes from JPEG encoded (a uint8 tensor of the same name, shaped
    /// [bytes]); the others as they came. A tensor that is no picture the codec takes is an <see cref="ArgumentException"/>.
    /// </summary>
    public IReadOnlyList<HostTensor> Encode(IReadOnlyList<HostTensor> tensors)
    {
        var encoded = new List<HostTensor>(tensors.Count);
        foreach (var tensor in tensors)
        {
            if (!_encoders.TryGetValue(tensor.Name, out var encoder))
            {
                encoded.Add(tensor);
                continue;
            }

            var bytes = encoder.Codec.Encode(tensor.ElementType, tensor.Data, tensor.Shape, encoder.ChannelAxis);
            encoded.Add(new HostTensor(tensor.Name, Onnx.Proto.TensorProto.Types.DataType.Uint8, [bytes.Length], bytes));
        }

        return encoded;
    }
}
