using System.Buffers.Binary;
using PipelineActors.Transfer.Calibration;

namespace PipelineActors.Transfer.Codecs;

/// <summary>One channel's affine quantiser: code = clamp(round(x / Scale) + ZeroPoint, 0, 2^bits - 1).</summary>
public readonly record struct ChannelQuantization(float Scale, byte ZeroPoint, int Bits)
{
    /// <summary>The largest code.</summary>
    public int MaxCode => (1 << Bits) - 1;

    /// <summary>The smallest value the codes represent; values below clip to it.</summary>
    public float Low => -ZeroPoint * Scale;

    /// <summary>The largest value the codes represent; values above clip to it.</summary>
    public float High => (MaxCode - ZeroPoint) * Scale;

    /// <summary>True when the scale is positive and finite, the zero point a code, and every code decodes to a finite float.</summary>
    public bool IsFinite => Scale > 0 && float.IsFinite(Scale) && ZeroPoint <= MaxCode && float.IsFinite(Low) && float.IsFinite(High);

    /// <summary>
    /// The quantiser for a clip range, widened to hold 0 so that zero is a code of its own (post-ReLU zeros come back
    /// exact and their codes are 0, which the lossless stage then squeezes).
    /// </summary>
    public static ChannelQuantization For(double low, double high, int bits)
    {
        low = Math.Min(low, 0);
        high = Math.Max(high, 0);
        var maxCode = (1 << bits) - 1;
        if (!(high - low > 0) || !double.IsFinite(high - low))
        {
            return new ChannelQuantization(1f, 0, bits); // an all-zero channel, or no finite range: every code is 0
        }

        // A range narrower than denormal floats still needs a positive scale.
        var scale = Math.Max((float)((high - low) / maxCode), float.Epsilon);
        var zero = (byte)Math.Clamp(Math.Round(-low / scale, MidpointRounding.ToEven), 0, maxCode);
        var q = new ChannelQuantization(scale, zero, bits);
        // A range reaching float.MaxValue can round past it in float: shrink the scale until every code decodes finite.
        while (!q.IsFinite)
        {
            q = q with { Scale = MathF.BitDecrement(q.Scale) };
        }

        return q;
    }
}

/// <summary>
/// <c>int8</c> and <c>int4</c>: per-channel affine quantisation with clip ranges from calibration statistics, int4 packing
/// two codes per byte (low nibble first), then the lossless stage over the codes. The per-channel scales and zero
/// points travel in the buffer, so a decoder needs no calibration. NaN becomes 0 (the zero point); values outside a
/// channel's range, infinities included, come back as the range's edge.
/// </summary>
public sealed class QuantizedCodec : ITensorCodec
{
    private readonly ChannelQuantization[] _channels;
    private readonly int _channelAxis;
    private readonly LosslessMethod _lossless;

    /// <summary>A codec for <paramref name="bits"/> (8 or 4) bits with one quantiser per channel, or one for all.</summary>
    public QuantizedCodec(int bits, IReadOnlyList<ChannelQuantization> channels, int channelAxis = 1, LosslessMethod lossless = LosslessMethod.Lz4)
    {
        if (bits is not (8 or 4))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Quantised codecs have 8 or 4 bits.");
        }

        if (channels.Count == 0 || channels.Any(c => c.Bits != bits || !c.IsFinite))
        {
            throw new ArgumentException($"Every channel needs a positive finite scale and a {bits}-bit zero point.", nameof(channels));
        }

