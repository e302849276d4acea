using System.Text.Json;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sink.Decoders;

namespace PipelineActors.Runtime.Hosting.Jobs;

/// <summary>
/// Opens a job's result destinations: JSON-lines files (appended to, never truncated; the last frame id already in a file
/// is where a resumed job continues) and stdout (<c>-</c>).
/// </summary>
public static class JobResults
{
    public static IResultWriter Open(JobSpec spec, ModelProfile? profile, out long? lastWritten)
    {
        lastWritten = null;
        var decoder = profile?.Decoder is { } name ? DecoderRegistry.Get(name) : null;
        var context = profile is null ? null : new DecodeContext(profile.Width, profile.Height, profile.Width, profile.Height);
        var writers = new List<IResultWriter>();
        foreach (var destination in spec.Results)
        {
            if (destination is "-" or "stdout")
            {
                writers.Add(new JsonLinesResultWriter(Console.Out, ownsWriter: false, decoder, context));
                continue;
            }

            var path = destination.StartsWith("file:", StringComparison.Ordinal) ? destination["file:".Length..] : destination;
            var last = LastFrameIn(path);
            lastWritten = last is null ? lastWritten : Math.Max(lastWritten ?? -1, last.Value);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            writers.Add(new JsonLinesResultWriter(new StreamWriter(path, append: true) { AutoFlush = true }, ownsWriter: true, decoder, context));
        }

        return writers.Count switch
        {
            0 => new NullResultWriter(),
            1 => writers[0],
            _ => new FanOutResultWriter(writers),
        };
    }

    /// <summary>The frame id of the file's last complete line, or null for a missing or empty file.</summary>
    public static long? LastFrameIn(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        long? last = null;
        foreach (var line in File.ReadLines(path))
        {
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.TryGetProperty("frame", out var frame) && frame.TryGetInt64(out var id))
                {
                    last = Math.Max(last ?? -1, id);
                }
            }
            catch (JsonException)
            {
                // A line torn by a crash mid-write: skipped, it holds no complete result.
            }
        }

        return last;
    }

    private sealed class FanOutResultWriter(IReadOnlyList<IResultWriter> writers) : IResultWriter
    {
        public void Write(FrameOutcome outcome)
        {
            foreach (var writer in writers)
            {
                writer.Write(outcome);
            }
        }

        public void Dispose()
        {
            foreach (var writer in writers)
            {
                writer.Dispose();
            }
        }
    }
}
