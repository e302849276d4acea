using PipelineActors.Onnx;

namespace PipelineActors.Runtime.DataPath.Sink.Destinations;

/// <summary>
/// A job's result destinations from their specs: a file path or <c>file:PATH</c> (JSON lines, appended), <c>-</c> or
/// <c>stdout</c>, <c>mqtt</c> (the broker of <c>pipeline.mqtt</c>) or <c>mqtt://[user:pass@]host[:port]</c> (topic
/// <c>PREFIX/JOB/results</c>). A spec that cannot be used is one sentence (<see cref="PipelineInputException"/>).
/// </summary>
public static class ResultDestinations
{
    /// <summary>MQTT's registered port, for a <c>mqtt://host</c> spec without one.</summary>
    public const int DefaultMqttPort = 1883;

    /// <summary>Opens every destination; on a bad spec, those opened already are closed again. No specs: results go nowhere.</summary>
    public static ResultDestinationSet Open(IReadOnlyList<string> specs, string jobName, ResultContext context)
    {
        var parsed = specs.Select(spec => Parse(spec, jobName, context.Mqtt)).ToList();
        var files = parsed.OfType<FileSpec>().GroupBy(f => f.FullPath).FirstOrDefault(g => g.Count() > 1);
        if (files is not null)
        {
            throw new PipelineInputException($"The results file {files.Key} is named twice; name each destination once.");
        }

        if (parsed.OfType<StdoutSpec>().Count() > 1)
        {
            throw new PipelineInputException("Results to stdout are named twice; name each destination once.");
        }

        var opened = new List<IResultDestination>();
        try
        {
            foreach (var spec in parsed)
            {
                opened.Add(spec switch
                {
                    FileSpec f => JsonLinesFile.Open(f.FullPath, context.Format, context.Report),
                    StdoutSpec => new StdoutResults(context.Format),
                    MqttSpec m => new MqttResults(m.Target, context.Mqtt, context.Format, context.Report),
                    _ => throw new InvalidOperationException($"unhandled destination {spec}"),
                });
            }
        }
        catch
        {
            foreach (var destination in opened)
            {
                destination.Dispose();
            }

            throw;
        }

        return new ResultDestinationSet(opened, context.Report);
    }

    /// <summary>What a spec names, checked but not opened.</summary>
    public static DestinationSpec Parse(string spec, string jobName, MqttSettings mqtt)
    {
        if (string.IsNullOrWhiteSpace(spec))
        {
            throw new PipelineInputException("A result destination is empty; give a file path, file:PATH, - (stdout), mqtt or mqtt://HOST:PORT.");
        }

        if (spec is "-" or "stdout")
        {
            return new StdoutSpec();
        }

        if (spec == "mqtt")
        {
            return new MqttSpec(new MqttTarget(mqtt.Host, mqtt.Port, mqtt.Username, mqtt.Password, TopicFor(jobName, mqtt)));
        }

        if (spec.StartsWith("mqtt://", StringComparison.OrdinalIgnoreCase))
        {
            return new MqttSpec(ParseMqttUrl(spec, jobName, mqtt));
        }

        if (spec.StartsWith("mqtts://", StringComparison.OrdinalIgnoreCase))
        {
            throw new PipelineInputException("Result destination mqtts:// (MQTT over TLS) is not supported yet; give mqtt://HOST:PORT.");
        }

        var path = spec.StartsWith("file:", StringComparison.Ordinal) ? spec["file:".Length..] : spec;
        if (path.Length == 0)
        {
            throw new PipelineInputException("Result destination 'file:' names no file; write file:PATH.");
        }

        if (path.Contains("://", StringComparison.Ordinal))
        {
            throw new PipelineInputException(
                $"Result destination '{Redacted(spec)}' is not a known kind; give a file path, file:PATH, - (stdout), mqtt or mqtt://HOST:PORT.");
        }

        return new FileSpec(Path.GetFullPath(path));
    }

