using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using PipelineActors.Onnx.Graph;

namespace PipelineActors.Onnx.Stages;

/// <summary>A tensor as the manifest records it.</summary>
/// <param name="Shape">The shape in the calibration run.</param>
/// <param name="DataDependentAxes">Axes whose size changes with the frame's values (absent when none); Bytes is then one frame's.</param>
public sealed record ManifestTensor(string Name, string Dtype, long[] Shape, long Bytes, int[]? DataDependentAxes = null)
{
    public static ManifestTensor Of(TensorInfo t) =>
        new(t.Name, t.TypeName, t.Shape, t.Bytes, t.HasDataDependentSize ? t.DataDependentAxes.ToArray() : null);

    public TensorInfo ToInfo() => new(Name, ElementTypes.Parse(Dtype), Shape) { DataDependentAxes = DataDependentAxes ?? [] };
}

/// <summary>One stage file as the manifest records it.</summary>
public sealed record ManifestStage(
    int Index,
    string File,
    string Sha256,
    long FileBytes,
    int FirstNode,
    int EndNode,
    string FirstNodeName,
    string LastNodeName,
    IReadOnlyList<ManifestTensor> Inputs,
    IReadOnlyList<ManifestTensor> Outputs,
    IReadOnlyList<ManifestTensor> Forwarded,
    long Flops,
    double FlopsShare,
    long ParameterBytes,
    double? MeasuredMs);

/// <summary>What crosses one link between consecutive stages per frame.</summary>
public sealed record ManifestBoundary(int Position, string AfterNode, IReadOnlyList<ManifestTensor> Tensors, long Bytes);

/// <summary>
/// <c>manifest.json</c> beside the stage files: which file is which stage, their hashes, what
/// each reads and writes, and what the split was made from. The runtime deploys from it.
/// </summary>
public sealed record SplitManifest(
    string Format,
    string SourceModel,
    string? SourceSha256,
    Dictionary<string, long[]> InputSizes,
    IReadOnlyList<string> ModelOutputs,
    string CostBasis,
    long TotalFlops,
    IReadOnlyList<ManifestStage> Stages,
    IReadOnlyList<ManifestBoundary> Boundaries)
{
    public const string CurrentFormat = "pipelineactors.split/1";
    public const string FileName = "manifest.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static SplitManifest Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
        {
            throw new PipelineInputException($"'{folder}' holds no {FileName}; make one with 'pipeline split'.");
        }

        try
        {
            var manifest = JsonSerializer.Deserialize<SplitManifest>(File.ReadAllText(path), Json);
            return manifest is { Format: CurrentFormat } ? manifest
                : throw new PipelineInputException($"'{path}' is not a manifest written by 'pipeline split'.");
        }
        catch (JsonException e)
        {
            throw new PipelineInputException($"'{path}' is not a valid split manifest ({e.Message.Split('\n')[0]}).");
        }
    }
}

/// <summary>Writes a split (stage models and manifest) into a folder, all or nothing.</summary>
public static class SplitWriter
{
    /// <summary>
    /// Writes into a temporary sibling folder and moves it into place at the end, so an error
    /// never leaves a half-written output folder.
    /// </summary>
    public static SplitManifest Write(
        ModelAnalysis analysis,
        IReadOnlyList<StageModel> stages,
        string outFolder,
        string sourceName,
        string costBasis,
        IReadOnlyList<double>? measuredMs = null,
        bool overwrite = false)
    {
        var target = Path.GetFullPath(outFolder);
        if (File.Exists(target))
        {
            throw new PipelineInputException($"--out '{outFolder}' is a file; give a folder for the stages.");
        }

        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any() && !overwrite)
        {
            throw new PipelineInputException($"--out '{outFolder}' already exists and is not empty; choose a new folder or add --force "
                + $"to replace it.");
        }

        // --force deletes the folder, so it may only replace what an earlier split wrote: with
        // '--out . --force' a stray file (or the source model itself) would otherwise be lost.
        var foreign = Directory.Exists(target)
            ? Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName).FirstOrDefault(n => !IsSplitFile(n!))
            : null;
        if (foreign is not null)
        {
            throw new PipelineInputException(
                $"--out '{outFolder}' holds '{foreign}', which 'pipeline split' did not write; --force replaces only an earlier split's "
                    + $"folder, so choose a new folder.");
        }

        var parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(target)}.partial-{Environment.ProcessId}");
        if (Directory.Exists(temp))
        {
            Directory.Delete(temp, recursive: true);
        }

        Directory.CreateDirectory(temp);
        try
        {
            var manifestStages = new List<ManifestStage>();
            foreach (var stage in stages)
            {
                var bytes = stage.Model.ToByteArray();
                File.WriteAllBytes(Path.Combine(temp, stage.FileName), bytes);
                manifestStages.Add(new ManifestStage(
                    stage.Index,
                    stage.FileName,
                    OnnxModelFile.Sha256Hex(bytes),
                    bytes.LongLength,
                    stage.From,
                    stage.To,
                    analysis.Graph.Order[stage.From].Name,
                    analysis.Graph.Order[stage.To - 1].Name,
                    stage.Inputs.Select(ManifestTensor.Of).ToList(),
                    stage.Outputs.Select(ManifestTensor.Of).ToList(),
                    stage.Forwarded.Select(ManifestTensor.Of).ToList(),
                    stage.Flops,
                    analysis.TotalFlops == 0 ? 0 : Math.Round((double)stage.Flops / analysis.TotalFlops, 4),
                    stage.ParameterBytes,
                    measuredMs is null ? null : Math.Round(measuredMs[stage.Index], 3)));
            }

            var boundaries = stages.Skip(1)
                .Select(s => analysis.CutAt(s.From))
                .Select(c => new ManifestBoundary(c.Position, c.AfterNode, c.Cargo.Select(ManifestTensor.Of).ToList(), c.Bytes))
                .ToList();
            var manifest = new SplitManifest(
                SplitManifest.CurrentFormat,
                sourceName,
                analysis.SourceSha256,
                analysis.Shapes.InputSizes.ToDictionary(t => t.Name, t => t.Shape),
                analysis.Graph.OutputNames.ToList(),
                costBasis,
                analysis.TotalFlops,
                manifestStages,
                boundaries);
            File.WriteAllText(Path.Combine(temp, SplitManifest.FileName), manifest.ToJson());

            if (Directory.Exists(target))
            {
                Directory.Delete(target, recursive: true);
            }

            Directory.Move(temp, target);
            return manifest;
        }
        catch
        {
            Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private static bool IsSplitFile(string name) =>
        name == SplitManifest.FileName
        || (name.StartsWith("stage-", StringComparison.Ordinal) && name.EndsWith(".onnx", StringComparison.Ordinal));
}
