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
/// Ends another source after a number of frames (for runs and benchmarks of a long clip or a camera); with
/// <paramref name="skip"/>, first reads past that many (a clip's job resuming where its last run stopped).
/// </summary>
public sealed class LimitedSource(IFrameSource inner, long frames, long skip = 0) : IFrameSource, IReportsFaults
{
    private long _read;
    private long _toSkip = skip;

    public string Id => inner.Id;

    public bool IsLive => inner.IsLive;

    public double FramesPerSecond => inner.FramesPerSecond;

    public bool PacesItself => inner.PacesItself;

    public SourceFaults Faults => inner is IReportsFaults r ? r.Faults : _noFaults ??= new SourceFaults(inner.Id);

    private SourceFaults? _noFaults;

    public IReadOnlyList<HostTensor>? Read()
    {
        for (; _toSkip > 0; _toSkip--)
        {
            if (inner.Read() is null)
            {
                return null;
            }
        }

        return _read++ < frames ? inner.Read() : null;
    }

    public void Dispose() => inner.Dispose();
}
