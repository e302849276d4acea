using System.Diagnostics;
using PipelineActors.Onnx;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sink.Destinations;
using Xunit.Abstractions;
using static PipelineActors.Runtime.Tests.DataPath.Sink.Destinations.ResultFiles;

namespace PipelineActors.Runtime.Tests.DataPath.Sink.Destinations;

/// <summary>A results file is appended to, never truncated; a resumed job continues after its last id and writes no id twice.</summary>
public sealed class JsonLinesFileSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("results-").FullName;
    private readonly (Action<string> Report, System.Collections.Concurrent.ConcurrentQueue<string> Events) _events = Events();

    private string File1 => Path.Combine(_folder, "results.jsonl");

    [Fact]
    public void Each_line_is_readable_by_another_handle_within_a_second_while_the_writer_is_open()
    {
        using var file = Open();
        Assert.Null(file.LastWrittenId);

        var clock = Stopwatch.StartNew();
        file.Write(Outcome(0));
        file.Write(Outcome(1));
        List<long> seen;
        do
        {
            seen = Ids(ReadShared(File1));
        }
        while (seen.Count < 2 && clock.Elapsed < TimeSpan.FromSeconds(1));

        Assert.Equal([0L, 1], seen);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"lines took {clock.Elapsed.TotalMilliseconds:0} ms to show");
        Assert.Equal(1L, file.LastWrittenId);
    }

    [Fact]
    public void Reopening_keeps_every_line_appends_after_them_and_skips_ids_it_holds_already()
    {
        using (var first = Open())
        {
            for (var id = 0; id < 5; id++)
            {
                first.Write(Outcome(id));
            }
        }

        var before = File.ReadAllText(File1);
        using var resumed = Open();
        Assert.Equal(4L, resumed.LastWrittenId);

        resumed.Write(Outcome(3)); // a resumed job's replay of ids the file holds
        resumed.Write(Outcome(4));
        resumed.Write(Outcome(5));
        resumed.Write(Outcome(6));

        var after = ReadShared(File1);
        Assert.StartsWith(before, after, StringComparison.Ordinal);
        Assert.Equal([0L, 1, 2, 3, 4, 5, 6], Ids(after));
        Assert.Equal((2L, 2L), (resumed.Counters.Written, resumed.Counters.SkippedAlreadyWritten));
        Assert.Equal(6L, resumed.LastWrittenId);
    }

    [Fact]
    public void A_torn_last_line_is_cut_off_on_open_and_reported_and_the_next_result_starts_a_whole_line()
    {
        using (var first = Open())
        {
            first.Write(Outcome(0));
            first.Write(Outcome(1));
        }

        const string torn = "{\"frame\":2,\"source\":\"cam";
        File.AppendAllText(File1, torn);

        using var resumed = Open();

        Assert.Equal(1L, resumed.LastWrittenId);
        Assert.Equal(torn.Length, resumed.TornBytesDropped);
        Assert.Contains(_events.Events, e => e.Contains("torn last line", StringComparison.Ordinal));
        resumed.Write(Outcome(2));
        Assert.Equal([0L, 1, 2], Ids(ReadShared(File1)));
    }

    [Fact]
    public void A_last_line_longer_than_the_first_block_read_back_is_still_found()
    {
        // Lines of 100 KB (a long source name) are longer than the 64 KiB block read from the end first.
        var longSource = new string('s', 100_000);
        using (var first = Open())
        {
            first.Write(Outcome(0) with { SourceId = longSource });
            first.Write(Outcome(1) with { SourceId = longSource });
        }

        File.AppendAllText(File1, "\n\n");
        using var resumed = Open();
        Assert.Equal(1L, resumed.LastWrittenId);
    }

    [Fact]
    public void Twenty_thousand_results_each_a_write_of_its_own_land_whole_and_in_order()
    {
        var clock = Stopwatch.StartNew();
        using (var file = Open())
        {
            for (var id = 0; id < 20_000; id++)
            {
                file.Write(Outcome(id));
            }
        }

        output.WriteLine($"20,000 lines written, synced and closed in {clock.Elapsed.TotalMilliseconds:0} ms "
            + $"({20_000 / clock.Elapsed.TotalSeconds:0} lines/s)");
        Assert.Equal(Enumerable.Range(0, 20_000).Select(i => (long)i), Ids(File.ReadAllText(File1)));
    }

    [Fact]
    public void A_file_that_does_not_end_with_a_result_line_is_refused_in_one_sentence()
    {
        File.WriteAllText(File1, "this is not a results file\n");

        var error = Assert.Throws<PipelineInputException>(Open);

        Assert.Contains(File1, error.Message, StringComparison.Ordinal);
        Assert.Contains("move the file away", error.Message, StringComparison.Ordinal);
        Assert.Equal("this is not a results file\n", File.ReadAllText(File1));
    }

    [Fact]
    public void A_missing_folder_or_a_folder_for_a_file_is_one_sentence()
    {
        var missing = Assert.Throws<PipelineInputException>(
            () => JsonLinesFile.Open(Path.Combine(_folder, "no", "r.jsonl"), o => ResultLine.Format(o), _events.Report));
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
        var folder = Assert.Throws<PipelineInputException>(() => JsonLinesFile.Open(_folder, o => ResultLine.Format(o), _events.Report));
        Assert.Contains("is a folder", folder.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private JsonLinesFile Open() => JsonLinesFile.Open(File1, o => ResultLine.Format(o), _events.Report);
}
