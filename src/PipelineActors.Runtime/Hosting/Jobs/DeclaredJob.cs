using System.Globalization;
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Configuration;
using PipelineActors.Onnx;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Jobs;
using PipelineActors.Runtime.DataPath.Preprocessing;

namespace PipelineActors.Runtime.Hosting.Jobs;

/// <summary>A job declared in an ingest node's configuration, with the local model file it names.</summary>
public sealed record DeclaredJob(JobSpec Spec, string ModelPath)
{
    /// <summary>
    /// Reads <c>pipeline.jobs { NAME { model = PATH, source = SPEC, results = [...], window, fps, frames, input = [...] } }</c>;
    /// a bad entry is one sentence naming the job and the key.
    /// </summary>
    public static IReadOnlyList<DeclaredJob> From(Config config, string node)
    {
        if (!config.HasPath("pipeline.jobs"))
        {
            return [];
        }

        var jobs = new List<DeclaredJob>();
        foreach (var name in config.GetConfig("pipeline.jobs").AsEnumerable().Select(kv => kv.Key.Split('.')[0]).Distinct(StringComparer.Ordinal))
        {
            var job = config.GetConfig($"pipeline.jobs.{Hocon.Quote(name)}");
            string Text(string key, string fallback = "") => job.HasPath(key) ? job.GetString(key) : fallback;
            var model = Text("model");
            if (model.Length == 0)
            {
                throw new PipelineInputException($"Job {name} in pipeline.jobs names no model; give model = \"/path/to/model.onnx\".");
            }

            var spec = JobSpecs.ForModel(
                name,
                model,
                Text("source", "synthetic"),
                job.HasPath("results") ? job.GetStringList("results").ToList() : [],
                job.HasPath("input") ? job.GetStringList("input").ToList() : [],
                job.HasPath("window") ? job.GetInt("window") : 0,
                job.HasPath("fps") ? double.Parse(Text("fps"), CultureInfo.InvariantCulture) : 0,
                job.HasPath("frames") ? job.GetLong("frames") : 0,
                node);
            jobs.Add(new DeclaredJob(spec, Path.GetFullPath(model)));
        }

        return jobs;
    }
}

/// <summary>Makes and checks job specs: the one place a job's fields are validated, for the CLI and for declared jobs alike.</summary>
public static class JobSpecs
{
    /// <summary>A spec for a local model file: its SHA-256 and size, and the text of its profile if one is beside it.</summary>
    public static JobSpec ForModel(
        string name,
        string modelPath,
        string source,
        IReadOnlyList<string> results,
        IReadOnlyList<string> inputs,
        int window,
        double fps,
        long frames,
        string ingestNode)
    {
        if (!JobBook.IsValidName(name))
        {
            throw new PipelineInputException($"The job name '{name}' is not valid; use 1 to 64 letters, digits, '-' or '_'.");
        }

        if (!File.Exists(modelPath))
        {
            throw new PipelineInputException($"The model of job {name}, {modelPath}, does not exist.");
        }

        OnnxModelFile.Load(modelPath); // a clear sentence for a file that is not a model, before anything travels
        if (window < 0 || !double.IsFinite(fps) || fps < 0 || fps > 10_000 || frames < 0)
        {
            throw new PipelineInputException($"Job {name}: the window must be 0 (automatic) or more, fps 0 to 10000 and frames 0 (all) or more.");
        }

        var profilePath = ModelProfile.PathFor(modelPath);
        var profile = File.Exists(profilePath) ? File.ReadAllText(profilePath) : string.Empty;
        if (profile.Length > 0)
        {
            ModelProfile.Parse(profile, profilePath); // checked here, where the user can fix it
        }

        string sha;
        using (var stream = File.OpenRead(modelPath))
        {
            sha = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        return new JobSpec(
            name, sha, Path.GetFileName(modelPath), new FileInfo(modelPath).Length, profile, source, results, inputs, window, fps, frames,
            ingestNode, ActorRefs.Nobody);
    }
}
