using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Sources;

/// <summary>
/// Where frames come from, read on a thread of the ingest's <c>SourceReader</c>, never on the ingest's
/// own. A live source (a camera) captures on its own clock: when the pipeline is full the oldest
/// frame not yet sent gives way and is counted as skipped. Any other source (a file, a synthetic
/// clip) is read at most one frame ahead of the pipeline's room, and drops nothing.
/// </summary>
public interface IFrameSource : IDisposable
{
    string Id { get; }

    bool IsLive { get; }

    /// <summary>
    /// Capture rate of a live source, or the rate a clip is played at (never faster, slower when the
    /// pipeline is full); 0 for as fast as the pipeline takes frames.
    /// </summary>
    double FramesPerSecond { get; }

    /// <summary>
    /// True when <see cref="Read"/> itself waits for the next frame on the source's clock (a camera,
    /// a video played in real time), so the reader adds no wait: the source's real rate paces the stream.
    /// </summary>
    bool PacesItself => false;

    /// <summary>The next frame's tensors (named as the first stage's inputs), or null when the source has ended.</summary>
    IReadOnlyList<HostTensor>? Read();
}
