using PipelineActors.Onnx.Graph;
using PipelineActors.TestSupport;

namespace PipelineActors.Onnx.Tests;

/// <summary>Finds the repository's bundled models and gives the input sizes they are tested at.</summary>
public static class TestModels
{
    public static string RepositoryRoot => RepositoryFiles.Root;

    public static string ModelsFolder => Path.Combine(RepositoryRoot, "models");

    /// <summary>Bundled real models with the input sizes used in tests (dynamic dimensions filled in).</summary>
    public static TheoryData<string, string> Bundled => new()
    {
        { "paddleocr-textdir-cls.onnx", "x=1,3,48,192" },
        { "paddleocr-text-det.onnx", "x=1,3,160,160" },
        { "blazeface-back-256.onnx", "" },
    };

    public static IReadOnlyDictionary<string, long[]> Sizes(string spec) =>
        InputSizes.ParseOverrides(spec.Length == 0 ? [] : spec.Split(' '));

}
