using Google.Protobuf;
using PipelineActors.Onnx.Graph;

namespace PipelineActors.Onnx.Stages;

/// <summary>
/// Runs stage models one after another in one process, the tensors of a frame held in a table by
/// name, exactly as the distributed pipeline passes them: the check that a split is faithful.
/// </summary>
public sealed class StageChain : IDisposable
{
    private readonly List<ModelRunner> _runners;

    public StageChain(IEnumerable<byte[]> stageModels, int intraOpThreads = 1, bool optimize = false)
    {
        _runners = stageModels.Select(m => new ModelRunner(m, intraOpThreads, optimize)).ToList();
    }

    public StageChain(IEnumerable<StageModel> stages, int intraOpThreads = 1, bool optimize = false)
        : this(stages.Select(s => s.Model.ToByteArray()), intraOpThreads, optimize)
    {
    }

    /// <summary>Runs every stage; returns every tensor the frame held at the end.</summary>
    public Dictionary<string, HostTensor> Run(IReadOnlyDictionary<string, HostTensor> inputs)
    {
        var frame = new Dictionary<string, HostTensor>(inputs, StringComparer.Ordinal);
        foreach (var runner in _runners)
        {
            foreach (var (name, tensor) in runner.Run(frame))
            {
                frame[name] = tensor;
            }
        }

        return frame;
    }

    /// <summary>
    /// Runs the whole model and the chain on the same deterministic inputs and returns the worst
    /// relative difference over all graph outputs (max |difference| / max |whole-model output|).
    /// </summary>
    public static double CompareWithWholeModel(ModelAnalysis analysis, IReadOnlyList<StageModel> stages, bool optimize = false, int seed = 5)
    {
        var inputs = analysis.Shapes.InputSizes.Select((info, i) => HostTensor.Deterministic(info, seed + i))
            .ToDictionary(t => t.Info.Name, StringComparer.Ordinal);
        using var whole = new ModelRunner(analysis.Graph.Model.ToByteArray(), Math.Max(1, Environment.ProcessorCount), optimize);
        var expected = whole.Run(inputs);
        using var chain = new StageChain(stages, Math.Max(1, Environment.ProcessorCount), optimize);
        var actual = chain.Run(inputs);
        var worst = 0.0;
        foreach (var name in analysis.Graph.OutputNames)
        {
            worst = Math.Max(worst, actual.TryGetValue(name, out var got) ? HostTensor.RelativeDifference(expected[name], got) : double.PositiveInfinity);
        }

        return worst;
    }

    public void Dispose()
    {
        foreach (var runner in _runners)
        {
            runner.Dispose();
        }
    }
}
