using PipelineActors.Runtime.DataPath.Sink;

namespace PipelineActors.Runtime.Tests.DataPath.Sink;

/// <summary>The sink's ordering on its own: each id handed out once, after every id before it, and no further ahead than its span.</summary>
public sealed class ReorderBufferSpecs
{
    [Fact]
    public void Items_offered_in_any_order_come_out_in_id_order_once_each()
    {
        var random = new Random(7);
        var ids = Enumerable.Range(100, 200).Select(i => (long)i).OrderBy(_ => random.Next()).ToList();
        var buffer = new ReorderBuffer<string>(100, span: 1000);
        var taken = new List<long>();

        foreach (var id in ids)
        {
            Assert.Equal(ReorderOffer.Held, buffer.Offer(id, $"r{id}"));
            Assert.Equal(ReorderOffer.Duplicate, buffer.Offer(id, "again"));
            while (buffer.TryTake(out var next, out var item))
            {
                Assert.Equal($"r{next}", item);
                taken.Add(next);
            }
        }

        Assert.Equal(Enumerable.Range(100, 200).Select(i => (long)i), taken);
        Assert.Equal((300L, 0), (buffer.Next, buffer.Count));
    }

    [Fact]
    public void An_id_already_handed_out_or_below_the_first_is_a_duplicate()
    {
        var buffer = new ReorderBuffer<int>(10, span: 4);
        Assert.Equal(ReorderOffer.Duplicate, buffer.Offer(9, 0));
        Assert.Equal(ReorderOffer.Held, buffer.Offer(10, 0));
        Assert.True(buffer.TryTake(out var id, out _));
        Assert.Equal(10, id);
        Assert.Equal(ReorderOffer.Duplicate, buffer.Offer(10, 0));
        Assert.True(buffer.Seen(10));
        Assert.False(buffer.Seen(11));
    }

    [Fact]
    public void An_id_at_or_beyond_the_span_is_refused_and_held_nothing()
    {
        var buffer = new ReorderBuffer<int>(0, span: 4);
        Assert.Equal(ReorderOffer.Held, buffer.Offer(3, 3));
        Assert.Equal(ReorderOffer.TooFarAhead, buffer.Offer(4, 4));
        Assert.Equal(ReorderOffer.TooFarAhead, buffer.Offer(long.MaxValue, 0));
        Assert.Equal(1, buffer.Count);

        // The span moves with the next id: once 0 is taken, 4 is near enough.
        Assert.Equal(ReorderOffer.Held, buffer.Offer(0, 0));
        Assert.True(buffer.TryTake(out _, out _));
        Assert.Equal(ReorderOffer.Held, buffer.Offer(4, 4));
    }

    [Fact]
    public void Nothing_is_taken_while_the_next_id_is_missing()
    {
        var buffer = new ReorderBuffer<int>(0, span: 8);
        buffer.Offer(1, 1);
        buffer.Offer(2, 2);
        Assert.False(buffer.TryTake(out var id, out _));
        Assert.Equal(0, id);
        Assert.Equal((0L, 2), (buffer.Next, buffer.Count));
    }

    [Fact]
    public void A_span_below_one_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReorderBuffer<int>(0, span: 0));
}
