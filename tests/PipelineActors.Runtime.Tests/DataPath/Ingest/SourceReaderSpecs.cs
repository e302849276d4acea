using System.Diagnostics;
using Akka.TestKit;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Ingest;

/// <summary>The reader thread with fake sources: a slow camera, a fast camera, fast and paced clips, a source that throws or blocks.</summary>
public sealed class SourceReaderSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly TestProbe _ingest;

    public SourceReaderSpecs()
    {
        _ingest = CreateTestProbe();
    }

    [Fact]
    public void Nothing_is_read_before_the_reader_is_started()
    {
        var source = new FakeSource(live: true, framesPerSecond: 100);
        using var reader = new SourceReader(source, _ingest.Ref);

        Thread.Sleep(150);

        Assert.Equal(0, source.Reads);
        _ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(10));
    }

    [Fact]
    public void A_15_fps_camera_asked_for_30_fps_streams_at_its_own_rate_without_backlog_or_skips()
    {
        // The camera's read blocks for 1/15 s; the reader adds no wait, and the ingest takes each frame when told.
        var source = new FakeSource(live: true, framesPerSecond: 30, pacesItself: true, readTime: TimeSpan.FromMilliseconds(1000.0 / 15));
        using var reader = new SourceReader(source, _ingest.Ref);
        var started = Stopwatch.StartNew();
        reader.Start();

        var clock = Stopwatch.StartNew();
        var taken = new List<long>();
        var told = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            _ingest.ExpectMsg<SourceReady>(TimeSpan.FromSeconds(1));
            told++;
            if (reader.TryTake() is { } frame)
            {
                taken.Add(FakeSource.SequenceOf(frame));
            }
        }

        // About 15 a second, never the 30 asked for: a rate over the time the reader really ran (the loop can overrun its
        // two seconds); the lower bound only says that frames flowed on a loaded machine.
        var readsPerSecond = source.Reads / started.Elapsed.TotalSeconds;
        Assert.InRange(readsPerSecond, 2.5, 22);
        Assert.True(taken.SequenceEqual(taken.Order()), $"captures out of order: {string.Join(", ", taken)}");
        // Nothing backs up: every capture was taken or (when this loop was late) replaced, but for one in hand.
        Assert.InRange(taken.Count + reader.Skipped, source.Reads - 2, source.Reads);
        // How many were replaced depends on how late this loop (the consumer) was, not on the reader: on an idle 2-core VM
        // it was late for about half the captures (22 of 37), under load for none, so no bound is put on it here.
        Assert.True(told <= taken.Count + 1, $"{told} messages for {taken.Count} frames");
        Assert.False(source.ReadsOverlapped);
    }

    [Fact]
    public void A_source_slower_than_its_rate_is_read_back_to_back_and_one_faster_is_spaced_by_the_rate()
    {
        var slow = new FakeSource(live: true, framesPerSecond: 30, pacesItself: false, readTime: TimeSpan.FromMilliseconds(100));
        var fast = new FakeSource(live: true, framesPerSecond: 20);
        using var slowReader = new SourceReader(slow, _ingest.Ref);
        using var fastReader = new SourceReader(fast, CreateTestProbe().Ref);

        slowReader.Start();
        fastReader.Start();
        Thread.Sleep(1000);

        // Upper bounds are the rule; lower bounds only say that reads happened on a loaded machine.
        Assert.InRange(slow.Reads, 2, 11); // 10 a second: the source's rate, not 30
        Assert.InRange(fast.Reads, 3, 21); // 20 a second: the rate, not as fast as the CPU allows
    }

    [Fact]
    public void A_fast_camera_that_nobody_takes_from_keeps_only_its_newest_frame_and_tells_the_ingest_once()
    {
        var source = new FakeSource(live: true, framesPerSecond: 200);
        using var reader = new SourceReader(source, _ingest.Ref);
        reader.Start();

        _ingest.ExpectMsg<SourceReady>(TimeSpan.FromSeconds(10));
        AwaitCondition(() => source.Reads >= 20, TimeSpan.FromSeconds(20));
        _ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(50)); // the mailbox does not fill with captures
        var newest = FakeSource.SequenceOf(reader.TryTake()!);
        var reads = source.Reads;

        Assert.InRange(newest, reads - 2, reads - 1); // the newest capture (the reader may hold the next one)
        Assert.InRange(reader.Skipped, newest - 1, newest);
    }

    [Fact]
    public void A_fast_clip_drops_no_frame_and_reads_at_most_one_ahead_of_the_ingest()
    {
        var source = new FakeSource(live: false, framesPerSecond: 0, count: 30);
        using var reader = new SourceReader(source, _ingest.Ref);
        reader.Start();

        var taken = new List<long>();
        while (!reader.Exhausted)
        {
            if (reader.TryTake() is { } frame)
            {
                taken.Add(FakeSource.SequenceOf(frame));
                Thread.Sleep(5); // a slow pipeline: the reader must wait, not read on
                Assert.True(source.Reads <= taken.Count + 1, $"{source.Reads} read for {taken.Count} taken");
            }
            else
            {
                _ingest.ExpectMsg<SourceReady>(TimeSpan.FromSeconds(2));
            }
        }

        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), taken);
        Assert.Equal(0, reader.Skipped);
        Assert.Equal(31, source.Reads); // the last read found the end
    }

    [Fact]
    public void A_clip_with_a_rate_is_played_no_faster_than_the_rate()
    {
        var source = new FakeSource(live: false, framesPerSecond: 25, count: 11);
        using var reader = new SourceReader(source, _ingest.Ref);
        var clock = Stopwatch.StartNew();
        reader.Start();

        var taken = 0;
        while (!reader.Exhausted)
        {
            if (reader.TryTake() is not null)
            {
                taken++;
            }
            else
            {
                _ingest.ExpectMsg<SourceReady>(TimeSpan.FromSeconds(2));
            }
        }

        Assert.Equal(11, taken);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(380), $"11 frames at 25 fps took only {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Disposing_releases_a_read_blocked_on_the_camera_stops_the_thread_and_disposes_the_source()
    {
        var source = new FakeSource(live: true, framesPerSecond: 30, pacesItself: true, blockUntilDisposed: true);
        var reader = new SourceReader(source, _ingest.Ref);
        reader.Start();
        AwaitCondition(() => source.Reads == 1);

        var clock = Stopwatch.StartNew();
        reader.Dispose();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"Dispose took {clock.ElapsedMilliseconds} ms");
        Assert.Equal(1, source.Disposals);
        Thread.Sleep(100);
        Assert.Equal(1, source.Reads);
        _ingest.ExpectNoMsg(TimeSpan.FromMilliseconds(50)); // the cut-short read hands nothing over
        Assert.Throws<ObjectDisposedException>(reader.Start); // a disposed source is never read again
        reader.Dispose();
        Assert.Equal(1, source.Disposals);
    }

    [Fact]
    public void A_source_that_throws_ends_with_its_reason_instead_of_taking_the_reader_down()
    {
        var source = new FakeSource(live: false, framesPerSecond: 0, throwAt: 2);
        using var reader = new SourceReader(source, _ingest.Ref);
        reader.Start();

        var taken = new List<long>();
        while (!reader.Exhausted)
        {
            if (reader.TryTake() is { } frame)
            {
                taken.Add(FakeSource.SequenceOf(frame));
            }
            else
            {
                _ingest.ExpectMsg<SourceReady>(TimeSpan.FromSeconds(2));
            }
        }

        Assert.Equal([0L, 1], taken);
        Assert.Contains("IOException: camera unplugged", reader.Error, StringComparison.Ordinal);
    }

    /// <summary>A source whose n-th read returns n, optionally slow, blocking, finite or failing.</summary>
    private sealed class FakeSource(
        bool live,
        double framesPerSecond,
        bool pacesItself = false,
        TimeSpan? readTime = null,
        long? count = null,
        long? throwAt = null,
        bool blockUntilDisposed = false) : IFrameSource
    {
        private readonly ManualResetEventSlim _disposed = new();
        private long _reads;
        private int _reading;
        private int _disposals;

        public string Id => "fake";

        public bool IsLive => live;

        public double FramesPerSecond => framesPerSecond;

        public bool PacesItself => pacesItself;

        public long Reads => Interlocked.Read(ref _reads);

        public int Disposals => Volatile.Read(ref _disposals);

        public bool ReadsOverlapped { get; private set; }

        public static long SequenceOf(SourceFrame frame) => BitConverter.ToInt64(frame.Tensors[0].Data);

        public IReadOnlyList<HostTensor>? Read()
        {
            if (Interlocked.Exchange(ref _reading, 1) == 1)
            {
                ReadsOverlapped = true;
            }

            try
            {
                var sequence = Interlocked.Increment(ref _reads) - 1;
                if (blockUntilDisposed)
                {
                    _disposed.Wait();
                    return null;
                }

                if (readTime is { } time)
                {
                    Thread.Sleep(time);
                }

                if (sequence == throwAt)
                {
                    throw new IOException("camera unplugged");
                }

                return sequence >= count ? null : [new HostTensor("x", DataType.Int64, [1], BitConverter.GetBytes(sequence))];
            }
            finally
            {
                Volatile.Write(ref _reading, 0);
            }
        }

        public void Dispose()
        {
            Interlocked.Increment(ref _disposals);
            _disposed.Set();
        }
    }
}
