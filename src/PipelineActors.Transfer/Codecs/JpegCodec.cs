using System.Buffers.Binary;
using System.Globalization;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;
using StbImageSharp;
using StbImageWriteSharp;

namespace PipelineActors.Transfer.Codecs;

/// <summary>A decoded uint8 image tensor: its shape and row-major bytes.</summary>
public sealed record DecodedPixels(long[] Shape, byte[] Values);

/// <summary>
/// <c>jpeg:Q</c>, the first hop's codec: a uint8 image tensor (batch 1, 1 or 3 channels, interleaved NHWC or planar NCHW)
/// as a baseline JPEG at quality Q, encoded by StbImageWriteSharp and decoded by StbImageSharp. The buffer is the common
/// header (element type uint8), an FNV-1a checksum of all that follows it, the channel axis, the JPEG's length, then the
/// JPEG. The checksum is
/// not optional: stb_image pads a truncated entropy-coded segment with zeros and returns a picture, so without it a cut
/// buffer would decode to a grey bottom instead of an error. Channel 0 is fed to JPEG as red, whatever the model calls it:
/// the colour transform is inverted on decoding, so only how chroma subsampling weighs the channels depends on it.
/// </summary>
public sealed class JpegCodec
{
    /// <summary>The quality <c>jpeg</c> without a number means.</summary>
    public const int DefaultQuality = 90;

    /// <summary>The codec's name without a quality.</summary>
    public const string Prefix = "jpeg";

    /// <summary>The largest side a baseline JPEG can have.</summary>
    public const int MaxSide = 65535;

    private const int BodyPrefixBytes = 4 + 1 + 4;

    public JpegCodec(int quality = DefaultQuality)
    {
        if (quality is < 1 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(quality), quality, "A JPEG quality is 1 to 100.");
        }

