using Google.Protobuf;
using PipelineActors.Onnx.Stages;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.Tests.DataPath.Stages;

/// <summary>
/// tinynet cut into three stages, picked so the middle stage both computes and forwards a
/// tensor (the residual branch) to the last; stage files are saved in a temporary folder. The
/// tests host the middle stage and feed it frames made by running the first stage.
/// </summary>
public sealed class TinyNetStages : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-stage-").FullName;
    private readonly OrtSession _first;
    private readonly OrtSession _middle;

    public TinyNetStages()
    {
        var analysis = ModelAnalysis.Analyze(ModelZoo.Build("tinynet"));
        var positions = analysis.Cuts.Select(c => c.Position).ToList();
        Stages = positions
            .SelectMany(a => positions.Where(b => b > a).Select(b => StageExtractor.Extract(analysis, [a, b])))
            .First(s => s[1].Forwarded.Count > 0 && s[1].Outputs.Count > 0);

        var middle = Stages[1];
        var bytes = middle.Model.ToByteArray();
        MiddlePath = Path.Combine(_folder, middle.FileName);
        OnnxModelFile.Save(middle.Model, MiddlePath);
        Middle = new StageSpec(
            middle.Index,
            new StageFile(OnnxModelFile.Sha256Hex(bytes), bytes.LongLength),
            middle.Inputs.Select(t => t.Name).ToList(),
            middle.Outputs.Select(t => t.Name).ToList(),
            middle.Forwarded.Select(t => t.Name).ToList(),
            middle.Flops,
            $"{middle.From}..{middle.To - 1}");
        _first = new OrtSession(Stages[0].Model.ToByteArray());
        _middle = new OrtSession(bytes);
    }

    public IReadOnlyList<StageModel> Stages { get; }

    public StageSpec Middle { get; }

    public string MiddlePath { get; }

    /// <summary>The frame the first stage sends the middle one for model input drawn from <paramref name="seed"/>.</summary>
    public Frame FrameFor(long frameId, long epoch, int seed, int attempt = 1)
    {
        var input = Stages[0].Inputs.ToDictionary(i => i.Name, i => HostTensor.Deterministic(i, seed));
        var cargo = _first.Run(input);
        var tensors = Stages[0].Outputs.Select(t => new HostTensor(t.Name, cargo[t.Name].Info.ElementType, cargo[t.Name].Info.Shape,
            cargo[t.Name].Data)).ToList();
        return new Frame(frameId, "camera-" + seed, epoch, 1_700_000_000_000_000 + frameId, attempt, tensors);
    }

    /// <summary>What the middle stage model computes for a frame, by ONNX Runtime directly.</summary>
    public Dictionary<string, HostTensor> Expected(Frame frame) =>
        _middle.Run(frame.Tensors.ToDictionary(t => t.Name, t => new HostTensor(t.Info, t.Data)));

    public void Dispose()
    {
        _first.Dispose();
        _middle.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
