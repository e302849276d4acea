using System.Globalization;
using PipelineActors.Onnx;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer;

/// <summary>A layer rewritten into the stage models around a cut, changing what the cut carries.</summary>
public enum TransferLayer
{
    /// <summary>The cut tensor itself goes on the wire.</summary>
    None,

    /// <summary><c>pca:K</c>: K principal channels (a 1x1 convolution each side).</summary>
    Pca,

    /// <summary><c>pool2</c>: ScissionLite's 2x2 max-pool down, nearest up.</summary>
    Pool2,
}

/// <summary>
/// What one hop's tensors become on the wire, as flags spell it: an optional layer (<c>pca:K</c>, <c>pool2</c>), then a
/// codec for the tensor that layer leaves: <c>exact</c> (the pipeline's lossless zero suppression), or any codec
/// <see cref="TensorCodecs"/> makes (<c>lz4</c>, <c>zstd</c>, <c>fp16</c>, <c>int8</c>, <c>int4:percentile+zstd</c>, ...).
/// Examples: <c>int8</c>, <c>pca:32</c> (= <c>pca:32+exact</c>), <c>pca:32+int8</c>, <c>pool2+fp16</c>.
/// </summary>
public sealed record TransferSpec(string Text, TransferLayer Layer, int Components, string Codec)
{
    /// <summary>The codec name for the pipeline's own lossless wire format (zero suppression where it saves an eighth).</summary>
    public const string Exact = "exact";

    public const string Choices = "exact, lz4, zstd, fp16, int8, int4 (with :CLIP and/or +zstd), pca:K or pool2, optionally followed by +CODEC";

    /// <summary>True when the wire codec is the pipeline's exact format.</summary>
    public bool IsExact => Codec == Exact;

    /// <summary>False for plain <c>exact</c>: the cut tensors cross as they are, with no layer and no codec.</summary>
    public bool ChangesTheWire => !IsExact || Layer != TransferLayer.None;

    public static TransferSpec Parse(string text)
    {
        var spec = (text ?? string.Empty).Trim();
        if (spec.Length == 0)
        {
            throw new PipelineInputException($"The codec is empty; give one of {Choices}.");
        }

        var (layer, components, rest) = (TransferLayer.None, 0, spec);
        if (spec.StartsWith("pca", StringComparison.Ordinal) || spec.StartsWith("pool2", StringComparison.Ordinal))
        {
            var plus = spec.IndexOf('+', StringComparison.Ordinal);
            var head = plus < 0 ? spec : spec[..plus];
            rest = plus < 0 ? Exact : spec[(plus + 1)..];
            if (head == "pool2")
            {
                layer = TransferLayer.Pool2;
            }
            else if (head.StartsWith("pca:", StringComparison.Ordinal)
                && int.TryParse(head["pca:".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out components) && components >= 1)
            {
                layer = TransferLayer.Pca;
            }
            else
            {
                throw new PipelineInputException(
                    $"'{text}' is not a codec: pca takes a channel count (pca:32), and pool2 nothing; give one of {Choices}.");
            }
        }

        if (rest != Exact)
        {
            if (!TensorCodecs.Names.Contains(rest.Split(':', '+')[0]))
            {
                throw new PipelineInputException($"There is no codec named '{text}'; give one of {Choices}.");
            }

            // Made once here so that a bad clip or suffix is an error before any frame is read.
            TensorCodecs.Decoder(rest);
        }

        return new TransferSpec(spec, layer, components, rest);
    }
}
