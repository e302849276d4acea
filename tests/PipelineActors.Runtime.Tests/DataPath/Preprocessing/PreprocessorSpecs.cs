using System.Runtime.InteropServices;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Preprocessing;

/// <summary>Model profiles and the preprocessor, against pixel values worked out by hand.</summary>
public sealed class PreprocessorSpecs
{
    // A 2x2 RGB picture: (10,20,30) (40,50,60) / (70,80,90) (100,110,120).
    private static readonly byte[] Tiny = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];

    private static ModelProfile Profile(TensorLayout layout, ChannelOrder channels, float scale, float[] mean, float[] std, int height = 2,
        int width = 2) =>
        new("x", height, width, layout, channels, scale, mean, std);

    private static float[] Floats(byte[] data) => MemoryMarshal.Cast<byte, float>(data).ToArray();

    [Fact]
    public void Nchw_bgr_with_imagenet_mean_and_std_puts_blue_in_plane_zero_and_normalises_each_plane_by_its_own_values()
    {
        var profile = Profile(TensorLayout.Nchw, ChannelOrder.Bgr, 1 / 255f, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);
        var tensor = new Preprocessor(profile).Run(Tiny, 2, 2);

        Assert.Equal("x", tensor.Name);
        Assert.Equal(DataType.Float, tensor.ElementType);
        Assert.Equal(new long[] { 1, 3, 2, 2 }, tensor.Shape);
        // Plane 0 = blue (30, 60, 90, 120) with mean[0]/std[0]; plane 1 = green; plane 2 = red.
        float[] expected =
        [
            ((30 / 255f) - 0.485f) / 0.229f, ((60 / 255f) - 0.485f) / 0.229f, ((90 / 255f) - 0.485f) / 0.229f, ((120 / 255f) - 0.485f) / 0.229f,
            ((20 / 255f) - 0.456f) / 0.224f, ((50 / 255f) - 0.456f) / 0.224f, ((80 / 255f) - 0.456f) / 0.224f, ((110 / 255f) - 0.456f) / 0.224f,
            ((10 / 255f) - 0.406f) / 0.225f, ((40 / 255f) - 0.406f) / 0.225f, ((70 / 255f) - 0.406f) / 0.225f, ((100 / 255f) - 0.406f) / 0.225f,
        ];
        var actual = Floats(tensor.Data);
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 5);
        }
    }

    [Fact]
    public void Nhwc_rgb_scaled_to_minus_one_to_one_interleaves_the_channels_of_each_pixel()
    {
        var profile = Profile(TensorLayout.Nhwc, ChannelOrder.Rgb, 1 / 127.5f, [1, 1, 1], [1, 1, 1]);
        var tensor = new Preprocessor(profile).Run(Tiny, 2, 2);

        Assert.Equal(new long[] { 1, 2, 2, 3 }, tensor.Shape);
        var expected = Tiny.Select(p => (p / 127.5f) - 1).ToArray();
        var actual = Floats(tensor.Data);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 5);
        }
    }

    [Fact]
    public void Nhwc_bgr_swaps_red_and_blue_within_each_pixel()
    {
        var profile = Profile(TensorLayout.Nhwc, ChannelOrder.Bgr, 1 / 255f, [0, 0, 0], [1, 1, 1]);
        var tensor = new Preprocessor(profile, uint8Pixels: true).Run(Tiny, 2, 2);

        Assert.Equal(DataType.Uint8, tensor.ElementType);
        Assert.Equal(new byte[] { 30, 20, 10, 60, 50, 40, 90, 80, 70, 120, 110, 100 }, tensor.Data);
    }

    [Fact]
    public void Bilinear_upscaling_uses_half_pixel_centres_and_clamps_at_the_edges()
    {
        // One row of two pixels, grey 0 and grey 200, stretched to four: source positions
        // -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1) give 0, 50, 150, 200.
        byte[] row = [0, 0, 0, 200, 200, 200];
        var profile = Profile(TensorLayout.Nchw, ChannelOrder.Rgb, 1 / 255f, [0, 0, 0], [1, 1, 1], height: 1, width: 4);
        var tensor = new Preprocessor(profile, uint8Pixels: true).Run(row, 2, 1);

        Assert.Equal(new long[] { 1, 3, 1, 4 }, tensor.Shape);
        Assert.Equal(new byte[] { 0, 50, 150, 200, 0, 50, 150, 200, 0, 50, 150, 200 }, tensor.Data);
    }

    [Fact]
    public void Bilinear_downscaling_by_two_averages_each_two_by_two_block()
    {
        // 4x4 picture, red = 16 * index; halving samples at source 0.5 and 2.5 on both axes.
        var rgb = new byte[4 * 4 * 3];
        for (var i = 0; i < 16; i++)
        {
            rgb[i * 3] = (byte)(16 * i);
        }

        var profile = Profile(TensorLayout.Nchw, ChannelOrder.Rgb, 1, [0, 0, 0], [1, 1, 1]);
        var red = Floats(new Preprocessor(profile).Run(rgb, 4, 4).Data)[..4];

        // Block (0,1,4,5) -> 16*2.5 = 40; (2,3,6,7) -> 72; (8,9,12,13) -> 168; (10,11,14,15) -> 200.
        Assert.Equal(new[] { 40f, 72f, 168f, 200f }, red);
    }

    [Theory]
    [InlineData(TensorLayout.Nchw, ChannelOrder.Bgr, false)]
    [InlineData(TensorLayout.Nhwc, ChannelOrder.Rgb, false)]
    [InlineData(TensorLayout.Nchw, ChannelOrder.Rgb, true)]
    [InlineData(TensorLayout.Nhwc, ChannelOrder.Bgr, true)]
    public void A_picture_already_at_the_model_size_skips_the_resize_and_gives_what_the_resize_would_give(
        TensorLayout layout, ChannelOrder channels, bool bytePixels)
    {
        // A random 6x4 picture, and the same picture with every pixel doubled into a 2x2 block (12x8): halving the
        // large one bilinearly averages constant blocks, so it must give exactly what the 6x4 one gives unresized.
        const int width = 6, height = 4;
        var random = new Random(7);
        var small = new byte[width * height * 3];
        random.NextBytes(small);
        var large = new byte[4 * small.Length];
        for (var y = 0; y < 2 * height; y++)
        {
            for (var x = 0; x < 2 * width; x++)
            {
                small.AsSpan((((y / 2) * width) + (x / 2)) * 3, 3).CopyTo(large.AsSpan(((y * 2 * width) + x) * 3, 3));
            }
        }

        var profile = Profile(layout, channels, 1 / 127.5f, [1f, 0.9f, 1.1f], [1f, 0.8f, 1.2f], height, width);
        var preprocessor = new Preprocessor(profile, uint8Pixels: bytePixels);

        Assert.Equal(preprocessor.Run(large, 2 * width, 2 * height).Data, preprocessor.Run(small, width, height).Data);
    }

    [Fact]
    public void The_resize_tables_follow_a_change_of_picture_size()
    {
        var profile = Profile(TensorLayout.Nchw, ChannelOrder.Rgb, 1 / 255f, [0, 0, 0], [1, 1, 1], height: 1, width: 1);
        var preprocessor = new Preprocessor(profile, uint8Pixels: true);

        Assert.Equal(new byte[] { 10, 20, 30 }, preprocessor.Run(Tiny, 1, 1).Data);
        Assert.Equal(new byte[] { 55, 65, 75 }, preprocessor.Run(Tiny, 2, 2).Data); // the mean of the four
    }

    [Fact]
    public void Uint8_pixels_are_the_reordered_pixels_whatever_the_normalisation_and_only_x_over_255_is_plain()
    {
        var plain = Profile(TensorLayout.Nchw, ChannelOrder.Bgr, 1 / 255f, [0, 0, 0], [1, 1, 1]);
        var centred = Profile(TensorLayout.Nchw, ChannelOrder.Bgr, 1 / 255f, [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f]);

        Assert.True(plain.AcceptsUint8Pixels);
        Assert.False(centred.AcceptsUint8Pixels);
        // The first stage applies the profile's normalisation to uint8 pixels, so any profile may send them.
        Assert.Equal(DataType.Uint8, new Preprocessor(centred, uint8Pixels: true).Output.ElementType);
    }

    [Fact]
    public void A_picture_of_the_wrong_byte_count_is_refused()
    {
        var profile = Profile(TensorLayout.Nchw, ChannelOrder.Rgb, 1 / 255f, [0, 0, 0], [1, 1, 1]);
        Assert.Throws<ArgumentException>(() => new Preprocessor(profile).Run(Tiny, 3, 2));
    }

    [Theory]
    [InlineData("paddleocr-textdir-cls", "x", 48, 192, TensorLayout.Nchw, ChannelOrder.Bgr, "paddleocr-cls")]
    [InlineData("paddleocr-text-det", "x", 640, 640, TensorLayout.Nchw, ChannelOrder.Bgr, "paddleocr-det")]
    [InlineData("blazeface-back-256", "input:0", 256, 256, TensorLayout.Nhwc, ChannelOrder.Rgb, "blazeface")]
    public void The_bundled_models_profiles_match_models_readme_and_name_a_real_input(string model, string input, int height, int width,
        TensorLayout layout, ChannelOrder channels, string decoder)
    {
        var path = Path.Combine(RepositoryFiles.Root, "models", model + ".onnx");
        var profile = ModelProfile.ForModel(path);

        Assert.Equal((input, height, width, layout, channels, decoder),
            (profile.Input, profile.Height, profile.Width, profile.Layout, profile.Channels, profile.Decoder));
        var graph = OnnxModelFile.Load(path).Model.Graph;
        var declared = Assert.Single(graph.Input, i => i.Name == input);
        var dims = declared.Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue : -1).ToArray();
        Assert.Equal(4, dims.Length);
        for (var i = 0; i < 4; i++)
        {
            Assert.True(dims[i] < 0 || dims[i] == profile.Shape[i],
                $"{model}: profile shape [{string.Join(",", profile.Shape)}] does not fit the model's [{string.Join(",", dims)}].");
        }
    }

    [Fact]
    public void The_bundled_normalisations_are_those_of_models_readme()
    {
        var models = Path.Combine(RepositoryFiles.Root, "models");
        var cls = ModelProfile.Load(Path.Combine(models, "paddleocr-textdir-cls.profile.json"));
        var det = ModelProfile.Load(Path.Combine(models, "paddleocr-text-det.profile.json"));
        var face = ModelProfile.Load(Path.Combine(models, "blazeface-back-256.profile.json"));

        // value = (p * scale - mean) / std at p = 0 and p = 255.
        static (float, float) Range(ModelProfile p, int c) => ((0 - p.Mean[c]) / p.Std[c], ((255 * p.Scale) - p.Mean[c]) / p.Std[c]);
        Assert.Equal(-1, Range(cls, 0).Item1, 5);
        Assert.Equal(1, Range(cls, 0).Item2, 5);
        Assert.Equal(-1, Range(face, 2).Item1, 5);
        Assert.Equal(1, Range(face, 2).Item2, 5);
        Assert.Equal(new[] { 0.485f, 0.456f, 0.406f }, det.Mean);
        Assert.Equal(new[] { 0.229f, 0.224f, 0.225f }, det.Std);
        Assert.Equal(32, det.SizeMultiple);
        Assert.False(det.AcceptsUint8Pixels);
        var wide = det.WithSize(960, 736);
        Assert.Equal((736, 960), (wide.Height, wide.Width));
        Assert.Throws<PipelineInputException>(() => det.WithSize(50, 70));
    }

    [Fact]
    public void A_profile_survives_a_round_trip_through_its_json()
    {
        var profile = new ModelProfile("input:0", 256, 128, TensorLayout.Nhwc, ChannelOrder.Rgb, 1 / 127.5f, [1, 1, 1], [1, 1, 1], "blazeface");
        Assert.Equal(profile, ModelProfile.Parse(profile.ToJson()));
    }

    [Theory]
    [InlineData("""{"size":[2,2],"layout":"NCHW","channels":"RGB","scale":1,"mean":0,"std":1}""", "\"input\"")]
    [InlineData("""{"input":"x","size":[2,2],"layout":"NCWH","channels":"RGB","scale":1,"mean":0,"std":1}""", "NCHW")]
    [InlineData("""{"input":"x","size":[2,2],"layout":"NCHW","channels":"RGB","scale":1,"mean":0,"std":0}""", "std")]
    [InlineData("""{"input":"x","size":[2],"layout":"NCHW","channels":"RGB","scale":1,"mean":0,"std":1}""", "[height, width]")]
    [InlineData("""not json""", "JSON")]
    public void A_bad_profile_is_one_sentence_naming_what_is_wrong(string json, string named)
    {
        var error = Assert.Throws<PipelineInputException>(() => ModelProfile.Parse(json, "m.profile.json"));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains("m.profile.json", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_model_without_a_profile_says_where_to_write_one()
    {
        var error = Assert.Throws<PipelineInputException>(() => ModelProfile.ForModel("/nowhere/net.onnx"));
        Assert.Contains("/nowhere/net.profile.json", error.Message, StringComparison.Ordinal);
    }

}
