using System.Collections.Concurrent;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;

namespace PipelineActors.Runtime.DataPath.Sources;

/// <summary>Something that went wrong inside a source without ending it: a corrupt image skipped, ffmpeg exiting, a restart.</summary>
/// <param name="Ended">True when the source gave up after this fault (its <c>Read</c> now returns null).</param>
public sealed record SourceFault(DateTimeOffset At, string SourceId, string Message, bool Ended = false);

/// <summary>A source that reports its faults instead of throwing them out of <see cref="IFrameSource.Read"/>.</summary>
public interface IReportsFaults
{
    SourceFaults Faults { get; }
}

/// <summary>
/// A source's fault log, safe to write from its reader threads and to read from the ingest's:
/// a running count, the newest faults kept for display, and an event per fault.
/// </summary>
public sealed class SourceFaults
{
    private const int Kept = 32;
    private readonly ConcurrentQueue<SourceFault> _recent = new();
    private readonly string _sourceId;
    private long _count;

    public SourceFaults(string sourceId)
    {
        _sourceId = sourceId;
    }

    /// <summary>Raised on the thread that found the fault.</summary>
    public event Action<SourceFault>? Reported;

    /// <summary>Faults since the source was made.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>The newest faults, oldest first (at most 32).</summary>
    public IReadOnlyList<SourceFault> Recent => _recent.ToArray();

    /// <summary>Tells the source's listeners something worth an event that is no fault (where it listens); not counted, not kept.</summary>
    public void Note(string message) => Reported?.Invoke(new SourceFault(DateTimeOffset.UtcNow, _sourceId, message));

    public SourceFault Report(string message, bool ended = false)
    {
        var fault = new SourceFault(DateTimeOffset.UtcNow, _sourceId, message, ended);
        Interlocked.Increment(ref _count);
        _recent.Enqueue(fault);
        while (_recent.Count > Kept && _recent.TryDequeue(out _))
        {
        }

        Reported?.Invoke(fault);
        return fault;
    }
}
