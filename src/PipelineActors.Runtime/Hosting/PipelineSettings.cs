using Akka.Configuration;
using PipelineActors.Onnx;
using PipelineActors.Runtime.ControlPath.Supervision;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.Hosting;

/// <summary>The ingest's settings from configuration (<c>pipeline.ingest</c>); the window and rate come with each job.</summary>
public sealed record IngestDefaults(TimeSpan MinDeadline, int MaxAttempts)
{
    /// <summary>Replays after the loss of a worker a frame may have before it is failed (<c>pipeline.ingest.max-crashes</c>).</summary>
    public int MaxCrashes { get; init; }
}

/// <summary>
/// Every <c>pipeline.*</c> setting of a node, read once from its configuration and handed to the
/// actors that need it. The defaults live in <c>hocon/reference.conf</c> only, so nothing here
/// has a default of its own; <see cref="From"/> rejects values that would fail later, deep inside
/// an actor (a zero chunk size divides by zero in the sender; a chunk larger than Akka's maximum
/// frame size is dropped by the transport, so every frame would fail).
/// </summary>
public sealed record PipelineSettings(
    int IntraOpThreads,
    int ChunkBytes,
    long MaximumFrameSize,
    string ModelCacheFolder,
    string? LogFile,
    SupervisorSettings Supervisor,
    IngestDefaults Ingest,
    TimeSpan LinkDelay)
{
    /// <summary>The longest <c>pipeline.link-delay</c> (a minute): longer is a typo, not a link.</summary>
    public static readonly TimeSpan MaxLinkDelay = TimeSpan.FromMinutes(1);

    /// <summary>Where this node keeps what must survive a restart: the job registry's jobs, the jobs' stage files.</summary>
    public string StateFolder { get; init; } = string.Empty;

    /// <summary>The most the model cache may hold (<c>pipeline.cache.max-bytes</c>); 0: no limit.</summary>
    public long CacheMaxBytes { get; init; }
    /// <summary>What this node believes from the wire (<c>pipeline.limits</c>): lengths, counts, epoch steps, partial frames.</summary>
    public NodeLimits Limits { get; init; } = null!;
    /// <summary>The node's TLS folder (<c>pipeline.tls.folder</c>, as <c>pipeline certs issue</c> writes it); empty: none given.</summary>
    public string TlsFolder { get; init; } = string.Empty;

    /// <summary>Room in one remote message for the chunk's header and Akka's envelope.</summary>
    public const int ChunkOverheadBytes = 4096;

    public static PipelineSettings From(Config config)
    {
        var threads = IntOf(config, "pipeline.intra-op-threads");
        var chunk = IntOf(config, "pipeline.chunk-bytes");
        const string FrameSizeKey = "akka.remote.dot-netty.tcp.maximum-frame-size";
        var frame = Read(config, FrameSizeKey, "a size such as 256000b", c => c.GetByteSize(FrameSizeKey)) ?? 0;
        var deadline = TimeOf(config, "pipeline.ingest.min-deadline", "1500ms");
        var attempts = IntOf(config, "pipeline.ingest.max-attempts");
        var crashes = IntOf(config, "pipeline.ingest.max-crashes");
        var rebalance = TimeOf(config, "pipeline.supervisor.rebalance-delay", "1s");
        var deploy = TimeOf(config, "pipeline.supervisor.deploy-timeout", "60s");
        var exclusion = TimeOf(config, "pipeline.supervisor.exclusion", "5m");
        var unreachable = TimeOf(config, "pipeline.supervisor.unreachable-after", "500ms");
        var linkDelay = TimeOf(config, "pipeline.link-delay", "20ms");
        Require(threads is >= 1 and <= 256, $"pipeline.intra-op-threads is {threads}; give 1 to 256 threads per stage.");
        Require(chunk >= 4096, $"pipeline.chunk-bytes is {chunk}; give at least 4096 bytes.");
        Require(
            chunk + ChunkOverheadBytes <= frame,
            $"pipeline.chunk-bytes ({chunk}) plus {ChunkOverheadBytes} bytes of header must fit "
                + $"akka.remote.dot-netty.tcp.maximum-frame-size ({frame}); "
            + "lower the chunk size or raise the frame size.");
        Require(deadline > TimeSpan.Zero, $"pipeline.ingest.min-deadline is {deadline}; give a positive time such as 1500ms.");
        Require(attempts >= 1, $"pipeline.ingest.max-attempts is {attempts}; give at least 1.");
        Require(crashes >= 0, $"pipeline.ingest.max-crashes is {crashes}; give 0 (fail a frame lost with a worker) or more.");
        Require(rebalance >= TimeSpan.Zero, $"pipeline.supervisor.rebalance-delay is {rebalance}; give zero or a positive time.");
        Require(deploy > TimeSpan.Zero, $"pipeline.supervisor.deploy-timeout is {deploy}; give a positive time such as 60s.");
        Require(
            unreachable >= TimeSpan.Zero && unreachable <= TimeSpan.FromMinutes(1),
            $"pipeline.supervisor.unreachable-after is {unreachable}; give 0 (act at once) up to 1m, such as 500ms.");
        Require(exclusion > TimeSpan.Zero, $"pipeline.supervisor.exclusion is {exclusion}; give a positive time such as 5m.");
        Require(
            linkDelay >= TimeSpan.Zero && linkDelay <= MaxLinkDelay,
            $"pipeline.link-delay is {linkDelay}; give 0 (no delay) up to {MaxLinkDelay.TotalSeconds:0}s, such as 20ms.");

        const string CacheLimitKey = "pipeline.cache.max-bytes";
        var cacheLimit = Read(config, CacheLimitKey, "a size such as 2GiB or 0 (no limit)", c => c.GetByteSize(CacheLimitKey)) ?? 0;
        Require(cacheLimit >= 0, $"{CacheLimitKey} is {cacheLimit}; give 0 (no limit) or a size such as 2GiB.");
        var cache = config.GetString("pipeline.model-cache");
        var log = config.GetString("pipeline.log-file");
        Require(
            string.IsNullOrEmpty(log) || !PrivateFiles.IsLink(log),
            $"pipeline.log-file {log} is a symbolic link; logs are never written through one: remove it or name another file.");
        var state = config.GetString("pipeline.state-folder");
        var tls = config.GetString("pipeline.tls.folder");
        return new PipelineSettings(
            threads,
            chunk,
            frame,
            string.IsNullOrEmpty(cache) ? DefaultFolder("models") : cache,
            string.IsNullOrEmpty(log) ? null : log,
            new SupervisorSettings(rebalance, deploy) { Exclusion = exclusion, UnreachableAfter = unreachable },
            new IngestDefaults(deadline, attempts) { MaxCrashes = crashes },
            linkDelay)
        {
            StateFolder = string.IsNullOrEmpty(state) ? DefaultFolder("state") : state,
            CacheMaxBytes = cacheLimit,
            Limits = NodeLimits.From(config),
            TlsFolder = tls ?? string.Empty,
        };
    }

    private static TimeSpan TimeOf(Config config, string key, string example) =>
        Read(config, key, $"a time such as {example}", c => c.GetTimeSpan(key));

    private static int IntOf(Config config, string key) => Read(config, key, "a whole number", c => c.GetInt(key));

    /// <summary>
    /// One value, or one sentence naming its key: Akka's parser refuses negative times, odd units and words where a
    /// number belongs with an exception that names neither the key nor the fix.
    /// </summary>
    private static T Read<T>(Config config, string key, string expected, Func<Config, T> read)
    {
        try
        {
            return read(config);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new PipelineInputException($"{key} is '{config.GetString(key)}', not {expected}.");
        }
    }

    private static string DefaultFolder(string name) =>
        Path.Combine(
            Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create),
            "pipelineactors",
            name);

    private static void Require(bool condition, string sentence)
    {
        if (!condition)
        {
            throw new PipelineInputException(sentence);
        }
    }
}
