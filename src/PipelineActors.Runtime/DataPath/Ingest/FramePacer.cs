using PipelineActors.Protocol;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Ingest;

/// <summary>A frame as the source gave it, before the ingest numbers it.</summary>
/// <param name="CaptureUnixMicros">When the reader got it from the source.</param>
public sealed record SourceFrame(IReadOnlyList<HostTensor> Tensors, long CaptureUnixMicros);

/// <summary>
/// The hand-over between a source's reader and the ingest, without threads or clocks: one frame
/// waits at most. A clip's next frame is read only once the waiting one is taken (the ingest takes
/// it when it has credit), so a clip never loses a frame; a live source's newest frame replaces the
/// waiting one, which is counted as skipped. Reads are spaced by the source's rate unless the
/// source paces itself (a camera's reads block until its next frame).
/// </summary>
public sealed class FramePacer
{
    private SourceFrame? _waiting;

    /// <param name="live">A camera: frames come on its clock and the oldest unsent one gives way.</param>
    /// <param name="framesPerSecond">The most reads per second; 0 for as fast as frames are taken.</param>
    /// <param name="pacesItself">The source's reads wait for its own clock, so the reader adds no wait of its own.</param>
    public FramePacer(bool live, double framesPerSecond, bool pacesItself)
    {
        if (!(framesPerSecond >= 0) || double.IsInfinity(framesPerSecond))
        {
            throw new ArgumentOutOfRangeException(
                nameof(framesPerSecond), framesPerSecond, "A rate is a finite number of frames per second, 0 or more.");
        }

        IsLive = live;
        Interval = pacesItself || framesPerSecond == 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(1 / framesPerSecond);
    }

    public bool IsLive { get; }

    /// <summary>The shortest time from one read's start to the next one's.</summary>
    public TimeSpan Interval { get; }

    /// <summary>Live frames replaced by newer ones before the ingest could take them.</summary>
    public long Skipped { get; private set; }

    /// <summary>A frame waits to be taken.</summary>
    public bool HasWaiting => _waiting is not null;

    /// <summary>The source has ended; once nothing waits, no frame will come.</summary>
    public bool SourceEnded { get; private set; }

    /// <summary>Ended, and nothing left to take.</summary>
    public bool Exhausted => SourceEnded && _waiting is null;

    /// <summary>The reader may read now: a clip waits while its last frame is not taken; a camera never waits.</summary>
    public bool MayRead => !SourceEnded && (IsLive || _waiting is null);

    /// <summary>When the read after the one that started at <paramref name="lastReadStart"/> may start (null: none yet).</summary>
    public TimeSpan NextReadAt(TimeSpan? lastReadStart) => lastReadStart is { } last ? last + Interval : TimeSpan.Zero;

    /// <summary>Puts a frame read from the source in place; true when the ingest is to be told (nothing was waiting).</summary>
    public bool Offer(SourceFrame frame)
    {
        if (SourceEnded)
        {
            throw new InvalidOperationException("The source has ended; it offers no more frames.");
        }

        if (_waiting is null)
        {
            _waiting = frame;
            return true;
        }

        if (!IsLive)
        {
            throw new InvalidOperationException("A clip's frame is read only once the waiting one is taken; none is dropped.");
        }

        // The pipeline is full: the oldest unsent frame gives way to the newest. The ingest was told
        // when the first of them arrived, so a fast camera adds no message to its mailbox.
        Skipped++;
        _waiting = frame;
        return false;
    }

    /// <summary>The waiting frame, if any; a clip's reader may then read the next one.</summary>
    public SourceFrame? Take()
    {
        var frame = _waiting;
        _waiting = null;
        return frame;
    }

    /// <summary>The source has no more frames; true when the ingest is to be told.</summary>
    public bool End()
    {
        if (SourceEnded)
        {
            return false;
        }

        SourceEnded = true;
        if (IsLive && _waiting is not null)
        {
            // A camera that stops takes its unsent frame with it, as it always has: the frame is
            // counted skipped, so accepted plus skipped is what the camera gave.
            Skipped++;
            _waiting = null;
        }

        return true;
    }
}
