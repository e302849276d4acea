using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Transfer;
using PipelineActors.Transfer.Projection;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.ControlPath.Planning;

/// <summary>
/// Puts a transfer layer (<c>pca:K</c>, <c>pool2</c>) on every cut of every split of a prepared model, then the wire codec
/// after it through <see cref="CutCodecPlan"/>. The layer is rewritten into the stage files themselves: the stage before a
/// cut gets the down-projection appended and sends the smaller tensor (<c>{tensor}.pca{K}</c>, <c>{tensor}.pool2</c>), the
/// stage after gets the inverse prepended and declares that tensor as its input, so its plan-input check holds frames to
/// the reduced shape. The rewritten stages are new files with their own SHA-256, stored beside the exact ones. A cut tensor
/// the layer cannot go on (not a float32 NCHW tensor made by one stage and read only by the next, or a model output)
/// crosses as it is, with the codec alone, as <c>pipeline fidelity</c> does.
/// </summary>
public static class CutLayerPlan
{
    /// <summary>
    /// <paramref name="prepared"/> with <paramref name="spec"/>'s layer and codec on every cut. pca is fitted on
    /// <paramref name="calibration"/>'s first <paramref name="frames"/> frames run through the exact stages, and the codec is
    /// calibrated on the same frames run through the rewritten ones (so its scales are the reduced tensor's).
    /// </summary>
    public static PreparedModel Apply(PreparedModel prepared, TransferSpec spec, IFrameSource calibration, int frames, int intraOpThreads = 1)
    {
        if (spec.Layer == TransferLayer.None)
        {
            return CutCodecPlan.Apply(prepared, spec, calibration, frames, intraOpThreads);
        }

        var samples = new List<IReadOnlyList<HostTensor>>();
        while (samples.Count < frames && calibration.Read() is { } sample)
        {
            samples.Add(sample);
        }

        if (samples.Count == 0)
        {
            throw new PipelineInputException($"The source gave no frame to calibrate the {spec.Text} layer on; give a source with frames.");
        }

        var layered = WithLayer(prepared, spec, samples, intraOpThreads);
        if (spec.IsExact)
        {
            return layered;
        }

        using var replay = new ReplayedFrames(calibration.Id, samples);
        return CutCodecPlan.Apply(layered, TransferSpec.Parse(spec.Codec), replay, samples.Count, intraOpThreads);
    }

    private static PreparedModel WithLayer(PreparedModel prepared, TransferSpec spec, List<IReadOnlyList<HostTensor>> samples, int intraOpThreads)
    {
        var modelOutputs = prepared.Analysis.Graph.OutputNames.ToHashSet(StringComparer.Ordinal);
        var store = Path.GetDirectoryName(prepared.FilesBySha.Values.First())!;
        var files = new Dictionary<string, string>(prepared.FilesBySha, StringComparer.Ordinal);
        var covariances = new Dictionary<string, ChannelCovariance>(StringComparer.Ordinal);
        var projections = new Dictionary<string, ChannelProjection>(StringComparer.Ordinal);
        var splits = new List<SplitPlan>();
        foreach (var split in prepared.Splits)
        {
            if (split.Parts == 1)
            {
                splits.Add(split);
                continue;
            }

            var layerTensors = LayerTensors(split, modelOutputs);
            // pool2 needs only the shapes, which one frame gives; pca the covariance over every calibration frame.
            var shapes = Measure(prepared, split, spec.Layer == TransferLayer.Pca ? samples : samples.Take(1).ToList(), layerTensors,
                spec.Layer == TransferLayer.Pca ? covariances : null, projections.Keys.ToHashSet(StringComparer.Ordinal), intraOpThreads);
            var models = split.Stages.Select(s => OnnxModelFile.Parse(File.ReadAllBytes(prepared.FilesBySha[s.File.Sha256]), s.File.Sha256)).ToList();
            var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var link = 0; link < layerTensors.Count; link++)
            {
                foreach (var tensor in layerTensors[link])
                {
                    var shape = shapes[tensor];
                    if (spec.Layer == TransferLayer.Pool2)
                    {
                        if (shape[2] < 2 || shape[3] < 2)
                        {
                            // A 2x2 pool halves nothing here (a 1x1 map stays 1x1) and the renamed tensor only adds its
                            // name's bytes to every frame: seen as 181 bytes against 175 exact on tinynet's last cut.
                            continue;
                        }

                        (models[link], models[link + 1]) = CutRewrites.Pool2(models[link], models[link + 1], tensor, shape);
                        renamed[tensor] = $"{tensor}.pool2";
                        continue;
                    }

                    if (spec.Components > shape[1])
                    {
                        throw new PipelineInputException(
                            $"{spec.Text.Split('+')[0]} keeps more channels than '{tensor}' at the cut after stage {link} of the {split.Parts}-part "
                            + $"split has ({shape[1]}); give pca:K with K at most {shape[1]}.");
                    }

                    if (!projections.TryGetValue(tensor, out var projection))
                    {
                        projection = projections[tensor] = covariances[tensor].Fit(spec.Components);
                    }

                    (models[link], models[link + 1]) = CutRewrites.Pca(models[link], models[link + 1], tensor, projection, shape);
                    renamed[tensor] = $"{tensor}.pca{spec.Components}";
                }
            }

            var stages = split.Stages.Select((stage, i) =>
            {
                if (models[i].MetadataProps.All(p => p.Key != CutRewrites.TransferKey))
                {
                    return stage;
                }

                var bytes = models[i].ToByteArray();
                var sha = OnnxModelFile.Sha256Hex(bytes);
                files[sha] = Store(store, sha, bytes);
                return stage with
                {
                    File = new StageFile(sha, bytes.LongLength),
                    Inputs = stage.Inputs.Select(n => renamed.GetValueOrDefault(n, n)).ToList(),
                    Outputs = stage.Outputs.Select(n => renamed.GetValueOrDefault(n, n)).ToList(),
                };
            }).ToList();
            splits.Add(split with { Stages = stages });
        }

