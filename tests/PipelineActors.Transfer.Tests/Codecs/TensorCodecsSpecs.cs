using PipelineActors.Onnx;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>Codecs by name: every name encodes, a bare decoder reads what it wrote, and bad names or missing calibration are clear errors.</summary>
public sealed class TensorCodecsSpecs
{
    [Theory]
    [InlineData("lz4")]
    [InlineData("fp16")]
    [InlineData("int8")]
    [InlineData("int4")]
    [InlineData("int8:percentile")]
    [InlineData("int4:aciq-gauss")]
    [InlineData("int4:minmax")]
    [InlineData("int8:aciq-laplace")]
    [InlineData("zstd")]
    [InlineData("fp16+zstd")]
    [InlineData("int8+zstd")]
    [InlineData("int4:percentile+zstd")]
    public void A_codec_made_by_name_round_trips_through_a_decoder_made_by_name(string spec)
    {
        long[] shape = [1, 8, 6, 6];
        var values = TestTensors.PostRelu(shape, seed: 30);
        var encoder = TensorCodecs.Create(spec, TensorStatistics.Of("t", values, shape));

        var decoded = TensorCodecs.Decoder(spec).Decode(encoder.Encode(values, shape), DecodeLimits.For(shape));

        Assert.Equal(spec.Split(':')[0].Split('+')[0] + (spec.EndsWith("+zstd", StringComparison.Ordinal) ? "+zstd" : ""), encoder.Name);
        TestTensors.AssertKeepsPromise(encoder, values, shape, decoded.Values);
    }

    [Theory]
    [InlineData("brotli", "There is no codec named 'brotli'; use one of: lz4, zstd, fp16, int8, int4.")]
    [InlineData("lz4+zstd", "'lz4+zstd' is not a codec: +zstd goes after fp16, int8 or int4")]
    [InlineData("fp16:percentile", "'fp16:percentile' is not a codec: only int8 and int4 take a clip")]
    [InlineData("int4:median", "'int4:median' is not a codec")]
    public void An_unknown_codec_or_clip_is_an_input_error_naming_the_choices(string spec, string message)
    {
        var error = Assert.Throws<PipelineInputException>(() => TensorCodecs.Create(spec, null));
        Assert.StartsWith(message, error.Message);
    }

    [Fact]
    public void A_quantiser_without_calibration_statistics_is_an_input_error()
    {
        var error = Assert.Throws<PipelineInputException>(() => TensorCodecs.Create("int8", null));
        Assert.Contains("needs calibration statistics", error.Message);
    }
}
