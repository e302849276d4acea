using System.CommandLine;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Cli.Commands;

/// <summary>Arguments and options several verbs share, declared once.</summary>
internal static class CommonOptions
{
    public static Argument<string> Model() => new("model") { Description = "Path to an ONNX model file." };

    public static Option<string[]> Input() => new("--input")
    {
        Description = "Input size for a model input, NAME=1,3,224,224 (repeatable); fills dynamic dimensions.",
        AllowMultipleArgumentsPerToken = false,
    };

    public static Option<int> Threads() => new("--threads")
    {
        Description = "ONNX Runtime intra-op threads for measurements.",
        DefaultValueFactory = _ => 1,
    };

    /// <summary>Loads and analyses a model with the user's input sizes.</summary>
    public static ModelAnalysis Analyze(string modelPath, string[]? inputs) =>
        ModelAnalysis.Analyze(OnnxModelFile.Load(modelPath), InputSizes.ParseOverrides(inputs ?? []));

    public static int CheckThreads(int threads) =>
        threads is >= 1 and <= 256 ? threads : throw new PipelineInputException($"--threads must be between 1 and 256, not {threads}.");
}
