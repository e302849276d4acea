using System.Runtime.InteropServices;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.Transfer.Projection;

namespace PipelineActors.Transfer.Calibration;

/// <summary>
/// Records, frame by frame, what every codec needs to know about the tensors crossing a set of cuts: per-channel
/// statistics of each float32 tensor (the quantisers' clip ranges) and the channel covariance of each float32 NCHW
/// tensor (<c>pca:K</c>). Each frame runs once through the model, split at all the cuts at once and chained in one
/// process, so every cut's tensors come from the same pass.
/// </summary>
public sealed class CutCalibrator : IDisposable
{
    /// <summary>Covariances are kept for tensors of up to this many channels (a 2048 x 2048 sum of doubles is 32 MiB).</summary>
    public const int MaxCovarianceChannels = 2048;

    private readonly StageChain _chain;
    private readonly List<(PipelineActors.Onnx.Cuts.Cut Cut, List<TensorStatistics> Statistics, List<ChannelCovariance?> Covariances)> _boundaries;
    private readonly string? _sourceSha256;

    public CutCalibrator(ModelAnalysis analysis, IReadOnlyList<int> positions, int intraOpThreads = 1)
    {
        var cuts = positions.Distinct().Order().Select(analysis.CutAt).ToList();
        _chain = new StageChain(StageExtractor.Extract(analysis, [.. cuts.Select(c => c.Position)]), intraOpThreads);
        _sourceSha256 = analysis.SourceSha256;
        _boundaries = [.. cuts.Select(cut =>
        {
            var floats = cut.Cargo.Where(t => t.ElementType == TensorProto.Types.DataType.Float).ToList();
            var statistics = floats.Select(t => new TensorStatistics(t.Name, 1, (int)ChannelLayout.Of(t.Shape, 1).Channels)).ToList();
            var covariances = floats.Select(t => t.Shape.Length == 4 && t.Shape[1] <= MaxCovarianceChannels && !t.HasDataDependentSize
                ? new ChannelCovariance((int)t.Shape[1])
                : null).ToList();
            return (cut, statistics, covariances);
        })];
    }

    /// <summary>Frames added so far.</summary>
    public long Frames { get; private set; }

    /// <summary>Runs one frame's model inputs through the chain and adds every cut tensor it carried.</summary>
    public void Add(IReadOnlyDictionary<string, HostTensor> inputs)
    {
        var frame = _chain.Run(inputs);
        foreach (var (_, statistics, covariances) in _boundaries)
        {
            for (var i = 0; i < statistics.Count; i++)
            {
                var tensor = frame[statistics[i].Name];
                var values = MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan());
                statistics[i].Add(values, tensor.Shape);
                covariances[i]?.Add(values, tensor.Shape);
            }
        }

        Frames++;
    }

    /// <summary>The calibration so far, as <c>calibration.json</c> holds it.</summary>
    public CutCalibration Result()
    {
        if (Frames == 0)
        {
            throw new PipelineInputException("The calibration saw no frames; give a source that yields at least one.");
        }

        return new CutCalibration(CutCalibration.CurrentFormat, _sourceSha256, [.. _boundaries.Select(b => new CalibratedBoundary(
            b.Cut.Position,
            b.Cut.AfterNode,
            b.Statistics,
            [.. b.Covariances.Select((c, i) => c?.ToState(b.Statistics[i].Name)).OfType<ChannelCovarianceState>()]))]);
    }

    public void Dispose() => _chain.Dispose();
}
