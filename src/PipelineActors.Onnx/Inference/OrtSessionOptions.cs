using Microsoft.ML.OnnxRuntime;
using PipelineActors.Onnx;

namespace PipelineActors.Onnx.Inference;

/// <summary>The ONNX Runtime session settings every runner here uses: threads set explicitly, sequential, quiet, no spinning.</summary>
public static class OrtSessionOptions
{
    public static SessionOptions Create(int intraOpThreads, bool optimize)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL,
            IntraOpNumThreads = intraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };

        // Nodes share cores with other nodes and with Akka's threads: an idle pool must not spin.
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        options.AddSessionConfigEntry("session.inter_op.allow_spinning", "0");
        return options;
    }
}
