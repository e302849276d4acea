namespace PipelineActors.Transfer.Codecs;

/// <summary>
/// An encoded tensor that cannot be decoded: truncated, corrupt, of another codec, or larger than the caller allows.
/// The message is one sentence naming what is wrong.
/// </summary>
public sealed class TensorCodecException : Exception
{
    public TensorCodecException(string message)
        : base(message)
    {
    }

    public TensorCodecException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public TensorCodecException()
    {
    }
}
