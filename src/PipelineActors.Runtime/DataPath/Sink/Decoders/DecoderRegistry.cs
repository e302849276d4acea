using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Sink.Decoders;

/// <summary>The result decoders a model profile can name.</summary>
public static class DecoderRegistry
{
    private static readonly Dictionary<string, Func<IResultDecoder>> Factories = new(StringComparer.Ordinal)
    {
        ["paddleocr-cls"] = () => new TextDirectionDecoder(),
        ["paddleocr-det"] = () => new TextRegionDecoder(),
        ["blazeface"] = () => new BlazeFaceDecoder(),
    };

    public static IReadOnlyCollection<string> Names => Factories.Keys;

    /// <summary>The decoder called <paramref name="name"/>, with its default settings.</summary>
    public static IResultDecoder Get(string name) =>
        Factories.TryGetValue(name, out var make)
            ? make()
            : throw new PipelineInputException($"There is no result decoder named '{name}'; use one of: {string.Join(", ", Factories.Keys)}.");
}
