using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Quantization;

/// <summary>A model rewritten to int8 QDQ form, with what was done to it.</summary>
/// <param name="QuantizedNodes">How many Conv, MatMul and Gemm nodes got int8 weights.</param>
/// <param name="FromOpset">The model's default-domain opset before the rewrite (it is 13 or more after).</param>
public sealed record QuantizedModel(ModelProto Model, int QuantizedNodes, int Activations, long FromOpset, long Frames, string Note);

/// <summary>
/// Calibrates activations on real frames through the float model and writes the QDQ int8 form (weights per output
/// channel, activations per tensor), for one model or for every stage of a split.
/// </summary>
public static class ModelQuantizer
{
    /// <summary>
    /// The clip the activation ranges use by default: ACIQ-Laplace, as for the int8 codec. Measured on BlazeFace over 16
    /// Megamind.avi frames (calibrated on the 16 before): face-box F1 against float 0.74 with it, 0.60 with the
    /// 99.99th percentile and 0.17 with plain min/max (whose wide ranges let background scores rise past the threshold).
    /// </summary>
    public const ClipMethod DefaultClip = Clipping.Default;

    /// <summary>Quantises <paramref name="model"/>, calibrated on <paramref name="frames"/> (its inputs by name).</summary>
    public static QuantizedModel Quantize(
        ModelProto model, IEnumerable<IReadOnlyDictionary<string, HostTensor>> frames, string what, ClipMethod clip = DefaultClip, int threads = 1)
    {
        using var stage = new StageQuantizer(model, what, threads);
        foreach (var frame in frames)
        {
            stage.Calibrator.Add(frame);
        }

        return stage.Finish(clip);
    }

    /// <summary>
    /// Quantises each stage of a split, each calibrated on what the float stages before it make of the same frames (as
    /// the pipeline feeds it). A stage with nothing to quantise stays float (null in the result).
    /// </summary>
    public static IReadOnlyList<QuantizedModel?> QuantizeStages(
        IReadOnlyList<ModelProto> stages, IEnumerable<IReadOnlyDictionary<string, HostTensor>> frames, string what,
        ClipMethod clip = DefaultClip, int threads = 1)
    {
        var quantizers = new List<StageQuantizer?>();
        var floatRunners = new List<OrtSession?>();
        try
        {
            for (var i = 0; i < stages.Count; i++)
            {
                StageQuantizer? quantizer = null;
                try
                {
                    quantizer = new StageQuantizer(stages[i], $"{what} stage {i}", threads);
                }
                catch (PipelineInputException) when (!HasTargets(stages[i]))
                {
                    // nothing to quantise in this stage: it runs float, and only feeds the next stage's calibration
                }

                quantizers.Add(quantizer);
                floatRunners.Add(quantizer is null ? new OrtSession(stages[i].ToByteArray(), threads) : null);
            }

            var seen = 0;
            foreach (var frame in frames)
            {
                var table = new Dictionary<string, HostTensor>(frame, StringComparer.Ordinal);
                for (var i = 0; i < stages.Count; i++)
                {
                    var outputs = quantizers[i] is { } q ? q.Calibrator.Add(table) : floatRunners[i]!.Run(table);
                    foreach (var (name, tensor) in outputs)
                    {
                        table[name] = tensor;
                    }
                }

                seen++;
            }

            if (seen == 0)
            {
                throw new PipelineInputException("The calibration saw no frames; give a source that yields at least one.");
            }

            return [.. quantizers.Select(q => q?.Finish(clip))];
        }
        finally
        {
            quantizers.ForEach(q => q?.Dispose());
            floatRunners.ForEach(r => r?.Dispose());
        }
    }