        Quality = quality;
    }

    /// <summary>JPEG quality, 1 (smallest) to 100.</summary>
    public int Quality { get; }

    /// <summary>The codec's name as plans spell it: <c>jpeg:Q</c>.</summary>
    public string Name => string.Create(CultureInfo.InvariantCulture, $"{Prefix}:{Quality}");

    public CodecPromise Promise { get; } = new(false,
        "lossy, no stated bound: baseline JPEG at quality Q (chroma halved both ways at Q <= 90); all-0 and all-255 pictures stay exact");

    /// <summary>True when <paramref name="spec"/> names this codec (<c>jpeg</c> or <c>jpeg:Q</c>).</summary>
    public static bool Names(string? spec) =>
        spec == Prefix || (spec?.StartsWith(Prefix + ":", StringComparison.Ordinal) ?? false);

    /// <summary>The codec <c>jpeg</c> or <c>jpeg:Q</c> names; another text or a quality outside 1..100 is a <see
    /// cref="PipelineInputException"/>.</summary>
    public static JpegCodec Parse(string spec)
    {
        if (spec == Prefix)
        {
            return new JpegCodec();
        }

        if (!Names(spec)
            || !int.TryParse(spec.AsSpan(Prefix.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var quality)
            || quality is < 1 or > 100)
        {
            throw new PipelineInputException($"'{spec}' is not a JPEG codec: write jpeg or jpeg:Q with Q a quality from 1 to 100 (jpeg "
                + $"means jpeg:{DefaultQuality}).");
        }

        return new JpegCodec(quality);
    }

    /// <summary>
    /// Encodes a uint8 image tensor whose channels lie on <paramref name="channelAxis"/> (1: NCHW, 3: NHWC; 0 or 2 without the
    /// batch); a tensor of another element type, shape or size is an <see cref="ArgumentException"/> of one sentence.
    /// </summary>
    public byte[] Encode(TensorProto.Types.DataType elementType, ReadOnlySpan<byte> data, ReadOnlySpan<long> shape, int channelAxis)
    {
        if (elementType != TensorProto.Types.DataType.Uint8)
        {
            throw new ArgumentException(
                $"The jpeg codec encodes uint8 image tensors only; this tensor is {Onnx.Graph.ElementTypes.NameOf(elementType)}.",
                nameof(elementType));
        }

        var image = Geometry.Of(shape, channelAxis) is { } g
            ? g
            : throw new ArgumentException(
                $"The jpeg codec encodes an image of 1 or 3 channels with a batch of 1 ([1,C,H,W] on axis 1 or [1,H,W,C] on axis 3), "
                + $"not shape [{string.Join(",", shape.ToArray())}] with channels on axis {channelAxis}.",
                nameof(shape));
        CodecHeader.CheckShape(shape, data.Length);

        var interleaved = image.Planar && image.Channels > 1 ? Interleave(data, image) : data.ToArray();
        using var jpeg = new MemoryStream();
        new ImageWriter().WriteJpg(
            interleaved, image.Width, image.Height,
            image.Channels == 1 ? StbImageWriteSharp.ColorComponents.Grey : StbImageWriteSharp.ColorComponents.RedGreenBlue, jpeg, Quality);
        var body = jpeg.GetBuffer().AsSpan(0, (int)jpeg.Length);

        var header = CodecHeader.Size(shape.Length);
        var buffer = new byte[header + BodyPrefixBytes + body.Length];
        CodecHeader.Write(buffer, CodecId.Jpeg, shape, TensorProto.Types.DataType.Uint8);
        buffer[header + 4] = (byte)channelAxis;
        BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(header + 5), body.Length);
        body.CopyTo(buffer.AsSpan(header + BodyPrefixBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(header), CodecHeader.Checksum(buffer.AsSpan(header + 4)));
        return buffer;
    }

    /// <summary>
    /// Decodes a buffer <see cref="Encode"/> wrote. The header is held to <paramref name="limits"/> and the JPEG's own frame
    /// header to the tensor's dims before any pixel buffer is made; any fault is a <see cref="TensorCodecException"/>.
    /// </summary>
    public static DecodedPixels Decode(ReadOnlySpan<byte> encoded, DecodeLimits limits)
    {
        var (shape, count, offset) = CodecHeader.Read(encoded, CodecId.Jpeg, Prefix, limits, TensorProto.Types.DataType.Uint8);
        if (encoded.Length < offset + BodyPrefixBytes)
        {
            throw new TensorCodecException($"The jpeg tensor is {encoded.Length} bytes long, too short to hold its JPEG after the header.");
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(encoded[(offset + 5)..]);
        var body = encoded[(offset + BodyPrefixBytes)..];
        if (length != body.Length)
        {
            throw new TensorCodecException(
                $"The jpeg tensor's JPEG is {body.Length} bytes long but its header says {length}: the buffer is truncated or padded.");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(encoded[offset..]) != CodecHeader.Checksum(encoded[(offset + 4)..]))
        {
            throw new TensorCodecException("The jpeg tensor's JPEG fails its checksum; the buffer is corrupt.");
        }

        int axis = encoded[offset + 4];
        var image = Geometry.Of(shape, axis) ?? throw new TensorCodecException(
            $"The jpeg tensor declares shape [{string.Join(",", shape)}] with channels on axis {axis}, which is no image of 1 or 3 channels.");

        var bytes = body.ToArray();
        ImageInfo? info;
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            info = ImageInfo.FromStream(stream);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new TensorCodecException($"The jpeg tensor's JPEG header cannot be read: {e.Message}", e);
        }

        // stb_image_write stores every JPEG as YCbCr, grey ones too, so only the size is held to the shape; the channels asked
        // for are the shape's (one channel is the luma).
        var components = image.Channels == 1 ? StbImageSharp.ColorComponents.Grey : StbImageSharp.ColorComponents.RedGreenBlue;
        if (info is not { } found || found.Width != image.Width || found.Height != image.Height)
        {
            throw new TensorCodecException(
                $"The jpeg tensor's picture is {(info is { } i ? $"{i.Width}x{i.Height}" : "not a JPEG stb_image reads")}, "
                + $"not the {image.Width}x{image.Height} its shape declares.");
        }

        byte[] pixels;
        try
        {
            pixels = ImageResult.FromMemory(bytes, components).Data;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new TensorCodecException($"The jpeg tensor's JPEG does not decode: {e.Message}", e);
        }

        if (pixels.Length != count)
        {
            throw new TensorCodecException($"The jpeg tensor's JPEG decoded to {pixels.Length} bytes; its shape holds {count}.");
        }

        return new DecodedPixels(shape, image.Planar && image.Channels > 1 ? Planarise(pixels, image) : pixels);
    }

    /// <summary>The channel axis of a uint8 image tensor of <paramref name="shape"/>, or null when it is no image this codec takes.</summary>
    public static int? ChannelAxisOf(ReadOnlySpan<long> shape, bool planar)
    {
        var axis = planar ? shape.Length - 3 : shape.Length - 1;
        return axis >= 0 && Geometry.Of(shape, axis) is not null ? axis : null;
    }

    private static byte[] Interleave(ReadOnlySpan<byte> planes, Geometry image)
    {
        var pixels = image.Height * image.Width;
        var interleaved = new byte[planes.Length];
        for (var c = 0; c < image.Channels; c++)
        {
            var plane = planes.Slice(c * pixels, pixels);
            for (var p = 0; p < pixels; p++)
            {
                interleaved[(p * image.Channels) + c] = plane[p];
            }
        }

        return interleaved;
    }

    private static byte[] Planarise(byte[] interleaved, Geometry image)
    {
        var pixels = image.Height * image.Width;
        var planes = new byte[interleaved.Length];
        for (var c = 0; c < image.Channels; c++)
        {
            for (var p = 0; p < pixels; p++)
            {
                planes[(c * pixels) + p] = interleaved[(p * image.Channels) + c];
            }
        }

        return planes;
    }

    /// <summary>An image tensor's height, width and channels, and whether its channels are planes (NCHW) or interleaved (NHWC).</summary>
    private readonly record struct Geometry(int Height, int Width, int Channels, bool Planar)
    {
        /// <summary>
        /// The geometry of [1,C,H,W] (axis 1), [1,H,W,C] (axis 3), [C,H,W] (axis 0) or [H,W,C] (axis 2) with C 1 or 3 and
        /// sides 1..65535; null for anything else.
        /// </summary>
        public static Geometry? Of(ReadOnlySpan<long> shape, int channelAxis)
        {
            if (shape.Length is not (3 or 4) || (shape.Length == 4 && shape[0] != 1))
            {
                return null;
            }

            var first = shape.Length - 3;
            var planar = channelAxis == first;
            if (!planar && channelAxis != shape.Length - 1)
            {
                return null;
            }

            var channels = shape[channelAxis];
            var height = planar ? shape[first + 1] : shape[first];
            var width = planar ? shape[first + 2] : shape[first + 1];
            if (channels is not (1 or 3) || height is < 1 or > MaxSide || width is < 1 or > MaxSide)
            {
                return null;
            }

            return new Geometry((int)height, (int)width, (int)channels, planar);
        }
    }
}