        return prepared with { Splits = splits, FilesBySha = files };
    }

    /// <summary>
    /// Per link of the split (stage i to stage i + 1), the cut tensors the layer goes on: made by stage i, read by stage
    /// i + 1 and by no later stage (a forwarded tensor keeps its exact form for the stage that needs it), and not a model
    /// output (the sink reads those as the model makes them).
    /// </summary>
    private static List<List<string>> LayerTensors(SplitPlan split, HashSet<string> modelOutputs)
    {
        var links = new List<List<string>>();
        for (var i = 0; i + 1 < split.Stages.Count; i++)
        {
            var (from, to) = (split.Stages[i], split.Stages[i + 1]);
            var later = split.Stages.Skip(i + 2).SelectMany(s => s.Inputs).Concat(to.Forwarded).ToHashSet(StringComparer.Ordinal);
            links.Add(from.Outputs.Where(t => to.Inputs.Contains(t) && !later.Contains(t) && !modelOutputs.Contains(t)).ToList());
        }

        return links;
    }

    /// <summary>
    /// Runs <paramref name="samples"/> through the split's exact stages as the actors would and returns the shape of each
    /// float32 rank-4 tensor of <paramref name="layerTensors"/>; the others are left out (no layer goes on them). Where
    /// <paramref name="covariances"/> is given, the channel covariance of each tensor not already <paramref name="fitted"/>
    /// (by another split) is accumulated.
    /// </summary>
    private static Dictionary<string, long[]> Measure(
        PreparedModel prepared, SplitPlan split, List<IReadOnlyList<HostTensor>> samples, List<List<string>> layerTensors,
        Dictionary<string, ChannelCovariance>? covariances, HashSet<string> fitted, int intraOpThreads)
    {
        var wanted = layerTensors.SelectMany(l => l).ToHashSet(StringComparer.Ordinal);
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        var fresh = new HashSet<string>(StringComparer.Ordinal);
        var sessions = split.Stages.Take(split.Stages.Count - 1)
            .Select(s => new StageSession(File.ReadAllBytes(prepared.FilesBySha[s.File.Sha256]), intraOpThreads)).ToList();
        try
        {
            foreach (var sample in samples)
            {
                IReadOnlyList<HostTensor> frame = sample;
                for (var i = 0; i < sessions.Count; i++)
                {
                    var produced = sessions[i].Run(frame);
                    foreach (var tensor in produced.Where(t => wanted.Contains(t.Name)
                        && t.ElementType == TensorProto.Types.DataType.Float && t.Shape.Length == 4))
                    {
                        shapes[tensor.Name] = tensor.Shape;
                        if (covariances is null || fitted.Contains(tensor.Name))
                        {
                            continue;
                        }

                        if (!covariances.TryGetValue(tensor.Name, out var covariance))
                        {
                            covariance = covariances[tensor.Name] = new ChannelCovariance((int)tensor.Shape[1]);
                            fresh.Add(tensor.Name);
                        }

                        // Another split measured this tensor over every frame already; its sums are whole.
                        if (fresh.Contains(tensor.Name))
                        {
                            covariance.Add(MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan()), tensor.Shape);
                        }
                    }

                    frame = [.. produced, .. frame.Where(t => split.Stages[i].Forwarded.Contains(t.Name))];
                }
            }
        }
        finally
        {
            sessions.ForEach(s => s.Dispose());
        }

        foreach (var link in layerTensors)
        {
            link.RemoveAll(t => !shapes.ContainsKey(t));
        }

        return shapes;
    }

    private static string Store(string folder, string sha, byte[] bytes)
    {
        var path = Path.Combine(folder, sha + ".onnx");
        try
        {
            ModelDistribution.ModelCache.ReadVerified(path, sha);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            // Absent, or not these bytes: written whole beside it and renamed over it, as JobBuilder stores stages.
            var temp = path + $".{Environment.ProcessId}.partial";
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, path, overwrite: true);
        }

        return path;
    }

    /// <summary>The calibration frames read once, given again to the codec's calibration (a source cannot be rewound).</summary>
    private sealed class ReplayedFrames(string id, IReadOnlyList<IReadOnlyList<HostTensor>> frames) : IFrameSource
    {
        private int _next;

        public string Id => id;

        public bool IsLive => false;

        public double FramesPerSecond => 0;

        public IReadOnlyList<HostTensor>? Read() => _next < frames.Count ? frames[_next++] : null;

        public void Dispose()
        {
        }
    }
}
