using PipelineActors.Runtime.DataPath.Sink;

namespace PipelineActors.Runtime.Tests.DataPath.Sink;

/// <summary>The audit counts what reached the results, so each of its counters can be driven above zero.</summary>
public sealed class ResultAuditSpecs
{
    private static ResultAudit Audit(params long[] ids)
    {
        var audit = new ResultAudit();
        foreach (var id in ids)
        {
            audit.Record(id);
        }

        return audit;
    }

    [Fact]
    public void Ids_written_once_each_in_order_count_nothing_wrong()
    {
        var audit = Audit(0, 1, 2, 3, 4);

        Assert.Equal((5L, 0L, 0L, 0L), (audit.Written, audit.Duplicated, audit.OutOfOrder, audit.Lost(5)));
    }

    [Fact]
    public void An_id_written_again_is_a_duplicate_whether_it_is_behind_the_contiguous_prefix_or_ahead_of_it()
    {
        var audit = Audit(0, 1, 0, 5, 5, 2);

        Assert.Equal(2, audit.Duplicated);
        Assert.Equal(4, audit.Distinct);
    }

    [Fact]
    public void An_id_written_after_a_higher_one_is_out_of_order_once()
    {
        var audit = Audit(0, 2, 1, 3);

        Assert.Equal(1, audit.OutOfOrder);
        Assert.Equal(0, audit.Lost(4));
        Assert.Equal(0, audit.Duplicated);
    }

    [Fact]
    public void Ids_that_went_in_and_never_came_out_are_lost_and_ids_beyond_the_count_do_not_hide_them()
    {
        var audit = Audit(0, 1, 3, 9);

        Assert.Equal(2, audit.Lost(5)); // 2 and 4
        Assert.Equal(6, audit.Lost(10)); // 2, 4, 5, 6, 7 and 8
        Assert.Equal(0, audit.Lost(2));
    }

    [Fact]
    public void The_writer_counts_what_it_is_given_and_passes_every_outcome_on()
    {
        var inner = new CollectingResultWriter();
        using var writer = new AuditingResultWriter(inner);

        foreach (var id in new long[] { 0, 1, 1, 3, 2 })
        {
            writer.Write(new FrameOutcome(id, "test", 0, 0, [], null));
        }

        Assert.Equal(new ResultCounts(5, 1, 1, 1), writer.Read(5));
        Assert.Equal(5, inner.Snapshot().Count);
    }
}
