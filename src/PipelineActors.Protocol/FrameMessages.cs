using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Protocol;

/// <summary>
/// A camera frame on its way through the pipeline: immutable; each stage replaces the tensors
/// it consumed with the ones it produced.
/// </summary>
/// <param name="FrameId">Sequence number the ingest assigned when it accepted the frame (no gaps).</param>
/// <param name="Epoch">Plan epoch the frame was sent under; stages drop frames of older epochs.</param>
/// <param name="CaptureUnixMicros">When the source captured the frame.</param>
/// <param name="Attempt">How many times the ingest has sent this frame (1 = first).</param>
public sealed record Frame(long FrameId, string SourceId, long Epoch, long CaptureUnixMicros, int Attempt, IReadOnlyList<HostTensor> Tensors)
    : IFrameMessage
{
    public long Bytes => Tensors.Sum(t => (long)t.Data.Length);

    public bool Equals(Frame? other) =>
        other is not null && FrameId == other.FrameId && SourceId == other.SourceId && Epoch == other.Epoch
        && CaptureUnixMicros == other.CaptureUnixMicros && Attempt == other.Attempt && Tensors.SequenceEqual(other.Tensors);

    public override int GetHashCode() => HashCode.Combine(FrameId, Epoch, Attempt);
}

/// <summary>
/// A piece of an encoded <see cref="Frame"/>. Large frames cross the network in pieces so that heartbeats sharing the
/// connection are never stuck behind megabytes of tensor data. <see cref="Payload"/> is a slice of one encoded buffer
/// (the sender's, or the array Akka received), never a copy of its own.
/// </summary>
/// <param name="Offset">Where <see cref="Payload"/> starts in the encoded frame.</param>
/// <param name="TotalBytes">The encoded frame's length, so the receiver allocates it whole on the first chunk.</param>
public sealed record FrameChunk(long FrameId, long Epoch, int Attempt, int Index, int Count, int Offset, int TotalBytes, ReadOnlyMemory<byte> Payload)
    : IFrameMessage
{
    public bool Equals(FrameChunk? other) =>
        other is not null && FrameId == other.FrameId && Epoch == other.Epoch && Attempt == other.Attempt && Index == other.Index
        && Count == other.Count && Offset == other.Offset && TotalBytes == other.TotalBytes && Payload.Span.SequenceEqual(other.Payload.Span);

    public override int GetHashCode() => HashCode.Combine(FrameId, Index);
}

/// <summary>
/// Sink to ingest: the sink holds this frame's result (stop re-sending it) and has delivered every frame up to
/// <see cref="DeliveredThrough"/>.
/// </summary>
public sealed record FrameReceived(long FrameId, long DeliveredThrough) : IFrameMessage;

/// <summary>Stage to ingest: this frame made a stage fail (counted towards the poison limit).</summary>
public sealed record FrameRejected(long FrameId, int Attempt, int StageIndex, string Reason) : IFrameMessage;

/// <summary>Ingest to sink: this frame will never have a result; do not wait for it.</summary>
public sealed record FrameFailed(long FrameId, string Reason) : IFrameMessage;
