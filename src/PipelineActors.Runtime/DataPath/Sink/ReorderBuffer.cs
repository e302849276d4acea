namespace PipelineActors.Runtime.DataPath.Sink;

/// <summary>What <see cref="ReorderBuffer{T}.Offer"/> did with an item.</summary>
public enum ReorderOffer
{
    /// <summary>Held until every earlier id has been taken (or taken at once when it is the next).</summary>
    Held,

    /// <summary>Its id was taken already or is held already: a re-sent frame that completed twice.</summary>
    Duplicate,

    /// <summary>Its id lies further ahead than the buffer holds: no honest ingest's window lets a frame run that far.</summary>
    TooFarAhead,
}

/// <summary>
/// Puts items numbered without gaps back in order: each id is handed out once, after every id before it.
/// Pure state, so the sink actor stays a thin shell and the ordering is specified on its own.
/// </summary>
/// <remarks>
/// The span ahead of the next id is bounded because ids come off the wire: one forged id near
/// <see cref="long.MaxValue"/> must not make the buffer hold results (and stall their credit) for ever.
/// </remarks>
public sealed class ReorderBuffer<T>
{
    private readonly SortedDictionary<long, T> _held = [];

    /// <param name="next">The first id to hand out.</param>
    /// <param name="span">How far ahead of the next id an item may be and still be held.</param>
    public ReorderBuffer(long next, long span)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(span, 1);
        Next = next;
        Span = span;
    }

    /// <summary>The id the buffer hands out next; every id below it was handed out.</summary>
    public long Next { get; private set; }

    /// <summary>How far ahead of <see cref="Next"/> an id may be.</summary>
    public long Span { get; }

    /// <summary>Items held, waiting for an earlier id.</summary>
    public int Count => _held.Count;

    /// <summary>Whether <paramref name="id"/> was handed out or is held.</summary>
    public bool Seen(long id) => id < Next || _held.ContainsKey(id);

    /// <summary>Holds <paramref name="item"/> under <paramref name="id"/> unless that id was seen or lies too far ahead.</summary>
    public ReorderOffer Offer(long id, T item)
    {
        if (Seen(id))
        {
            return ReorderOffer.Duplicate;
        }

        if (id - Next >= Span)
        {
            return ReorderOffer.TooFarAhead;
        }

        _held[id] = item;
        return ReorderOffer.Held;
    }

    /// <summary>Takes the next item if it is held, moving <see cref="Next"/> past it.</summary>
    public bool TryTake(out long id, out T item)
    {
        id = Next;
        if (_held.Remove(Next, out item!))
        {
            Next++;
            return true;
        }

        return false;
    }
}
