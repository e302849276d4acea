using System.Diagnostics;
using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Transfer;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;
using PipelineActors.Transfer.Projection;

namespace PipelineActors.Cli.Commands;

/// <summary>One tensor on one hop: the name it has on the wire, the cut tensor it stands for, and how it is coded.</summary>
internal sealed record WireTensor(int Link, string Name, string CutTensor, ITensorCodec? Codec);

/// <summary>
/// The pipeline split at some cuts, with a transfer spec applied on every hop: stage models rewritten for pca:K or
/// pool2, and every tensor crossing a hop encoded and decoded as it would be on the wire, in one process.
/// </summary>
internal sealed class CodecPipeline : IDisposable
{
    private readonly List<OrtSession> _stages;
    private readonly List<List<WireTensor>> _links;
    private readonly IReadOnlyList<string> _outputs;

    private CodecPipeline(List<OrtSession> stages, List<List<WireTensor>> links, IReadOnlyList<string> outputs, long rawBytes)
    {
        _stages = stages;
        _links = links;
        _outputs = outputs;
        RawBytesPerFrame = rawBytes;
    }

    /// <summary>Bytes the hops' cut tensors take per frame as they are (float32, uncompressed): the ratio's baseline.</summary>
    public long RawBytesPerFrame { get; }

    /// <summary>Notes on what the layer did (explained variance of pca, tensors it could not go on).</summary>
    public List<string> Notes { get; } = [];

    /// <summary>
    /// Builds the pipeline for <paramref name="spec"/>: pca is fitted on <paramref name="calibration"/>'s covariances, and
    /// quantisers on statistics of the tensors actually on the wire, taken from <paramref name="calibrationFrames"/>.
    /// </summary>
    public static CodecPipeline Build(
        ModelAnalysis analysis, IReadOnlyList<int> positions, TransferSpec spec, CutCalibration calibration,
        IReadOnlyList<Dictionary<string, HostTensor>> calibrationFrames, int threads)
    {
        var stages = StageExtractor.Extract(analysis, positions);
        var models = stages.Select(s => s.Model).ToList();
        var wires = new List<List<(string Name, string CutTensor, bool Float)>>();
        var notes = new List<string>();
        long raw = 0;
        for (var link = 0; link < stages.Count - 1; link++)
        {
            var cut = analysis.CutAt(stages[link + 1].From);
            raw += cut.Bytes;
            var next = cut.Position;
            var later = link + 2 < stages.Count ? analysis.CutAt(stages[link + 2].From).Cargo.Select(t => t.Name).ToHashSet() : [];
            var tensors = new List<(string, string, bool)>();
            foreach (var t in cut.Cargo)
            {
                var isFloat = t.ElementType == TensorProto.Types.DataType.Float;
                var layerFits = isFloat && t.Shape.Length == 4 && !t.HasDataDependentSize && !later.Contains(t.Name)
                    && stages[link].Outputs.Any(o => o.Name == t.Name) && stages[link + 1].Inputs.Any(i => i.Name == t.Name);
                if (spec.Layer == TransferLayer.None || !layerFits)
                {
                    if (spec.Layer != TransferLayer.None)
                    {
                        notes.Add($"{spec.Text.Split('+')[0]} cannot go on '{t.Name}' at cut {next} (not a float32 NCHW tensor made by one stage "
                            + "and read by the next), so it travels with the codec alone");
                    }

                    tensors.Add((t.Name, t.Name, isFloat));
                    continue;
                }

                if (spec.Layer == TransferLayer.Pool2)
                {
                    (models[link], models[link + 1]) = CutRewrites.Pool2(models[link], models[link + 1], t.Name, t.Shape);
                    tensors.Add(($"{t.Name}.pool2", t.Name, true));
                }
                else
                {
                    if (spec.Components > t.Shape[1])
                    {
                        throw new PipelineInputException(
                            $"{spec.Text.Split('+')[0]} keeps more channels than '{t.Name}' at cut {next} has ({t.Shape[1]}); "
                            + "give pca:K with K below that.");
                    }

                    var projection = calibration.CovarianceFor(next, t.Name).Fit(spec.Components);
                    notes.Add(
                        $"pca:{spec.Components} on '{t.Name}' at cut {next} keeps {projection.ExplainedVariance:P2} of the calibration variance");
                    (models[link], models[link + 1]) = CutRewrites.Pca(models[link], models[link + 1], t.Name, projection, t.Shape);
                    tensors.Add(($"{t.Name}.pca{spec.Components}", t.Name, true));
                }
            }

            wires.Add(tensors);
        }

        var runners = models.Select(m => new OrtSession(m.ToByteArray(), threads)).ToList();
        var statistics = spec.IsExact || !TensorCodecs.NeedsStatistics(spec.Codec)
            ? null
            : WireStatistics(runners, wires, calibrationFrames);
        var links = wires.Select((tensors, link) => tensors.Select(w => new WireTensor(
            link,
            w.Name,
            w.CutTensor,
            !w.Float || spec.IsExact ? null : TensorCodecs.Create(spec.Codec, statistics?[w.Name]))).ToList()).ToList();
        var pipeline = new CodecPipeline(runners, links, analysis.Graph.OutputNames, raw);
        pipeline.Notes.AddRange(notes.Distinct());
        return pipeline;
    }