    private static MqttTarget ParseMqttUrl(string spec, string jobName, MqttSettings mqtt)
    {
        var shown = Redacted(spec);
        if (!Uri.TryCreate(spec, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new PipelineInputException(
                $"Result destination '{shown}' is not mqtt://[USER:PASSWORD@]HOST[:PORT]; for example mqtt://broker.local:1883.");
        }

        if (uri.AbsolutePath is not ("" or "/") || uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            throw new PipelineInputException(
                $"Result destination '{shown}' has a path or query; the topic is {mqtt.TopicPrefix}/JOB/results "
                + "(set pipeline.mqtt.topic-prefix to change it).");
        }

        string? user = null;
        string? password = null;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            password = colon < 0 ? null : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }

        return new MqttTarget(uri.Host, uri.IsDefaultPort || uri.Port < 0 ? DefaultMqttPort : uri.Port, user, password, TopicFor(jobName, mqtt));
    }

    private static string TopicFor(string jobName, MqttSettings mqtt)
    {
        if (!MqttSettings.TopicNameIsPlain(jobName) || jobName.Contains('/', StringComparison.Ordinal))
        {
            throw new PipelineInputException(
                $"The job name '{jobName}' cannot be part of an MQTT topic; use letters, digits, '-' or '_' (no '/', '+' or '#').");
        }

        return mqtt.TopicFor(jobName);
    }

    /// <summary>A spec as it may be shown: the password of <c>scheme://user:password@host</c> replaced by <c>***</c>.</summary>
    public static string Redacted(string spec)
    {
        var scheme = spec.IndexOf("://", StringComparison.Ordinal);
        var at = scheme < 0 ? -1 : spec.IndexOf('@', scheme + 3);
        if (at < 0)
        {
            return spec;
        }

        var colon = spec.IndexOf(':', scheme + 3, at - scheme - 3);
        return colon < 0 ? spec : spec[..(colon + 1)] + "***" + spec[at..];
    }

    /// <summary>A destination spec, checked.</summary>
    public abstract record DestinationSpec;

    /// <summary>A JSON-lines file.</summary>
    public sealed record FileSpec(string FullPath) : DestinationSpec;

    /// <summary>JSON lines on standard output.</summary>
    public sealed record StdoutSpec : DestinationSpec;

    /// <summary>An MQTT topic on a broker.</summary>
    public sealed record MqttSpec(MqttTarget Target) : DestinationSpec;
}

/// <summary>JSON lines on standard output.</summary>
public sealed class StdoutResults(Func<FrameOutcome, string> format) : IResultDestination
{
    private long _written;

    public string Name => "stdout";

    public ResultDestinationCounters Counters => new(Name, Interlocked.Read(ref _written), 0, 0, 0, 0);

    public void Write(FrameOutcome outcome)
    {
        Console.Out.WriteLine(format(outcome));
        Interlocked.Increment(ref _written);
    }

    public void Dispose() => Console.Out.Flush();
}

/// <summary>
/// Every destination of a job as one writer: each result goes to each destination; one that fails does not keep
/// the result from the others, and the failure comes back as one <see cref="IOException"/> for that frame, naming
/// every destination that failed (the sink counts the frame as not written and reports it).
/// </summary>
public sealed class ResultDestinationSet(IReadOnlyList<IResultDestination> destinations, Action<string> report) : IResultWriter
{
    public IReadOnlyList<IResultDestination> Destinations { get; } = destinations;

    /// <summary>The highest frame id a results file of the job already holds, or null: a resumed job numbers its frames after it.</summary>
    public long? LastWrittenId => Destinations.OfType<JsonLinesFile>().Max(f => f.LastWrittenId);

    /// <summary>Every destination's counters.</summary>
    public IReadOnlyList<ResultDestinationCounters> Counters() => Destinations.Select(d => d.Counters).ToList();

    public void Write(FrameOutcome outcome)
    {
        List<string>? failures = null;
        Exception? first = null;
        foreach (var destination in Destinations)
        {
            try
            {
                destination.Write(outcome);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                (failures ??= []).Add(destination is JsonLinesFile ? e.Message.TrimEnd('.') : $"{destination.Name}: {e.Message.TrimEnd('.')}");
                first ??= e;
            }
        }

        if (failures is not null)
        {
            throw new IOException(string.Join("; ", failures), first);
        }
    }

    public void Dispose()
    {
        foreach (var destination in Destinations)
        {
            try
            {
                destination.Dispose();
            }
            catch (Exception e) when (e is IOException or AggregateException or InvalidOperationException)
            {
                report($"results to {destination.Name}: closing failed ({e.Message.TrimEnd('.')})");
            }
        }
    }
}