        if (channelAxis is < 0 or > byte.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(channelAxis), channelAxis, "A channel axis lies in 0..255.");
        }

        Bits = bits;
        _channels = [.. channels];
        _channelAxis = channelAxis;
        _lossless = lossless;
        Name = (bits == 8 ? "int8" : "int4") + (lossless == LosslessMethod.Zstd ? "+zstd" : string.Empty);
        Promise = new CodecPromise(false,
            $"|error| <= scale/2 per channel inside its clip range (scale = range / {(1 << bits) - 1}); "
            + "values outside clip to the range's edge; NaN decodes as 0");
    }

    public int Bits { get; }

    public IReadOnlyList<ChannelQuantization> Channels => _channels;

    /// <summary>The axis whose entries each have a quantiser of their own (1: NCHW channels).</summary>
    public int ChannelAxis => _channelAxis;

    public string Name { get; }

    public CodecPromise Promise { get; }

    /// <summary>The int8 codec calibrated from <paramref name="statistics"/>.</summary>
    public static QuantizedCodec EightBit(TensorStatistics statistics, ClipMethod? method = null) =>
        Calibrated(8, statistics, method ?? Clipping.Default);

    /// <summary>The int4 codec calibrated from <paramref name="statistics"/>.</summary>
    public static QuantizedCodec FourBit(TensorStatistics statistics, ClipMethod? method = null) =>
        Calibrated(4, statistics, method ?? Clipping.Default);

    public static QuantizedCodec Calibrated(int bits, TensorStatistics statistics, ClipMethod method, LosslessMethod lossless = LosslessMethod.Lz4)
    {
        var channels = statistics.Channels.Select(s =>
        {
            var (low, high) = Clipping.Range(s, bits, method);
            return ChannelQuantization.For(low, high, bits);
        }).ToArray();
        return new QuantizedCodec(bits, channels, statistics.ChannelAxis, lossless);
    }

    public byte[] Encode(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        CodecHeader.CheckShape(shape, values.Length);
        var layout = ChannelLayout.Of(shape, _channelAxis);
        if (_channels.Length != 1 && _channels.Length != layout.Channels)
        {
            throw new ArgumentException(
                $"The {Name} codec is calibrated for {_channels.Length} channels but the tensor has {layout.Channels} on axis "
                + $"{_channelAxis}.", nameof(shape));
        }

        var channelCount = (int)layout.Channels;
        var codes = new byte[values.Length];
        var run = (int)layout.Inner;
        var offset = 0;
        for (long outer = 0; outer < layout.Outer; outer++)
        {
            for (var c = 0; c < channelCount; c++, offset += run)
            {
                Quantize(values.Slice(offset, run), codes.AsSpan(offset, run), _channels.Length == 1 ? _channels[0] : _channels[c]);
            }
        }

        var block = LosslessStage.Encode(Bits == 8 ? codes : Pack(codes), 1, _lossless);
        var parameters = new byte[8 + (5 * channelCount)];
        BinaryPrimitives.WriteInt32LittleEndian(parameters, _channelAxis);
        BinaryPrimitives.WriteInt32LittleEndian(parameters.AsSpan(4), channelCount);
        for (var c = 0; c < channelCount; c++)
        {
            var q = _channels.Length == 1 ? _channels[0] : _channels[c];
            BinaryPrimitives.WriteSingleLittleEndian(parameters.AsSpan(8 + (4 * c)), q.Scale);
            parameters[8 + (4 * channelCount) + c] = q.ZeroPoint;
        }

        return Lz4Codec.Assemble(Bits == 8 ? CodecId.Int8 : CodecId.Int4, shape, parameters, block);
    }

    public DecodedTensor Decode(ReadOnlySpan<byte> encoded, DecodeLimits limits)
    {
        var what = $"{Name} tensor";
        var (shape, count, offset) = CodecHeader.Read(encoded, Bits == 8 ? CodecId.Int8 : CodecId.Int4, Name, limits);
        var body = encoded[offset..];
        if (body.Length < 8)
        {
            throw new TensorCodecException($"The {what} ends before its channel parameters.");
        }

        var axis = BinaryPrimitives.ReadInt32LittleEndian(body);
        var channelCount = BinaryPrimitives.ReadInt32LittleEndian(body[4..]);
        if (axis is < 0 or > byte.MaxValue)
        {
            throw new TensorCodecException($"The {what} declares channel axis {axis}, outside 0..255.");
        }

        var layout = ChannelLayout.Of(shape, axis);
        if (channelCount != layout.Channels)
        {
            throw new TensorCodecException(
                $"The {what} carries parameters for {channelCount} channels but its shape has {layout.Channels} on axis {axis}.");
        }

        var parametersEnd = 8 + (5L * channelCount);
        if (body.Length < parametersEnd)
        {
            throw new TensorCodecException($"The {what} ends inside its parameters for {channelCount} channels.");
        }

        var channels = new ChannelQuantization[channelCount];
        for (var c = 0; c < channelCount; c++)
        {
            var scale = BinaryPrimitives.ReadSingleLittleEndian(body[(8 + (4 * c))..]);
            var zero = body[8 + (4 * channelCount) + c];
            channels[c] = new ChannelQuantization(scale, zero, Bits);
            if (!channels[c].IsFinite)
            {
                throw new TensorCodecException($"The {what} has an invalid scale or zero point for channel {c}.");
            }
        }

        var block = body[(int)parametersEnd..];
        var packedLength = Bits == 8 ? count : (count + 1) / 2;
        LosslessStage.CheckPlausible(block, packedLength, 1, what);
        var packed = new byte[packedLength];
        LosslessStage.Decode(block, packed, 1, what);
        var codes = Bits == 8 ? packed : Unpack(packed, (int)count);

        var values = new float[count];
        var run = (int)layout.Inner;
        var at = 0;
        for (long outer = 0; outer < layout.Outer; outer++)
        {
            for (var c = 0; c < channelCount; c++, at += run)
            {
                Dequantize(codes.AsSpan(at, run), values.AsSpan(at, run), channels[c]);
            }
        }

        return new DecodedTensor(shape, values);
    }

    private static void Quantize(ReadOnlySpan<float> values, Span<byte> codes, ChannelQuantization q)
    {
        float scale = q.Scale, zero = q.ZeroPoint, max = q.MaxCode;
        for (var i = 0; i < values.Length; i++)
        {
            var x = values[i];
            // Division rather than a reciprocal multiply keeps the bound at scale/2 up to one rounding of x / scale.
            codes[i] = float.IsNaN(x) ? q.ZeroPoint : (byte)Math.Clamp(MathF.Round(x / scale) + zero, 0f, max);
        }
    }

    private static void Dequantize(ReadOnlySpan<byte> codes, Span<float> values, ChannelQuantization q)
    {
        float scale = q.Scale;
        int zero = q.ZeroPoint;
        for (var i = 0; i < codes.Length; i++)
        {
            values[i] = (codes[i] - zero) * scale;
        }
    }

    private static byte[] Pack(byte[] codes)
    {
        var packed = new byte[(codes.Length + 1) / 2];
        for (var i = 0; i < codes.Length; i++)
        {
            packed[i >> 1] |= (byte)(codes[i] << ((i & 1) * 4));
        }

        return packed;
    }

    private static byte[] Unpack(byte[] packed, int count)
    {
        var codes = new byte[count];
        for (var i = 0; i < count; i++)
        {
            codes[i] = (byte)((packed[i >> 1] >> ((i & 1) * 4)) & 0xF);
        }

        return codes;
    }
}
