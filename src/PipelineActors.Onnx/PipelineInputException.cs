using PipelineActors.Onnx.Inference;
namespace PipelineActors.Onnx;

/// <summary>
/// A problem the user caused and can fix (a missing file, a model that is not ONNX, a cut that
/// does not exist). The message is one sentence naming the thing and the fix; front ends print
/// it without a stack trace.
/// </summary>
public sealed class PipelineInputException : Exception
{
    public PipelineInputException(string message)
        : base(message)
    {
    }

    public PipelineInputException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public PipelineInputException()
    {
    }
}
