using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Harness.Chaos;

/// <summary>
/// An endless source that ends when told: the chaos soak streams for its minutes, then ends the source so that the run
/// finishes the way any run does (every frame in has an outcome) and the audit can give its verdict.
/// </summary>
public sealed class EndableSource(IFrameSource inner) : IFrameSource, IReportsFaults
{
    private SourceFaults? _noFaults;
    private volatile bool _ended;

    public string Id => inner.Id;

    public bool IsLive => inner.IsLive;

    public double FramesPerSecond => inner.FramesPerSecond;

    public bool PacesItself => inner.PacesItself;

    public SourceFaults Faults => inner is IReportsFaults r ? r.Faults : _noFaults ??= new SourceFaults(inner.Id);

    /// <summary>True once <see cref="End"/> was called.</summary>
    public bool Ended => _ended;

    /// <summary>Reads of the reader threads return null from now on (safe from any thread).</summary>
    public void End() => _ended = true;

    public IReadOnlyList<HostTensor>? Read() => _ended ? null : inner.Read();

    public void Dispose() => inner.Dispose();
}
