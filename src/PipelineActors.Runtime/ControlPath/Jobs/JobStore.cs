using System.Text.Json;
using Akka.Actor;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.ControlPath.Jobs;

/// <summary>
/// The job registry's file: every job's spec and last status as JSON, replaced whole by a rename so a crash mid-write
/// leaves the previous file, never half of one. The model store is not written (it is the registry's own on reading).
/// </summary>
public sealed class JobStore(string path)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public string Path { get; } = path;

    public IReadOnlyList<(JobSpec Spec, JobStatus Status)> Load()
    {
        if (!File.Exists(Path))
        {
            return [];
        }

        try
        {
            var entries = JsonSerializer.Deserialize<List<Entry>>(File.ReadAllText(Path), Json) ?? [];
            return entries.Select(e => (e.Spec.ToSpec(), e.Status)).ToList();
        }
        catch (JsonException)
        {
            // A file from another version, or edited by hand: the hosts' reports rebuild what still runs.
            return [];
        }
    }

    /// <summary>Replaces the file whole (mode 0600, by a rename); a camera password in a spec is in it unless the spec names an environment
    /// variable.</summary>
    public void Save(IReadOnlyList<(JobSpec Spec, JobStatus Status)> jobs)
    {
        // The jobs hold camera URLs with their passwords: the folder is this user's alone (0700), as the cache is.
        Hosting.PrivateFiles.EnsureFolder(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!);
        Hosting.PrivateFiles.ReplaceWhole(Path,
            JsonSerializer.SerializeToUtf8Bytes(jobs.Select(j => new Entry(SpecFields.Of(j.Spec), j.Status)).ToList(), Json));
    }

    private sealed record Entry(SpecFields Spec, JobStatus Status);

    /// <summary>The spec without its actor ref; a file written before the codec and the first hop were kept reads as exact and raw.</summary>
    private sealed record SpecFields(
        string Name,
        string ModelSha256,
        string ModelFileName,
        long ModelBytes,
        string ProfileJson,
        string Source,
        IReadOnlyList<string> Results,
        IReadOnlyList<string> InputSizes,
        int Window,
        double FramesPerSecond,
        long Frames,
        string IngestNode,
        string? Codec = null,
        string? FirstHop = null)
    {
        public static SpecFields Of(JobSpec s) => new(
            s.Name, s.ModelSha256, s.ModelFileName, s.ModelBytes, s.ProfileJson, s.Source, s.Results, s.InputSizes, s.Window,
            s.FramesPerSecond, s.Frames, s.IngestNode, s.Codec, s.FirstHop);

        public JobSpec ToSpec() => new(
            Name, ModelSha256, ModelFileName, ModelBytes, ProfileJson, Source, Results, InputSizes, Window, FramesPerSecond, Frames,
            IngestNode, ActorRefs.Nobody, Codec ?? "exact", FirstHop ?? "raw");
    }
}
