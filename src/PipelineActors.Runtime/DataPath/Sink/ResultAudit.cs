namespace PipelineActors.Runtime.DataPath.Sink;

/// <summary>
/// What reached the results, counted where they land and nowhere else: frame ids written twice,
/// ids written after a higher one, and (given how many frames went in) ids never written. It knows
/// nothing of the ingest's or the sink's bookkeeping, so a bug there shows up here instead of
/// cancelling itself out. Memory is bounded by how far results run ahead of the lowest missing id.
/// </summary>
public sealed class ResultAudit
{
    private readonly SortedSet<long> _ahead = [];
    private long _contiguous; // every id below this has been written
    private long _highest = -1;

    public long Written { get; private set; }

    public long Duplicated { get; private set; }

    public long OutOfOrder { get; private set; }

    /// <summary>Distinct ids written.</summary>
    public long Distinct => _contiguous + _ahead.Count;

    public void Record(long frameId)
    {
        Written++;
        if (frameId < _contiguous || _ahead.Contains(frameId))
        {
            Duplicated++;
            return;
        }

        if (frameId < _highest)
        {
            OutOfOrder++;
        }

        _highest = Math.Max(_highest, frameId);
        if (frameId == _contiguous)
        {
            _contiguous++;
            while (_ahead.Count > 0 && _ahead.Min == _contiguous)
            {
                _ahead.Remove(_contiguous);
                _contiguous++;
            }
        }
        else
        {
            _ahead.Add(frameId);
        }
    }

    /// <summary>Ids 0 .. <paramref name="framesIn"/> - 1 that were never written.</summary>
    public long Lost(long framesIn) => Math.Max(0, framesIn - (_contiguous + _ahead.Count(id => id < framesIn)));
}

/// <summary>Counts every outcome into a <see cref="ResultAudit"/> as it lands, then hands it on.</summary>
public sealed class AuditingResultWriter(IResultWriter inner) : IResultWriter
{
    private readonly object _gate = new();

    public ResultAudit Audit { get; } = new();

    public void Write(FrameOutcome outcome)
    {
        lock (_gate)
        {
            Audit.Record(outcome.FrameId);
        }

        inner.Write(outcome);
    }

    /// <summary>A consistent reading of the counters from another thread, given how many frames went in.</summary>
    public ResultCounts Read(long framesIn)
    {
        lock (_gate)
        {
            return new ResultCounts(Audit.Written, Audit.Duplicated, Audit.OutOfOrder, Audit.Lost(framesIn));
        }
    }

    public void Dispose() => inner.Dispose();
}

/// <summary>The audit's counters at one moment.</summary>
public sealed record ResultCounts(long Written, long Duplicated, long OutOfOrder, long Lost);
