using Akka.Configuration;
using PipelineActors.Onnx;
using PipelineActors.Runtime.ControlPath.Supervision;

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

    /// <summary>Room in one remote message for the chunk's header and Akka's envelope.</summary>
    public const int ChunkOverheadBytes = 4096;

    public static PipelineSettings From(Config config)
    {
        var threads = config.GetInt("pipeline.intra-op-threads");
        var chunk = config.GetInt("pipeline.chunk-bytes");
        var frame = config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") ?? 0;
        var deadline = config.GetTimeSpan("pipeline.ingest.min-deadline");
        var attempts = config.GetInt("pipeline.ingest.max-attempts");
        var crashes = config.GetInt("pipeline.ingest.max-crashes");
        var rebalance = config.GetTimeSpan("pipeline.supervisor.rebalance-delay");
        var deploy = config.GetTimeSpan("pipeline.supervisor.deploy-timeout");
        var linkDelay = LinkDelayOf(config);
        Require(threads is >= 1 and <= 256, $"pipeline.intra-op-threads is {threads}; give 1 to 256 threads per stage.");
        Require(chunk >= 4096, $"pipeline.chunk-bytes is {chunk}; give at least 4096 bytes.");
        Require(
            chunk + ChunkOverheadBytes <= frame,
            $"pipeline.chunk-bytes ({chunk}) plus {ChunkOverheadBytes} bytes of header must fit akka.remote.dot-netty.tcp.maximum-frame-size ({frame}); "
            + "lower the chunk size or raise the frame size.");
        Require(deadline > TimeSpan.Zero, $"pipeline.ingest.min-deadline is {deadline}; give a positive time such as 1500ms.");
        Require(attempts >= 1, $"pipeline.ingest.max-attempts is {attempts}; give at least 1.");
        Require(crashes >= 0, $"pipeline.ingest.max-crashes is {crashes}; give 0 (fail a frame lost with a worker) or more.");
        Require(rebalance >= TimeSpan.Zero, $"pipeline.supervisor.rebalance-delay is {rebalance}; give zero or a positive time.");
        Require(deploy > TimeSpan.Zero, $"pipeline.supervisor.deploy-timeout is {deploy}; give a positive time such as 60s.");
        Require(
            linkDelay >= TimeSpan.Zero && linkDelay <= MaxLinkDelay,
            $"pipeline.link-delay is {linkDelay}; give 0 (no delay) up to {MaxLinkDelay.TotalSeconds:0}s, such as 20ms.");

        var cache = config.GetString("pipeline.model-cache");
        var log = config.GetString("pipeline.log-file");
        var state = config.GetString("pipeline.state-folder");
        return new PipelineSettings(
            threads,
            chunk,
            frame,
            string.IsNullOrEmpty(cache) ? DefaultFolder("models") : cache,
            string.IsNullOrEmpty(log) ? null : log,
            new SupervisorSettings(rebalance, deploy),
            new IngestDefaults(deadline, attempts) { MaxCrashes = crashes },
            linkDelay)
        {
            StateFolder = string.IsNullOrEmpty(state) ? DefaultFolder("state") : state,
        };
    }

    private static TimeSpan LinkDelayOf(Config config)
    {
        try
        {
            return config.GetTimeSpan("pipeline.link-delay");
        }
        catch (FormatException)
        {
            // Akka's parser refuses negative times and odd units with an exception that names neither the key nor the fix.
            var text = config.GetString("pipeline.link-delay");
            throw new PipelineInputException(
                $"pipeline.link-delay is '{text}', not a time from 0 to {MaxLinkDelay.TotalSeconds:0}s; write e.g. 20ms.");
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
