using System.Runtime.InteropServices;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Transfer;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.ControlPath.Planning;

/// <summary>
/// Puts one codec on every cut of every split of a prepared model: each float32 tensor a stage sends to a later stage
/// (model outputs excepted: the sink reads those) is encoded by the sending stage and decoded by each stage that reads
/// it, where that pays: a tensor whose encoded frames were not smaller than its exact ones over the calibration frames
/// (a 16-float vector, whose codec header and per-channel scales outweigh it) stays exact. The quantisers are calibrated
/// here, once, on frames run through the very stage files the workers host, and ride in the plan's
/// <see cref="StageSpec"/>s, so every node encodes with the same scales whichever split is live.
/// </summary>
public static class CutCodecPlan
{
    /// <summary>Frames calibrated on when the caller does not say (as <c>pipeline fidelity</c> does).</summary>
    public const int DefaultCalibrationFrames = 16;

    /// <summary>
    /// Checks a codec as <c>pipeline run --codec</c> takes it: the names <c>pipeline fidelity --codec</c> accepts, a layer
    /// (pca:K, pool2) included, which <see cref="CutLayerPlan.Apply"/> rewrites into the stage files. Returns the codec.
    /// </summary>
    public static TransferSpec Parse(string codec) => TransferSpec.Parse(codec);

    /// <summary>
    /// <paramref name="prepared"/> with <paramref name="codec"/> on every cut; the exact codec leaves it as it is. The
    /// quantisers' statistics come from <paramref name="calibration"/>'s frames (first-stage inputs, as the ingest sends them).
    /// </summary>
    public static PreparedModel Apply(PreparedModel prepared, TransferSpec codec, IFrameSource calibration, int frames, int intraOpThreads = 1)
    {
        if (codec.Layer != TransferLayer.None)
        {
            throw new ArgumentException($"{codec.Text} has a layer, which CutLayerPlan.Apply rewrites into the stages first.", nameof(codec));
        }

        if (codec.IsExact)
        {
            return prepared;
        }

        var samples = new List<IReadOnlyList<HostTensor>>();
        while (samples.Count < frames && calibration.Read() is { } sample)
        {
            samples.Add(sample);
        }

        if (samples.Count == 0)
        {
            throw new PipelineInputException($"The source gave no frame to calibrate the {codec.Text} codec on; give a source with frames.");
        }

        var modelOutputs = prepared.Analysis.Graph.OutputNames.ToHashSet(StringComparer.Ordinal);
        var statistics = new Dictionary<string, TensorStatistics>(StringComparer.Ordinal);
        var seen = new Dictionary<string, List<HostTensor>>(StringComparer.Ordinal);
        var pays = new Dictionary<string, CutCodec?>(StringComparer.Ordinal);
        var needsStatistics = TensorCodecs.NeedsStatistics(codec.Codec);
        var splits = new List<SplitPlan>();
        foreach (var split in prepared.Splits)
        {
            if (split.Parts == 1)
            {
                splits.Add(split);
                continue;
            }

            var coded = Calibrate(prepared, split, samples, modelOutputs, statistics, seen, needsStatistics, intraOpThreads);
            var encodes = coded.Select(names => names
                .Select(name => pays.TryGetValue(name, out var known)
                    ? known
                    : pays[name] = WherePays(CutCodecFor(codec.Codec, name, statistics.GetValueOrDefault(name)), seen[name]))
                .OfType<CutCodec>()
                .ToList()).ToList();
            splits.Add(split with { Stages = WithCodes(split, encodes) });
        }

        return prepared with { Splits = splits };
    }

    /// <summary>The split's stages with each hop's codes: the stage before a hop encodes, every stage that reads a coded tensor decodes it.</summary>
    internal static List<StageSpec> WithCodes(SplitPlan split, IReadOnlyList<IReadOnlyList<CutCodec>> encodes) =>
        [.. split.Stages.Select(stage =>
        {
            IReadOnlyList<CutCodec> own = stage.Index < encodes.Count ? encodes[stage.Index] : [];
            var upstream = encodes.Take(stage.Index).SelectMany(e => e).Where(c => stage.Inputs.Contains(c.Tensor))
                .Select(c => c.ForDecoding()).ToList();
            // None is null, as the wire reads it back: the exact wire.
            return stage with { Encodes = own.Count > 0 ? [.. own] : null, Decodes = upstream.Count > 0 ? upstream : null };
        })];

