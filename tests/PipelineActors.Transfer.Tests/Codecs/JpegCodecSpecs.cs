using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;
using PipelineActors.Transfer.Codecs;
using StbImageSharp;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>
/// The first hop's <c>jpeg:Q</c> codec: shapes and layouts round-trip, a real photograph comes back close, extreme pictures
/// exactly, and every truncated, corrupt or foreign buffer and every tensor it cannot take is one clear sentence.
/// </summary>
public sealed class JpegCodecSpecs
{
    private const string Pictures = "/usr/share/doc/opencv-doc/examples/data";
    private const TensorProto.Types.DataType Uint8 = TensorProto.Types.DataType.Uint8;

    public static TheoryData<long[], int> Shapes() => new()
    {
        { [1, 256, 256, 3], 3 },
        { [1, 3, 48, 192], 1 },
        { [1, 1, 1, 1], 1 },
        { [1, 1, 1, 3], 3 },
        { [1, 3, 1, 1], 1 },
        { [1, 17, 31, 1], 3 },
        { [1, 3, 33, 7], 1 },
        { [29, 13, 3], 2 },
        { [3, 5, 11], 0 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void A_picture_of_any_size_and_layout_comes_back_with_its_shape_and_close_values(long[] shape, int axis)
    {
        var pixels = SmoothPicture(shape, axis);
        var encoded = new JpegCodec(95).Encode(Uint8, pixels, shape, axis);
        var decoded = JpegCodec.Decode(encoded, DecodeLimits.For(shape));

        Assert.Equal(shape, decoded.Shape);
        Assert.Equal(pixels.Length, decoded.Values.Length);
        // A gradient at quality 95: close on average and nowhere far off; a mixed-up layout or channel order is off by 60 levels.
        var worst = pixels.Zip(decoded.Values, (a, b) => Math.Abs(a - b)).Max();
        var mean = pixels.Zip(decoded.Values, (a, b) => (double)Math.Abs(a - b)).Average();
        Assert.True(worst <= 30 && mean <= 4, $"pixels came back {mean:0.00} levels off on average, {worst} at worst");
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)255)]
    public void An_all_black_or_all_white_picture_comes_back_exact(byte value)
    {
        long[] shape = [1, 3, 40, 24];
        var pixels = Enumerable.Repeat(value, 3 * 40 * 24).ToArray();
        var decoded = JpegCodec.Decode(new JpegCodec(75).Encode(Uint8, pixels, shape, 1), DecodeLimits.For(shape));
        Assert.Equal(pixels, decoded.Values);
    }

    [Fact]
    public void A_real_photograph_at_quality_90_is_a_fraction_of_its_raw_bytes_and_close_to_it()
    {
        var (pixels, shape) = Photograph("messi5.jpg", 256);
        var raw = pixels.Length;
        var q90 = new JpegCodec(90).Encode(Uint8, pixels, shape, 3);
        var q75 = new JpegCodec(75).Encode(Uint8, pixels, shape, 3);
        var decoded = JpegCodec.Decode(q90, DecodeLimits.For(shape)).Values;

        Assert.True(q90.Length * 4 < raw, $"jpeg:90 took {q90.Length} bytes of {raw}");
        Assert.True(q75.Length < q90.Length, $"jpeg:75 ({q75.Length} bytes) is not smaller than jpeg:90 ({q90.Length})");
        var meanError = pixels.Zip(decoded, (a, b) => (double)Math.Abs(a - b)).Average();
        Assert.True(meanError < 4, $"mean error {meanError:0.00} levels");
    }

    [Fact]
    public void Every_truncation_is_a_codec_error_of_one_sentence()
    {
        var (codec, encoded, shape) = Encoded();
        for (var length = 0; length < encoded.Length; length++)
        {
            var error = Assert.Throws<TensorCodecException>(() => JpegCodec.Decode(encoded.AsSpan(0, length), DecodeLimits.For(shape)));
            Assert.EndsWith(".", error.Message);
            Assert.DoesNotContain("\n", error.Message);
        }

        Assert.Equal(shape, JpegCodec.Decode(encoded, DecodeLimits.For(shape)).Shape); // the whole buffer still decodes
        Assert.Equal("jpeg:80", codec.Name);
    }

    [Fact]
    public void Every_bit_flip_anywhere_is_a_codec_error()
    {
        var (_, encoded, shape) = Encoded();
        for (var bit = 0; bit < encoded.Length * 8; bit++)
        {
            var corrupt = (byte[])encoded.Clone();
            corrupt[bit / 8] ^= (byte)(1 << (bit % 8));
            var error = Assert.Throws<TensorCodecException>(() => JpegCodec.Decode(corrupt, DecodeLimits.For(shape)));
            Assert.EndsWith(".", error.Message);
        }
    }

    [Fact]
    public void Bytes_that_are_no_jpeg_behind_a_valid_header_and_checksum_are_a_codec_error()
    {
        var (_, encoded, shape) = Encoded();
        var header = 4 + (8 * shape.Length) + 12;
        var body = encoded.Length - header - 9;
        var forged = (byte[])encoded.Clone();
        new Random(7).NextBytes(forged.AsSpan(header + 9, body));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(forged.AsSpan(header), CodecHeader.Checksum(forged.AsSpan(header + 4)));

        var error = Assert.Throws<TensorCodecException>(() => JpegCodec.Decode(forged, DecodeLimits.For(shape)));
        Assert.Contains("JPEG", error.Message);
    }

