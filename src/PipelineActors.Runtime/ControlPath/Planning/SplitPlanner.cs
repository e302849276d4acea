using System.Globalization;
using Google.Protobuf;
using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Stages;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.ControlPath.Planning;

/// <summary>A model prepared for a run: its balanced split for every worker count, and where each stage file is.</summary>
/// <param name="SourceInputs">What the source sends: the model's inputs, image inputs as uint8 pixels.</param>
public sealed record PreparedModel(ModelAnalysis Analysis, IReadOnlyList<SplitPlan> Splits, IReadOnlyDictionary<string, string> FilesBySha,
    IReadOnlyList<TensorInfo> SourceInputs)
{
    /// <summary>The whole model's inputs (what a frame holds as the model sees it).</summary>
    public IReadOnlyList<TensorInfo> Inputs => Analysis.Shapes.InputSizes;
}

/// <summary>
/// Cuts a model for every number of workers the cluster may have (1..max), so that after a failure
/// or a join the supervisor switches to a split that is already cut and already in every
/// worker's cache. Stage files are stored by SHA-256.
/// </summary>
public static class JobBuilder
{
    /// <summary>
    /// What moving one byte between stages costs, in FLOPs of inference it displaces: measured on
    /// this project's 2-core machine, ONNX Runtime does ~0.23 GFLOP/ms on one core and Akka.Remote
    /// spends ~3 ms of CPU per MB on each end of a link, so ~700 FLOPs per byte.
    /// </summary>
    public const double TransferFlopsPerByte = 700;

    /// <summary>The same price in measured milliseconds: ~3 ms of CPU per MB on each end of a link.</summary>
    public const double TransferMsPerByte = 3e-6;

    /// <summary>
    /// How a split is balanced when the caller does not say: on every node's time measured in one ONNX Runtime session
    /// over the whole model (a second or two; fused operators and memory-bound layers cost what they really cost,
    /// which FLOPs miss: VGG-16's classifier holds under 1 % of the FLOPs and about 10 % of the time), plus the transfer price; on
    /// FLOPs where the runtime's node names cannot be traced back to the model.
    /// </summary>
    public static Func<ModelAnalysis, int, IReadOnlyList<int>> MeasuredBalance(int intraOpThreads)
    {
        Func<int, int, double>? cost = null;
        return (analysis, parts) =>
        {
            cost ??= NodeTimes.Measure(analysis, intraOpThreads, runs: 10) is { } nodes
                ? Balancer.WithTransferCost(analysis, nodes.SumMedianMs, TransferMsPerByte)
                : Balancer.WithTransferCost(analysis, TransferFlopsPerByte);
            return Balancer.Balance(analysis, parts, cost);
        };
    }

    /// <summary>
    /// True when <paramref name="path"/> is a plain file with these bytes; a link or another file in its place is
    /// replaced (the rename replaces the link, never writes through it), so the store serves only what it made.
    /// </summary>
    private static bool HoldsExactly(string path, string sha)
    {
        try
        {
            ModelDistribution.ModelCache.ReadVerified(path, sha);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return false;
        }
    }

    /// <param name="expectedSha256">The SHA-256 the model must have (a job's model from the cache); checked on the bytes parsed.</param>
    public static PreparedModel Prepare(
        string modelPath,
        IReadOnlyDictionary<string, long[]>? inputSizes,
        int maxParts,
        string storeFolder,
        Func<ModelAnalysis, int, IReadOnlyList<int>>? balance = null,
        bool pixels = true,
        PixelNormalisation? normalisation = null,
        string? expectedSha256 = null)
    {
        var source = OnnxModelFile.Load(modelPath);
        if (expectedSha256 is not null && source.Sha256 != expectedSha256)
        {
            throw new InvalidDataException(
                $"The model {modelPath} hashes to {source.Sha256}, not {expectedSha256}: it changed after it was fetched; it is not cut.");
        }

        var analysis = ModelAnalysis.Analyze(source, inputSizes);
        balance ??= MeasuredBalance(intraOpThreads: 1);
        var pixelInputs = new HashSet<string>(StringComparer.Ordinal);
        storeFolder = Hosting.PrivateFiles.EnsureFolder(storeFolder);
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        var splits = new List<SplitPlan>();
        var most = Math.Min(maxParts, analysis.Cuts.Count + 1);
        for (var parts = 1; parts <= most; parts++)
        {
            var cuts = balance(analysis, parts);
            var stages = StageExtractor.Extract(analysis, cuts);
            var specs = new List<StageSpec>();
            foreach (var stage in stages)
            {
                var model = stage.Model;
                if (stage.Index == 0 && pixels)
                {
                    var view = new StageSpecView(stage.Inputs.Select(t => t.Name).ToList(), stage.Outputs.Select(t => t.Name).ToList(),
                        stage.Forwarded.Select(t => t.Name).ToList());
                    foreach (var input in analysis.Shapes.InputSizes.Where(i => PixelInput.Applies(i, view)))
                    {
                        model = PixelInput.Adapt(model, input.Name, normalisation ?? PixelNormalisation.Default(input));
                        pixelInputs.Add(input.Name);
                    }
                }

                var bytes = model.ToByteArray();
                var sha = OnnxModelFile.Sha256Hex(bytes);
                var path = Path.Combine(storeFolder, sha + ".onnx");
                if (!HoldsExactly(path, sha))
                {
                    var temp = path + $".{Environment.ProcessId}.partial";
                    File.WriteAllBytes(temp, bytes);
                    File.Move(temp, path, overwrite: true);
                }

                files[sha] = path;
                var layers = string.Create(CultureInfo.InvariantCulture,
                    $"{stage.From}..{stage.To - 1} ({Short(analysis.Graph.Order[stage.From].Name)} .. "
                        + $"{Short(analysis.Graph.Order[stage.To - 1].Name)})");
                specs.Add(new StageSpec(
                    stage.Index,
                    new StageFile(sha, bytes.LongLength),
                    stage.Inputs.Select(t => t.Name).ToList(),
                    stage.Outputs.Select(t => t.Name).ToList(),
                    stage.Forwarded.Select(t => t.Name).ToList(),
                    stage.Flops,
                    layers));
            }

            splits.Add(new SplitPlan(parts, specs));
        }

        // Every split's first stage must agree on what the source sends.
        var sourceInputs = analysis.Shapes.InputSizes
            .Select(t => pixelInputs.Contains(t.Name) ? t with { ElementType = Onnx.Proto.TensorProto.Types.DataType.Uint8 } : t)
            .ToList();
        return new PreparedModel(analysis, splits, files, sourceInputs);
    }

    /// <summary>The last part of an exporter's long node name (tf2onnx writes whole scopes).</summary>
    private static string Short(string name)
    {
        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var last = parts.Length > 1 ? string.Join("/", parts.TakeLast(2)) : name;
        return last.Length <= 28 ? last : last[^28..];
    }
}
