using PipelineActors.Protocol.Serialization;

namespace PipelineActors.Protocol;

/// <summary>Every message that may cross the network; each one is also exactly one of the two families below.</summary>
public interface IPipelineMessage
{
}

/// <summary>A message sent once or more per frame; bound to <see cref="FrameSerializer"/>, the hot path.</summary>
public interface IFrameMessage : IPipelineMessage
{
}

/// <summary>A control, file or monitoring message (seconds apart, not per frame); bound to <see cref="ControlSerializer"/>.</summary>
public interface IControlMessage : IPipelineMessage
{
}
