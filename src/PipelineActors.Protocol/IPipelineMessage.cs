using PipelineActors.Protocol.Serialization;

namespace PipelineActors.Protocol;

/// <summary>Every message that may cross the network; each one is also exactly one of the three families below.</summary>
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

/// <summary>A job lifecycle message (submit, stop, list, job hosts' reports); bound to <see cref="JobSerializer"/>.</summary>
public interface IJobMessage : IPipelineMessage
{
}
