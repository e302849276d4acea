using PipelineActors.Onnx;
using PipelineActors.Transfer.Calibration;

namespace PipelineActors.Transfer.Codecs;

/// <summary>
/// Codecs by the names plans and flags use: <c>lz4</c>, <c>zstd</c>, <c>fp16</c>, <c>int8</c>, <c>int4</c>, the last two with
/// an optional clip (<c>int4:percentile</c>), and fp16, int8 and int4 with zstd instead of LZ4 as their lossless stage
/// (<c>int8+zstd</c>, <c>int4:percentile+zstd</c>).
/// </summary>
public static class TensorCodecs
{
    /// <summary>The codec names, without clip or lossless suffixes.</summary>
    public static IReadOnlyList<string> Names { get; } = ["lz4", "zstd", "fp16", "int8", "int4"];

    private const string ZstdSuffix = "+zstd";

    private static readonly Dictionary<string, ClipMethod> Clips = new(StringComparer.Ordinal)
    {
        ["aciq-laplace"] = ClipMethod.AciqLaplace,
        ["aciq-gauss"] = ClipMethod.AciqGauss,
        ["percentile"] = ClipMethod.Percentile,
        ["minmax"] = ClipMethod.MinMax,
    };

    /// <summary>True when the codec named <paramref name="spec"/> needs calibration statistics (the quantisers).</summary>
    public static bool NeedsStatistics(string spec) => Parse(spec).Name is "int8" or "int4";

    /// <summary>
    /// The encoder for <paramref name="spec"/>; the quantisers need <paramref name="statistics"/> of the tensor they will
    /// carry. A name or clip that does not exist, or missing statistics, is a <see cref="PipelineInputException"/>.
    /// </summary>
    public static ITensorCodec Create(string spec, TensorStatistics? statistics)
    {
        var (name, clip, lossless) = Parse(spec);
        switch (name)
        {
            case "lz4":
                return new Lz4Codec();
            case "zstd":
                return new Lz4Codec(LosslessMethod.Zstd);
            case "fp16":
                return new Fp16Codec(lossless);
            default:
                if (statistics is null)
                {
                    throw new PipelineInputException(
                        $"The {name} codec needs calibration statistics of the cut tensor; run the calibration first and pass its file.");
                }

                return QuantizedCodec.Calibrated(name == "int8" ? 8 : 4, statistics, clip, lossless);
        }
    }

    /// <summary>
    /// The encoder for <paramref name="spec"/> with quantisers already calibrated elsewhere (a plan carries them to the
    /// stage that encodes); a codec that needs none ignores <paramref name="channels"/>.
    /// </summary>
    public static ITensorCodec WithQuantizers(string spec, int channelAxis, IReadOnlyList<ChannelQuantization> channels)
    {
        var (name, _, lossless) = Parse(spec);
        if (name is not ("int8" or "int4"))
        {
            return Create(spec, null);
        }

        var bits = name == "int8" ? 8 : 4;
        return new QuantizedCodec(bits, [.. channels.Select(c => c with { Bits = bits })], channelAxis, lossless);
    }

    /// <summary>A decoder for buffers of codec <paramref name="spec"/>: quantised buffers carry their own scales.</summary>
    public static ITensorCodec Decoder(string spec)
    {
        var (name, _, lossless) = Parse(spec);
        return name switch
        {
            "lz4" => new Lz4Codec(),
            "zstd" => new Lz4Codec(LosslessMethod.Zstd),
            "fp16" => new Fp16Codec(lossless),
            _ => new QuantizedCodec(name == "int8" ? 8 : 4, [new ChannelQuantization(1f, 0, name == "int8" ? 8 : 4)], 1, lossless),
        };
    }

    private static (string Name, ClipMethod Clip, LosslessMethod Lossless) Parse(string spec)
    {
        var text = spec ?? string.Empty;
        var lossless = LosslessMethod.Lz4;
        if (text.EndsWith(ZstdSuffix, StringComparison.Ordinal))
        {
            text = text[..^ZstdSuffix.Length];
            lossless = LosslessMethod.Zstd;
        }

        var parts = text.Split(':', 2);
        var name = parts[0];
        if (!Names.Contains(name))
        {
            throw new PipelineInputException($"There is no codec named '{spec}'; use one of: {string.Join(", ", Names)}.");
        }

        if (lossless == LosslessMethod.Zstd && name is "lz4" or "zstd")
        {
            throw new PipelineInputException($"'{spec}' is not a codec: +zstd goes after fp16, int8 or int4 (plain zstd is the codec 'zstd').");
        }

        if (parts.Length == 1)
        {
            return (name, Clipping.Default, lossless);
        }

        if (name is not ("int8" or "int4") || !Clips.TryGetValue(parts[1], out var clip))
        {
            throw new PipelineInputException(
                $"'{spec}' is not a codec: only int8 and int4 take a clip, one of {string.Join(", ", Clips.Keys)} (e.g. int4:percentile).");
        }

        return (name, clip, lossless);
    }
}
