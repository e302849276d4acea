using System.Globalization;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sources;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// What calibrate and fidelity share: a model with its profile and analysis, the cut positions a flag names, and real
/// frames read from sources and preprocessed as the pipeline's ingest does.
/// </summary>
internal sealed record CutModel(string Path, ModelProfile Profile, ModelAnalysis Analysis)
{
    /// <summary>Loads the model (clear errors for a missing file or profile) at its profile's input size unless --input says otherwise.</summary>
    public static CutModel Load(string path, string[]? inputs)
    {
        var file = OnnxModelFile.Load(path);
        var profile = ModelProfile.ForModel(path);
        var sizes = inputs is { Length: > 0 }
            ? InputSizes.ParseOverrides(inputs)
            : new Dictionary<string, long[]>(StringComparer.Ordinal) { [profile.Input] = profile.Shape };
        return new CutModel(path, profile, ModelAnalysis.Analyze(file, sizes));
    }

    /// <summary>
    /// Cut positions from <c>--cut</c>: whole numbers separated by commas (cut positions from 'pipeline inspect'), or
    /// <c>balanced:N</c> for the cuts of the balanced N-part split (on FLOPs, as 'pipeline split --parts N' picks them).
    /// </summary>
    public IReadOnlyList<int> Cuts(string text, string flag = "--cut") => CutsOf(Analysis, text, flag);

    /// <inheritdoc cref="Cuts(string, string)"/>
    public static IReadOnlyList<int> CutsOf(ModelAnalysis analysis, string text, string flag)
    {
        text = text.Trim();
        if (text.StartsWith("balanced:", StringComparison.Ordinal))
        {
            var count = text["balanced:".Length..];
            if (!int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var parts) || parts < 2)
            {
                throw new PipelineInputException($"{flag} balanced:N needs a whole number of parts, 2 or more, not '{count}'.");
            }

            return Balancer.Balance(analysis, parts);
        }

        var positions = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var position))
            {
                throw new PipelineInputException(
                    $"{flag} takes cut positions from 'pipeline inspect' separated by commas, or balanced:N; '{part}' is neither.");
            }

            analysis.CutAt(position);
            positions.Add(position);
        }

        return [.. positions.Distinct().Order()];
    }

    /// <summary>
    /// Reads up to <paramref name="count"/> frames from the sources in turn (each until it ends), after skipping
    /// <paramref name="skip"/>; every frame is the model's inputs by name.
    /// </summary>
    public List<Dictionary<string, HostTensor>> Frames(IReadOnlyList<string> sources, int count, int skip = 0, Action<int>? progress = null)
    {
        var frames = new List<Dictionary<string, HostTensor>>(count);
        var skipped = 0;
        foreach (var spec in sources)
        {
            using var source = SourceSpec.Parse(spec, Profile, new FrameSourceOptions(Frames: count + skip));
            while (frames.Count < count)
            {
                var tensors = source.Read();
                if (tensors is null)
                {
                    break;
                }

                if (skipped < skip)
                {
                    skipped++;
                    continue;
                }

                frames.Add(tensors.ToDictionary(t => t.Name, StringComparer.Ordinal));
                progress?.Invoke(frames.Count);
            }
        }

        if (frames.Count == 0)
        {
            throw new PipelineInputException(
                $"The source {string.Join(" then ", sources)} gave no frame{(skip > 0 ? $" after the {skip} used for calibration" : "")}; "
                + "give a source with pictures or video frames in it.");
        }

        return frames;
    }

    /// <summary>The frame count a flag gives, checked: 1 to 100000.</summary>
    public static int CheckFrames(int frames, string flag) =>
        frames is >= 1 and <= 100_000 ? frames : throw new PipelineInputException($"{flag} must be between 1 and 100000, not {frames}.");
}
