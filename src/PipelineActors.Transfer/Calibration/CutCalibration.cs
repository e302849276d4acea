using System.Text.Json;
using PipelineActors.Onnx;
using PipelineActors.Transfer.Projection;

namespace PipelineActors.Transfer.Calibration;

/// <summary>
/// <c>calibration.json</c> beside a split's <c>manifest.json</c>: per boundary (cut position), the statistics of each
/// tensor that crosses it, over the calibration frames, for the codecs to derive their parameters from.
/// </summary>
public sealed record CutCalibration(string Format, string? SourceSha256, IReadOnlyList<CalibratedBoundary> Boundaries)
{
    public const string CurrentFormat = "pipelineactors.calibration/1";
    public const string FileName = "calibration.json";

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Statistics of <paramref name="tensor"/> at cut <paramref name="position"/>, or a clear error naming what exists.</summary>
    public TensorStatistics For(int position, string tensor)
    {
        var boundary = Boundaries.FirstOrDefault(b => b.Position == position)
            ?? throw new PipelineInputException(
                $"The calibration has no statistics for cut {position} (it covers cuts {string.Join(", ", Boundaries.Select(b => b.Position))}); "
                + "calibrate that cut first.");
        return boundary.Tensors.FirstOrDefault(t => t.Name == tensor)
            ?? throw new PipelineInputException($"The calibration of cut {position} has no statistics for tensor '{tensor}'.");
    }

    /// <summary>The channel covariance of <paramref name="tensor"/> at cut <paramref name="position"/>, or a clear error.</summary>
    public ChannelCovariance CovarianceFor(int position, string tensor)
    {
        For(position, tensor);
        var state = Boundaries.First(b => b.Position == position).Covariances?.FirstOrDefault(c => c.Name == tensor)
            ?? throw new PipelineInputException(
                $"The calibration of cut {position} has no channel covariance for '{tensor}' (only float32 NCHW tensors get one), "
                + "so pca:K cannot go there.");
        return ChannelCovariance.FromState(state, FileName);
    }

    /// <summary>Writes <see cref="FileName"/> into <paramref name="folder"/> through a temporary file.</summary>
    public string Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, FileName);
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, Json));
        File.Move(temp, path, overwrite: true);
        return path;
    }

    /// <summary>Reads <see cref="FileName"/> from <paramref name="folder"/>; a missing, foreign or broken file is an input error.</summary>
    public static CutCalibration Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
        {
            throw new PipelineInputException($"There is no {FileName} in '{folder}'; calibrate the split first.");
        }

        CutCalibration? calibration;
        try
        {
            calibration = JsonSerializer.Deserialize<CutCalibration>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new PipelineInputException($"'{path}' is not valid calibration JSON ({e.Message}); calibrate the split again.", e);
        }

        if (calibration?.Format != CurrentFormat)
        {
            throw new PipelineInputException($"'{path}' has format '{calibration?.Format}', not '{CurrentFormat}'; calibrate the split again.");
        }

        // Each tensor goes through the same checks as a lone statistics file, each covariance through its own.
        var checkedBoundaries = calibration.Boundaries?.Select(b => b with
        {
            Tensors = [.. (b.Tensors ?? []).Select(t => TensorStatistics.FromJson(t.ToJson(), path))],
            Covariances = b.Covariances?.Select(c => ChannelCovariance.FromState(c, path).ToState(c.Name)).ToList(),
        }).ToList();
        return calibration with { Boundaries = checkedBoundaries ?? [] };
    }
}

/// <summary>
/// The statistics of the tensors crossing one cut, and the channel covariance of each float32 NCHW one (what
/// <c>pca:K</c> is fitted from).
/// </summary>
public sealed record CalibratedBoundary(
    int Position, string AfterNode, IReadOnlyList<TensorStatistics> Tensors, IReadOnlyList<ChannelCovarianceState>? Covariances = null);
