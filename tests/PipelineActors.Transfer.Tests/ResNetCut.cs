using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Transfer.Tests;

/// <summary>
/// The zoo ResNet-18 (seeded random weights, not trained) cut after layer3.0 into two ONNX Runtime stages, with real
/// activations of synthetic pictures at the cut: calibration statistics from 8 pictures and 4 further pictures to test.
/// </summary>
public sealed class ResNetCut : IDisposable
{
    public const string CutAfter = "layer3.0.relu2";

    public ResNetCut()
    {
        Analysis = ModelAnalysis.Analyze(ModelZoo.Build("resnet18", seed: 1));
        var cut = Analysis.Cuts.Single(c => c.AfterNode == CutAfter);
        Stages = StageExtractor.Extract(Analysis, [cut.Position]);
        Cargo = Assert.Single(cut.Cargo);
        Upstream = new OrtSession(Stages[0].Model.ToByteArray());
        Downstream = new OrtSession(Stages[1].Model.ToByteArray());

        Calibration = new TensorStatistics(Cargo.Name, 1, (int)Cargo.Shape[1]);
        CalibrationActivations = [.. Enumerable.Range(1, 8).Select(Activation)];
        foreach (var activation in CalibrationActivations)
        {
            Calibration.Add(activation, Cargo.Shape);
        }

        TestActivations = [.. Enumerable.Range(100, 4).Select(Activation)];
    }

    public ModelAnalysis Analysis { get; }

    public IReadOnlyList<StageModel> Stages { get; }

    public IReadOnlyList<float[]> CalibrationActivations { get; }

    public TensorInfo Cargo { get; }

    public OrtSession Upstream { get; }

    public OrtSession Downstream { get; }

    public TensorStatistics Calibration { get; }

    public IReadOnlyList<float[]> TestActivations { get; }

    public float[] Activation(int seed) => Run(Upstream, "input", [1, 3, 224, 224], Picture(seed));

    /// <summary>Runs a one-input, one-output model on float32 values.</summary>
    public static float[] Run(OrtSession runner, string input, long[] shape, float[] values)
    {
        var info = new TensorInfo(input, TensorProto.Types.DataType.Float, shape);
        var outputs = runner.Run(new Dictionary<string, HostTensor> { [input] = new(info, MemoryMarshal.AsBytes(values.AsSpan()).ToArray()) });
        return MemoryMarshal.Cast<byte, float>(outputs.Values.Single().Data).ToArray();
    }

    /// <summary>The downstream stage's logits for an activation at the cut.</summary>
    public float[] Logits(float[] activation) => Run(Downstream, Cargo.Name, Cargo.Shape, activation);

    /// <summary>A synthetic 224x224 picture: smooth colour gradients, a few discs and mild noise, ImageNet-normalised.</summary>
    public static float[] Picture(int seed)
    {
        var random = new Random(seed);
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        var discs = Enumerable.Range(0, 5)
            .Select(_ => (X: random.Next(224), Y: random.Next(224), R: 10 + random.Next(50), C: random.NextSingle()))
            .ToArray();
        var tilt = random.NextSingle();
        var picture = new float[3 * 224 * 224];
        for (var c = 0; c < 3; c++)
        {
            for (var y = 0; y < 224; y++)
            {
                for (var x = 0; x < 224; x++)
                {
                    var v = ((x * tilt) + (y * (1 - tilt))) / 224f * (0.3f + (0.3f * c));
                    foreach (var d in discs)
                    {
                        if (((x - d.X) * (x - d.X)) + ((y - d.Y) * (y - d.Y)) < d.R * d.R)
                        {
                            v = (d.C + (0.2f * c)) % 1f;
                        }
                    }

                    v = Math.Clamp(v + ((random.NextSingle() - 0.5f) * 0.05f), 0f, 1f);
                    picture[(c * 224 * 224) + (y * 224) + x] = (v - mean[c]) / std[c];
                }
            }
        }

        return picture;
    }

    public void Dispose()
    {
        Upstream.Dispose();
        Downstream.Dispose();
    }
}
