using PipelineActors.Onnx;

namespace PipelineActors.Transfer.Tests;

/// <summary>Transfer specs as flags spell them: a layer, a codec, or both, and clear errors for what is neither.</summary>
public sealed class TransferSpecSpecs
{
    [Theory]
    [InlineData("exact", TransferLayer.None, 0, "exact")]
    [InlineData("int8", TransferLayer.None, 0, "int8")]
    [InlineData("int4:percentile+zstd", TransferLayer.None, 0, "int4:percentile+zstd")]
    [InlineData("pca:32", TransferLayer.Pca, 32, "exact")]
    [InlineData("pca:32+int8", TransferLayer.Pca, 32, "int8")]
    [InlineData("pca:8+int8+zstd", TransferLayer.Pca, 8, "int8+zstd")]
    [InlineData("pool2", TransferLayer.Pool2, 0, "exact")]
    [InlineData("pool2+fp16", TransferLayer.Pool2, 0, "fp16")]
    public void A_spec_names_its_layer_and_the_codec_for_what_the_layer_leaves(string text, TransferLayer layer, int components, string codec)
    {
        var spec = TransferSpec.Parse(text);

        Assert.Equal(layer, spec.Layer);
        Assert.Equal(components, spec.Components);
        Assert.Equal(codec, spec.Codec);
        Assert.Equal(codec == TransferSpec.Exact, spec.IsExact);
    }

    [Theory]
    [InlineData("brotli", "There is no codec named 'brotli'; give one of exact, lz4")]
    [InlineData("pca:0", "'pca:0' is not a codec: pca takes a channel count")]
    [InlineData("pca:x+int8", "'pca:x+int8' is not a codec: pca takes a channel count")]
    [InlineData("pool3", "There is no codec named 'pool3'")]
    [InlineData("pca:8+gzip", "There is no codec named 'pca:8+gzip'")]
    [InlineData("int8:median", "'int8:median' is not a codec: only int8 and int4 take a clip")]
    [InlineData("", "The codec is empty")]
    public void Anything_else_is_an_input_error_naming_the_choices(string text, string message)
    {
        var error = Assert.Throws<PipelineInputException>(() => TransferSpec.Parse(text));
        Assert.StartsWith(message, error.Message);
    }
}