    /// <summary>Runs one frame; returns the model's outputs and adds what each hop cost to <paramref name="cost"/>.</summary>
    public Dictionary<string, HostTensor> Run(IReadOnlyDictionary<string, HostTensor> inputs, HopCost cost)
    {
        var frame = new Dictionary<string, HostTensor>(inputs, StringComparer.Ordinal);
        for (var i = 0; i < _stages.Count; i++)
        {
            foreach (var (name, tensor) in _stages[i].Run(frame))
            {
                frame[name] = tensor;
            }

            if (i == _links.Count)
            {
                break;
            }

            // Only what crosses the hop reaches the next stage, and it arrives as the decoder gives it back.
            var arriving = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            foreach (var wire in _links[i])
            {
                arriving[wire.Name] = Carry(frame[wire.Name], wire.Codec, cost);
            }

            frame = arriving;
        }

        return _outputs.ToDictionary(o => o, o => frame[o], StringComparer.Ordinal);
    }

    public void Dispose() => _stages.ForEach(s => s.Dispose());

    private static HostTensor Carry(HostTensor tensor, ITensorCodec? codec, HopCost cost)
    {
        var watch = Stopwatch.StartNew();
        if (codec is null)
        {
            // The pipeline's exact format: zero suppression where it saves an eighth, raw bytes otherwise.
            var suppressed = ZeroSuppression.EncodedLength(tensor.ElementType, tensor.Data);
            if (suppressed < 0)
            {
                cost.Add(tensor.Data.Length, 0, 0);
                return tensor;
            }

            var buffer = new byte[suppressed];
            ZeroSuppression.Encode(tensor.ElementType, tensor.Data, buffer);
            var encodeMs = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            var data = ZeroSuppression.Decode(tensor.ElementType, buffer, tensor.Data.Length);
            cost.Add(suppressed, encodeMs, watch.Elapsed.TotalMilliseconds);
            return tensor with { Data = data };
        }

        var encoded = codec.Encode(MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan()), tensor.Shape);
        var encodeTime = watch.Elapsed.TotalMilliseconds;
        watch.Restart();
        var decoded = codec.Decode(encoded, DecodeLimits.For(tensor.Shape));
        var decodeTime = watch.Elapsed.TotalMilliseconds;
        cost.Add(encoded.Length, encodeTime, decodeTime);
        return new HostTensor(tensor.Info, MemoryMarshal.AsBytes(decoded.Values.AsSpan()).ToArray());
    }

    /// <summary>Statistics of every float tensor on the wire over the calibration frames, run through the rewritten stages uncoded.</summary>
    private static Dictionary<string, TensorStatistics> WireStatistics(
        List<OrtSession> runners,
        List<List<(string Name, string CutTensor, bool Float)>> wires,
        IReadOnlyList<Dictionary<string, HostTensor>> frames)
    {
        var statistics = new Dictionary<string, TensorStatistics>(StringComparer.Ordinal);
        foreach (var inputs in frames)
        {
            var frame = new Dictionary<string, HostTensor>(inputs, StringComparer.Ordinal);
            foreach (var runner in runners)
            {
                foreach (var (name, tensor) in runner.Run(frame))
                {
                    frame[name] = tensor;
                }
            }

            foreach (var (name, _, _) in wires.SelectMany(w => w).Where(w => w.Float))
            {
                var tensor = frame[name];
                var values = MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan());
                if (!statistics.TryGetValue(name, out var s))
                {
                    s = statistics[name] = new TensorStatistics(name, 1, (int)ChannelLayout.Of(tensor.Shape, 1).Channels);
                }

                s.Add(values, tensor.Shape);
            }
        }

        return statistics;
    }
}

/// <summary>What the hops of one frame, or of many, cost: bytes on the wire and codec time.</summary>
internal sealed class HopCost
{
    public long Bytes { get; private set; }

    public double EncodeMs { get; private set; }

    public double DecodeMs { get; private set; }

    public void Add(long bytes, double encodeMs, double decodeMs)
    {
        Bytes += bytes;
        EncodeMs += encodeMs;
        DecodeMs += decodeMs;
    }
}