    [Fact]
    public void A_picture_of_other_dims_than_the_header_declares_is_refused_before_it_is_decoded()
    {
        // A 16x16 JPEG wrapped in a header that claims 16x32: the JPEG's frame header is read and refused.
        long[] small = [1, 16, 16, 3];
        var encoded = new JpegCodec(80).Encode(Uint8, new byte[16 * 16 * 3], small, 3);
        var header = 4 + (8 * small.Length) + 12;
        long[] claimed = [1, 16, 32, 3];
        var forged = new byte[encoded.Length];
        CodecHeader.Write(forged, CodecId.Jpeg, claimed, Uint8);
        encoded.AsSpan(header).CopyTo(forged.AsSpan(header));

        var error = Assert.Throws<TensorCodecException>(() => JpegCodec.Decode(forged, DecodeLimits.For(claimed)));
        Assert.Contains("16x16", error.Message);
        Assert.Contains("32x16", error.Message);
    }

    [Fact]
    public void A_tensor_larger_than_the_stage_declares_is_refused_from_its_header()
    {
        var (_, encoded, _) = Encoded();
        var error = Assert.Throws<TensorCodecException>(() => JpegCodec.Decode(encoded, DecodeLimits.For([1, 8, 8, 3])));
        Assert.Contains("limit", error.Message);
    }

    [Fact]
    public void A_float32_tensor_is_refused_in_one_sentence()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            new JpegCodec().Encode(TensorProto.Types.DataType.Float, new byte[4 * 12], [1, 2, 2, 3], 3));
        Assert.StartsWith("The jpeg codec encodes uint8 image tensors only; this tensor is float32.", error.Message);
    }

    [Theory]
    [InlineData(new long[] { 1, 4, 4, 2 }, 3)]
    [InlineData(new long[] { 2, 4, 4, 3 }, 3)]
    [InlineData(new long[] { 1, 4, 4, 3 }, 2)]
    [InlineData(new long[] { 4, 3 }, 1)]
    [InlineData(new long[] { 1, 0, 4, 3 }, 3)]
    public void A_shape_that_is_no_picture_is_refused_in_one_sentence(long[] shape, int axis)
    {
        var count = (int)shape.Aggregate(1L, (a, d) => a * d);
        var error = Assert.Throws<ArgumentException>(() => new JpegCodec().Encode(Uint8, new byte[count], shape, axis));
        Assert.StartsWith("The jpeg codec encodes an image of 1 or 3 channels", error.Message);
    }

    [Fact]
    public void A_float_codec_buffer_is_not_taken_for_a_jpeg()
    {
        long[] shape = [1, 3, 4, 4];
        var fp16 = new Fp16Codec().Encode(new float[48], shape);
        var error = Assert.Throws<TensorCodecException>(() => JpegCodec.Decode(fp16, DecodeLimits.For(shape)));
        Assert.Contains("codec id 2", error.Message);
    }

    [Theory]
    [InlineData("jpeg", 90)]
    [InlineData("jpeg:1", 1)]
    [InlineData("jpeg:75", 75)]
    [InlineData("jpeg:100", 100)]
    public void The_names_read_as_their_quality(string spec, int quality)
    {
        Assert.Equal(quality, JpegCodec.Parse(spec).Quality);
        Assert.Equal(quality, FirstHop.Parse(spec).JpegQuality);
        Assert.Equal($"jpeg:{quality}", FirstHop.Parse(spec).Text);
    }

    [Theory]
    [InlineData("jpeg:0")]
    [InlineData("jpeg:101")]
    [InlineData("jpeg:")]
    [InlineData("jpeg:9x")]
    [InlineData("jpeg:-5")]
    [InlineData("png")]
    [InlineData("")]
    public void A_first_hop_that_is_not_raw_or_jpeg_Q_is_one_sentence_naming_the_choices(string spec)
    {
        var error = Assert.Throws<PipelineInputException>(() => FirstHop.Parse(spec));
        Assert.Contains("jpeg:Q", error.Message);
        Assert.EndsWith(".", error.Message);
        Assert.True(FirstHop.Parse("raw").IsRaw);
    }

    private static (JpegCodec Codec, byte[] Encoded, long[] Shape) Encoded()
    {
        long[] shape = [1, 3, 12, 20];
        var codec = new JpegCodec(80);
        return (codec, codec.Encode(Uint8, SmoothPicture(shape, 1), shape, 1), shape);
    }

    /// <summary>A gradient with a different slope per channel, so a mixed-up layout or channel order shows.</summary>
    private static byte[] SmoothPicture(long[] shape, int axis)
    {
        var first = shape.Length - 3;
        var planar = axis == first;
        var channels = (int)shape[axis];
        var height = (int)(planar ? shape[first + 1] : shape[first]);
        var width = (int)(planar ? shape[first + 2] : shape[first + 1]);
        var pixels = new byte[channels * height * width];
        for (var c = 0; c < channels; c++)
        {
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var value = (byte)(40 + (c * 60) + ((y * 50) / Math.Max(1, height)) + ((x * (30 + (c * 20))) / Math.Max(1, width)));
                    var index = planar ? (((c * height) + y) * width) + x : (((y * width) + x) * channels) + c;
                    pixels[index] = value;
                }
            }
        }

        return pixels;
    }

    /// <summary>A real photograph, nearest-neighbour resized to side x side, as NHWC uint8 RGB.</summary>
    private static (byte[] Pixels, long[] Shape) Photograph(string file, int side)
    {
        var path = Path.Combine(Pictures, file);
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's opencv-doc (sudo apt-get install opencv-doc).");
        var image = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
        var pixels = new byte[side * side * 3];
        for (var y = 0; y < side; y++)
        {
            for (var x = 0; x < side; x++)
            {
                var source = (((y * image.Height / side) * image.Width) + (x * image.Width / side)) * 3;
                for (var c = 0; c < 3; c++)
                {
                    pixels[(((y * side) + x) * 3) + c] = image.Data[source + c];
                }
            }
        }

        return (pixels, [1, side, side, 3]);
    }
}