    /// <summary>
    /// Runs the frames through the split's stages as the actors would (each stage's outputs plus what it forwards) and
    /// returns, per stage, the float32 tensors it sends on; where no other split measured them already, the tensors are
    /// kept in <paramref name="seen"/> (to weigh the codec against) and their statistics added to <paramref name="statistics"/>.
    /// </summary>
    private static List<List<string>> Calibrate(
        PreparedModel prepared, SplitPlan split, List<IReadOnlyList<HostTensor>> samples, HashSet<string> modelOutputs,
        Dictionary<string, TensorStatistics> statistics, Dictionary<string, List<HostTensor>> seen, bool needsStatistics, int intraOpThreads)
    {
        var sessions = split.Stages.Select(s => new StageSession(File.ReadAllBytes(prepared.FilesBySha[s.File.Sha256]), intraOpThreads)).ToList();
        try
        {
            var coded = split.Stages.Select(_ => new List<string>()).ToList();
            var measured = new HashSet<string>(seen.Keys, StringComparer.Ordinal);
            foreach (var (sample, n) in samples.Select((s, n) => (s, n)))
            {
                IReadOnlyList<HostTensor> frame = sample;
                for (var i = 0; i < split.Stages.Count - 1; i++)
                {
                    var stage = split.Stages[i];
                    var produced = sessions[i].Run(frame);
                    foreach (var tensor in produced.Where(t => t.ElementType == TensorProto.Types.DataType.Float && !modelOutputs.Contains(t.Name)))
                    {
                        if (n == 0)
                        {
                            coded[i].Add(tensor.Name);
                        }

                        if (measured.Contains(tensor.Name))
                        {
                            continue;
                        }

                        if (!seen.TryGetValue(tensor.Name, out var kept))
                        {
                            kept = seen[tensor.Name] = [];
                        }

                        kept.Add(tensor);
                        if (needsStatistics)
                        {
                            if (!statistics.TryGetValue(tensor.Name, out var s))
                            {
                                s = statistics[tensor.Name] = new TensorStatistics(
                                    tensor.Name, 1, (int)ChannelLayout.Of(tensor.Shape, 1).Channels);
                            }

                            s.Add(MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan()), tensor.Shape);
                        }
                    }

                    frame = [.. produced, .. frame.Where(t => stage.Forwarded.Contains(t.Name))];
                }
            }

            return coded;
        }
        finally
        {
            sessions.ForEach(s => s.Dispose());
        }
    }

    /// <summary><paramref name="cut"/> when its frames over <paramref name="samples"/> take fewer bytes encoded than exact; null otherwise.</summary>
    private static CutCodec? WherePays(CutCodec cut, List<HostTensor> samples)
    {
        var coding = CutCoding.Encoding([cut]);
        long exact = 0, encoded = 0;
        foreach (var tensor in samples)
        {
            exact += FrameCodec.EncodedLength(new Frame(0, string.Empty, 0, 0, 1, [tensor]));
            encoded += FrameCodec.EncodedLength(new Frame(0, string.Empty, 0, 0, 1, coding.Encode([tensor])));
        }

        return encoded < exact ? cut : null;
    }

    /// <summary>The cut codec for <paramref name="tensor"/>, its quantisers (int8, int4) from <paramref name="statistics"/>.</summary>
    internal static CutCodec CutCodecFor(string codec, string tensor, TensorStatistics? statistics)
    {
        if (TensorCodecs.Create(codec, statistics) is QuantizedCodec quantized)
        {
            return new CutCodec(tensor, codec, quantized.ChannelAxis, [.. quantized.Channels.Select(c => c.Scale)],
                [.. quantized.Channels.Select(c => c.ZeroPoint)]);
        }

        return new CutCodec(tensor, codec, 1, [], []);
    }
}