    /// <summary>Median ms per frame over <paramref name="frames"/>, ONNX Runtime's optimisations (its int8 fusions) on, after a warm-up.</summary>
    public static double MillisecondsPerFrame(
        byte[] model, IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> frames, int threads, int rounds = 3)
    {
        using var runner = new OrtSession(model, threads, optimize: true);
        runner.Run(frames[0]);
        runner.Run(frames[0]);
        var times = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            foreach (var frame in frames)
            {
                var watch = Stopwatch.StartNew();
                runner.Run(frame);
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>
    /// The op types ONNX Runtime's CPU provider runs after its graph optimisations (extended level: the QDQ fusions,
    /// without the layout changes of the all level), read back from the optimised model it saves: where the int8
    /// rewrite worked, QLinearConv, QLinearMatMul, QGemm or MatMulIntegerToFloat are among them.
    /// </summary>
    public static IReadOnlyDictionary<string, int> OptimizedOpTypes(byte[] model)
    {
        var path = Path.Combine(Path.GetTempPath(), $"pipelineactors-optimized-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
        try
        {
            var settings = new OrtSessionSettings(1, GraphOptimizationLevel.ORT_ENABLE_EXTENDED) { OptimizedModelPath = path };

            // Opening the session is what writes the optimised model.
            new OrtSession(model, settings).Dispose();

            var optimized = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            return optimized.Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The int8 kernels among <see cref="OptimizedOpTypes"/>, with their counts ("QLinearConv x 20, ...").</summary>
    public static string Int8Kernels(IReadOnlyDictionary<string, int> opTypes)
    {
        string[] int8 = ["QLinearConv", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "ConvInteger", "MatMulInteger", "QLinearAdd"];
        var found = int8.Where(opTypes.ContainsKey).Select(k => $"{k} x {opTypes[k].ToString(CultureInfo.InvariantCulture)}").ToList();
        return found.Count == 0 ? "none" : string.Join(", ", found);
    }

    private static bool HasTargets(ModelProto model)
    {
        try
        {
            QdqRewrite.Targets(model, "stage");
            return true;
        }
        catch (PipelineInputException)
        {
            return false;
        }
    }

    /// <summary>One model's quantisation under way: its targets, checked opset, and calibrator.</summary>
    private sealed class StageQuantizer : IDisposable
    {
        private readonly ModelProto _model;
        private readonly string _what;
        private readonly int _folded;
        private readonly IReadOnlyList<QdqTarget> _targets;
        private readonly IReadOnlyList<string> _activations;

        public StageQuantizer(ModelProto model, string what, int threads)
        {
            _what = what;
            QdqRewrite.Targets(model, what); // nothing to quantise: refused before anything else
            OpsetUpgrade.Upgrade(model, null, what); // refuses an opset it cannot raise before any frame is run
            (_model, _folded) = BatchNormFolding.Fold(model);
            _targets = QdqRewrite.Targets(_model, what);
            _activations = QdqRewrite.ActivationTensors(_model, _targets);
            Calibrator = new ActivationCalibrator(_model, _activations.Concat(OpsetUpgrade.TensorsNeedingRank(_model)), threads);
        }

        public ActivationCalibrator Calibrator { get; }

        public QuantizedModel Finish(ClipMethod clip)
        {
            if (Calibrator.Frames == 0)
            {
                throw new PipelineInputException("The calibration saw no frames; give a source that yields at least one.");
            }

            var from = OpsetUpgrade.Opset(_model);
            var upgraded = OpsetUpgrade.Upgrade(_model, Calibrator.Rank, _what);
            var note = FormattableString.Invariant(
                $"qdq int8: {_targets.Count} Conv/MatMul/Gemm nodes with int8 weights per output channel (symmetric) and int32 biases, ")
                + FormattableString.Invariant($"{_activations.Count} activations uint8 per tensor ({clip} over {Calibrator.Frames} frames); ")
                + (_folded > 0 ? FormattableString.Invariant($"{_folded} BatchNormalization folded into their Conv; ") : "")
                + FormattableString.Invariant($"opset {from}{(from < OpsetUpgrade.Target ? $" raised to {OpsetUpgrade.Target}" : "")}");
            var rewritten = QdqRewrite.Rewrite(upgraded, _targets, Calibrator.Scales(clip), note);
            return new QuantizedModel(rewritten, _targets.Count, _activations.Count, from, Calibrator.Frames, note);
        }

        public void Dispose() => Calibrator.Dispose();
    }
}
