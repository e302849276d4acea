using System.Diagnostics;
using Akka.Actor;
using PipelineActors.Runtime.DataPath.Sources;

namespace PipelineActors.Runtime.DataPath.Ingest;

/// <summary>Reader to ingest: a frame waits to be taken, or the source has ended.</summary>
public sealed class SourceReady : INoSerializationVerificationNeeded
{
    public static readonly SourceReady Instance = new();

    private SourceReady()
    {
    }
}

/// <summary>
/// Reads one source on a thread of its own, so a camera's blocking read never holds the ingest's
/// thread. Frames are handed over through a <see cref="FramePacer"/>: a camera's newest frame waits
/// (older ones are skipped), a clip's reader blocks until the ingest takes the waiting frame. The
/// ingest is told with <see cref="SourceReady"/> only when a frame starts waiting or the source
/// ends, so its mailbox holds at most about one such message per frame it takes. Disposing stops
/// the thread and disposes the source.
/// </summary>
public sealed class SourceReader : IDisposable
{
    private static readonly TimeSpan JoinPatience = TimeSpan.FromSeconds(2);
    private readonly IFrameSource _source;
    private readonly IActorRef _ingest;
    private readonly FramePacer _pacer;
    private readonly object _gate = new();
    // Never disposed: a reader thread that outlives Dispose's bounded join may still wait on it.
    private readonly ManualResetEventSlim _stopping = new();
    private readonly Thread _thread;
    private bool _started;
    private bool _disposed;
    private string? _error;

    public SourceReader(IFrameSource source, IActorRef ingest)
    {
        _source = source;
        _ingest = ingest;
        _pacer = new FramePacer(source.IsLive, source.FramesPerSecond, source.PacesItself);
        _thread = new Thread(Run) { IsBackground = true, Name = $"source reader {source.Id}" };
    }

    public bool IsLive => _pacer.IsLive;

    /// <summary>Live frames replaced by newer ones before the ingest took them.</summary>
    public long Skipped
    {
        get
        {
            lock (_gate)
            {
                return _pacer.Skipped;
            }
        }
    }

    /// <summary>The source has ended and every frame it gave has been taken.</summary>
    public bool Exhausted
    {
        get
        {
            lock (_gate)
            {
                return _pacer.Exhausted;
            }
        }
    }

    /// <summary>Why the source ended, when it threw instead of ending (null otherwise).</summary>
    public string? Error
    {
        get
        {
            lock (_gate)
            {
                return _error;
            }
        }
    }

    /// <summary>Starts reading (once): a camera starts when the pipeline can take its first frame.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_started)
            {
                return;
            }

            _started = true;
        }

        _thread.Start();
    }

    /// <summary>The waiting frame, if any; taking a clip's frame lets its reader read the next one.</summary>
    public SourceFrame? TryTake()
    {
        lock (_gate)
        {
            var frame = _pacer.Take();
            if (frame is not null)
            {
                Monitor.PulseAll(_gate);
            }

            return frame;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Monitor.PulseAll(_gate);
        }

        _stopping.Set();
        // Disposing first ends a read blocked on a camera (ffmpeg is killed), so the thread can finish.
        _source.Dispose();
        if (_started && Thread.CurrentThread != _thread)
        {
            _thread.Join(JoinPatience);
        }
    }

    private void Run()
    {
        TimeSpan? lastReadStart = null;
        var clock = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    while (!_disposed && !_pacer.MayRead)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (_disposed)
                    {
                        return;
                    }
                }

                var wait = _pacer.NextReadAt(lastReadStart) - clock.Elapsed;
                if (wait > TimeSpan.Zero && _stopping.Wait(wait))
                {
                    return;
                }

                lastReadStart = clock.Elapsed;
                var tensors = _source.Read();
                var frame = tensors is null ? null : new SourceFrame(tensors, NowMicros());
                if (Hand(frame, error: null))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (!_stopping.IsSet)
        {
            // A source that throws ends, with the reason, instead of taking the ingest down with it.
            Hand(null, $"{e.GetType().Name}: {e.Message}");
        }
        catch (Exception) when (_stopping.IsSet)
        {
            // A read cut short by Dispose: nobody waits for this frame any more.
        }
    }

    /// <summary>Offers a frame (null: the source ended) and tells the ingest if it must look; true when reading is over.</summary>
    private bool Hand(SourceFrame? frame, string? error)
    {
        bool tell;
        lock (_gate)
        {
            if (_disposed)
            {
                return true;
            }

            _error ??= error;
            tell = frame is null ? _pacer.End() : _pacer.Offer(frame);
        }

        if (tell)
        {
            _ingest.Tell(SourceReady.Instance);
        }

        return frame is null;
    }

    private static long NowMicros() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
}
