using Google.Protobuf;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Onnx.Stages;

/// <summary>
/// Runs stage models one after another in one process, the tensors of a frame held in a table by
/// name, exactly as the distributed pipeline passes them: the check that a split is faithful.
/// </summary>
public sealed class StageChain : IDisposable
{
    private readonly List<OrtSession> _runners;

    public StageChain(IEnumerable<byte[]> stageModels, int intraOpThreads = 1, bool optimize = false)
    {
        _runners = stageModels.Select(m => new OrtSession(m, intraOpThreads, optimize)).ToList();
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
    public static double CompareWithWholeModel(ModelAnalysis analysis, IReadOnlyList<StageModel> stages, bool optimize = false, int seed = 5) =>
        new SplitVerifier(analysis, optimize, seed).Check(stages);

    public void Dispose()
    {
        foreach (var runner in _runners)
        {
            runner.Dispose();
        }
    }
}

/// <summary>
/// Checks splits of one model against the whole model's outputs, computed once: max |difference|
/// / max |whole-model output| over every graph output, for the same deterministic input.
/// </summary>
public sealed class SplitVerifier
{
    private readonly Dictionary<string, HostTensor> _inputs;
    private readonly Dictionary<string, HostTensor> _expected;
    private readonly IReadOnlyList<string> _outputs;
    private readonly bool _optimize;

    public SplitVerifier(ModelAnalysis analysis, bool optimize = false, int seed = 5)
    {
        _optimize = optimize;
        _outputs = analysis.Graph.OutputNames;
        _inputs = analysis.Shapes.InputSizes.Select((info, i) => HostTensor.Deterministic(info, seed + i))
            .ToDictionary(t => t.Name, StringComparer.Ordinal);
        using var whole = new OrtSession(analysis.Graph.Model.ToByteArray(), Math.Max(1, Environment.ProcessorCount), optimize);
        _expected = whole.Run(_inputs);
    }

    public IReadOnlyDictionary<string, HostTensor> Expected => _expected;

    public double Check(IReadOnlyList<StageModel> stages)
    {
        using var chain = new StageChain(stages, Math.Max(1, Environment.ProcessorCount), _optimize);
        var actual = chain.Run(_inputs);
        var worst = 0.0;
        foreach (var name in _outputs)
        {
            worst = Math.Max(worst, actual.TryGetValue(name, out var got) ? HostTensor.RelativeDifference(_expected[name], got)
                : double.PositiveInfinity);
        }

        return worst;
    }
}
