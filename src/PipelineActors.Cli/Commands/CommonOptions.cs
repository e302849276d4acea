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

    /// <summary><c>--emulate SPEC</c> for run and bench: one slowed device and link per worker.</summary>
    public static Option<string?> Emulate() => new("--emulate")
    {
        Description = "Emulate a slower device and link per worker, entries separated by ';', e.g. \"cpu=1.0;cpu=0.5,link=20,latency=10\": "
            + "cpu=F caps the worker at F cores (cgroups), link=Mbit shapes its traffic in and out (tc tbf on a veth between network "
            + "namespaces), latency=MS is a one-way delay the application adds before each frame the worker sends (netem is missing "
            + "here, so the kernel adds none). One entry per worker; an empty entry is full speed; cpu= and link= need root.",
    };

    /// <summary><c>--first-hop</c> of <c>pipeline run</c> and <c>pipeline job submit</c>.</summary>
    public static Option<string> FirstHop() => new("--first-hop")
    {
        Description = "What the source's pictures cross to the first stage as: raw uint8 pixels, or jpeg[:Q], a JPEG the ingest encodes "
            + "at quality Q (1..100, default 90) and the first stage's node decodes before inference.",
        DefaultValueFactory = _ => Transfer.FirstHop.Raw,
    };

    /// <summary><c>--model</c> of the verbs that read real frames through the model's profile (calibrate, fidelity, quantize).</summary>
    public static Option<string> ProfiledModel() => new("--model")
    {
        Description = "ONNX model with its NAME.profile.json beside it.",
        Required = true,
    };

    /// <summary><c>--source</c> of the verbs that read real frames; <paramref name="purpose"/> says what the frames are for.</summary>
    public static Option<string[]> FrameSources(string purpose) => new("--source")
    {
        Description = $"{purpose}: {Runtime.DataPath.Sources.SourceSpec.Kinds}; repeat it to read several sources in turn.",
        Required = true,
    };

    /// <summary><c>--frames</c>: how many frames of the sources a verb reads.</summary>
    public static Option<int> Frames(string description, int frames) => new("--frames")
    {
        Description = description,
        DefaultValueFactory = _ => frames,
    };

    /// <summary>Loads and analyses a model with the user's input sizes.</summary>
    public static ModelAnalysis Analyze(string modelPath, string[]? inputs) =>
        ModelAnalysis.Analyze(OnnxModelFile.Load(modelPath), InputSizes.ParseOverrides(inputs ?? []));

    public static int CheckThreads(int threads) =>
        threads is >= 1 and <= 256 ? threads : throw new PipelineInputException($"--threads must be between 1 and 256, not {threads}.");
}
