using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.TestKit;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sink.Decoders;
using PipelineActors.Runtime.DataPath.Sink.Destinations;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using static PipelineActors.Runtime.Tests.DataPath.Sink.Destinations.ResultFiles;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Sink;

/// <summary>
/// A decoder or writer that fails costs one frame and an event, never the sink (R3): the stream goes on, the frame
/// is counted as not written, and a sink restarted anyway carries on with its state.
/// </summary>
public sealed class SinkFaultSpecs : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sink-faults-").FullName;
    private readonly TestProbe _ingest;
    private readonly TestProbe _events;

    public SinkFaultSpecs()
        : base(TestNodes.Config(Roles.Ingest), PipelineConfig.SystemName)
    {
        _ingest = CreateTestProbe();
        _events = CreateTestProbe();
        DistributedPubSub.Get(Sys).Mediator.Tell(new Subscribe(Topics.Pipeline, _events.Ref), _events.Ref);
        _events.ExpectMsg<SubscribeAck>();
    }

    [Fact]
    public void A_decoder_that_refuses_an_output_costs_that_frame_an_event_and_the_stream_goes_on_and_a_NaN_score_is_written()
    {
        // The text-direction decoder on real outputs: frame 1's shape is not [N,2] (a decoder/model mismatch throws, R3's
        // trigger); frame 3's score is NaN, which result lines write as the string "NaN", so that frame is written too.
        var path = Path.Combine(_folder, "results.jsonl");
        var context = new ResultContext(MqttSettings.From(Sys.Settings.Config), _ => { })
        {
            Decoder = DecoderRegistry.Get("paddleocr-cls"),
            DecodeContext = new DecodeContext(192, 48, 192, 48),
        };
        var sink = Sys.ActorOf(SinkActor.Props(ResultDestinations.Open([path], "cam-1", context), jobName: "cam-1"));
        sink.Tell(new AttachIngest(_ingest.Ref));

        sink.Tell(Softmax(0, 0.9f, 0.1f));
        sink.Tell(Softmax(1, 0.9f, 0.1f, 0.0f));
        sink.Tell(Softmax(2, 0.2f, 0.8f));
        sink.Tell(Softmax(3, float.NaN, float.NaN));
        sink.Tell(Softmax(4, 0.7f, 0.3f));

        Assert.Equal([0L, 1, 2, 3, 4], Enumerable.Range(0, 5).Select(_ => _ingest.ExpectMsg<FrameReceived>().DeliveredThrough));
        var notWritten = _events.ExpectMsg<PipelineEvent>();
        Assert.Equal("sink cam-1", notWritten.Source);
        Assert.Contains("frame 1 was not written", notWritten.Text, StringComparison.Ordinal);
        Assert.Contains("not [N,2]", notWritten.Text, StringComparison.Ordinal);
        Assert.Contains("written again from frame 2", _events.ExpectMsg<PipelineEvent>().Text, StringComparison.Ordinal);
        _events.ExpectNoMsg(TimeSpan.FromMilliseconds(500));

        var stats = Stats(sink);
        Assert.Equal((5L, 1L, 5L, 0), (stats.Delivered, stats.FailedToWrite, stats.NextExpected, stats.Restarts));
        Sys.Stop(sink);
        AwaitCondition(() => ReadShared(path).Count(c => c == '\n') == 4);
        var lines = ReadShared(path).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([0L, 2, 3, 4], lines.Select(IdOf));
        Assert.Contains("\"paddleocr-cls\":{\"class\":1,\"angle\":180", lines[1], StringComparison.Ordinal);
        Assert.Contains("\"score\":\"NaN\"", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sink_restarted_by_its_parent_keeps_its_next_id_its_buffer_its_ingest_and_its_writer()
    {
        var writer = new CollectingResultWriter();
        var parent = Sys.ActorOf(Props.Create(() => new RestartingParent(SinkActor.Props(writer, 10, "cam-1"))));
        var sink = await parent.Ask<IActorRef>(RestartingParent.WhichSink.Instance, TimeSpan.FromSeconds(3));
        sink.Tell(new AttachIngest(_ingest.Ref));
        sink.Tell(Result(10));
        _ingest.ExpectMsg(new FrameReceived(10, 10));
        sink.Tell(Result(12)); // buffered, and confirmed: the ingest will never send it again
        _ingest.ExpectMsg(new FrameReceived(12, 10));

        sink.Tell(Kill.Instance); // a real restart of the sink, by its parent's strategy

        Assert.Contains("restarted after ActorKilledException", _events.ExpectMsg<PipelineEvent>().Text, StringComparison.Ordinal);
        sink.Tell(Result(10, attempt: 2)); // a late duplicate of a written frame
        _ingest.ExpectMsg(new FrameReceived(10, 10));
        sink.Tell(Result(11));
        _ingest.ExpectMsg(new FrameReceived(11, 12));

        Assert.Equal([10L, 11, 12], writer.Snapshot().Select(o => o.FrameId));
        var stats = Stats(sink);
        Assert.Equal((3L, 1L, 13L, 1), (stats.Delivered, stats.DuplicatesDropped, stats.NextExpected, stats.Restarts));
    }

    [Fact]
    public void A_full_results_disk_costs_the_frames_it_cannot_hold_an_event_and_writing_resumes_when_there_is_room()
    {
        // Root ignores permissions, so a read-only folder would not fail here; a full disk fails for everyone.
        // The test mounts a 256 KiB tmpfs (needs root or CAP_SYS_ADMIN, as CI runs), fills it, then frees it.
        using var disk = SmallDisk.Mount(Path.Combine(_folder, "disk"), 256 * 1024);
        var full = Path.Combine(disk.Folder, "results.jsonl");
        var roomy = Path.Combine(_folder, "results.jsonl");
        var destinations = ResultDestinations.Open([full, roomy], "cam-1", new ResultContext(MqttSettings.From(Sys.Settings.Config), _ => { }));
        var sink = Sys.ActorOf(SinkActor.Props(destinations, jobName: "cam-1"));
        sink.Tell(new AttachIngest(_ingest.Ref));
        var next = 0L;
        void Send(int frames)
        {
            for (var i = 0; i < frames; i++, next++)
            {
                sink.Tell(Result(next));
                Assert.Equal(next, _ingest.ExpectMsg<FrameReceived>().DeliveredThrough);
            }
        }

        Send(20);
        disk.Fill();
        Send(100); // more than the free part of the file's last page can hold

        var notWritten = _events.FishForMessage<PipelineEvent>(e => e.Text.Contains("was not written", StringComparison.Ordinal));
        Assert.Contains(full, notWritten.Text, StringComparison.Ordinal);
        Assert.Contains("No space left on device", notWritten.Text, StringComparison.Ordinal);
        var failed = Stats(sink).FailedToWrite;
        Assert.InRange(failed, 1, 100);

        disk.Free();
        Send(20);

        var again = _events.FishForMessage<PipelineEvent>(e => e.Text.Contains("again", StringComparison.Ordinal));
        Assert.Contains("written again from frame", again.Text, StringComparison.Ordinal);
        var stats = Stats(sink);
        Assert.Equal((140L, failed, 140L), (stats.Delivered, stats.FailedToWrite, stats.NextExpected));
        Assert.Equal(Enumerable.Range(0, 140).Select(i => (long)i), Ids(ReadShared(roomy)));
        var onFullDisk = Ids(ReadShared(full)); // every line whole JSON, none torn by the failed writes
        Assert.Equal(140 - failed, onFullDisk.Count);
        Assert.Equal(onFullDisk.Order(), onFullDisk);
        Assert.Equal(Enumerable.Range(120, 20).Select(i => (long)i), onFullDisk.TakeLast(20));
        Assert.Equal(destinations.Counters()[0] with { Name = "" }, new ResultDestinationCounters("", 140 - failed, failed, 0, 0, 0));
        Sys.Stop(sink);
    }

    [Fact]
    public void A_destinations_trouble_reaches_the_monitor_topic_as_an_event_of_the_jobs_sink()
    {
        var path = Path.Combine(_folder, "torn.jsonl");
        File.WriteAllText(path, "{\"frame\":0,\"source\":\"camera-1\"}\n{\"frame\":1,\"sou");

        using var destinations = ResultDestinations.Open([path], "cam-1", ResultContext.ForNode(Sys, "cam-1"));

        var torn = _events.ExpectMsg<PipelineEvent>();
        Assert.Equal("sink cam-1", torn.Source);
        Assert.Contains("torn last line", torn.Text, StringComparison.Ordinal);
        Assert.Equal(0L, destinations.LastWrittenId);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private SinkStats Stats(IActorRef sink)
    {
        sink.Tell(GetSinkStats.Instance);
        return ExpectMsg<SinkStats>();
    }

    private static Frame Result(long id, int attempt = 1) =>
        new(id, "camera-1", 1, 1_700_000_000_000_000 + id, attempt, [Logits(id)]);

    private static Frame Softmax(long id, params float[] p) =>
        new(id, "camera-1", 1, 1_700_000_000_000_000 + id, 1, 
            [new HostTensor("softmax", DataType.Float, [1, p.Length], [.. p.SelectMany(BitConverter.GetBytes)])]);

    /// <summary>A parent that restarts its sink on any failure (Akka's default for a top-level actor would stop it on Kill).</summary>
    private sealed class RestartingParent : ReceiveActor
    {
        public RestartingParent(Props sink)
        {
            var child = Context.ActorOf(sink, "sink");
            Receive<WhichSink>(_ => Sender.Tell(child));
        }

        protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Restart);

        /// <summary>Asks for the sink's reference.</summary>
        public sealed class WhichSink
        {
            public static readonly WhichSink Instance = new();

            private WhichSink()
            {
            }
        }
    }

    /// <summary>A tiny tmpfs of its own: a disk that really fills up, whoever the test runs as.</summary>
    private sealed class SmallDisk : IDisposable
    {
        private SmallDisk(string folder) => Folder = folder;

        public string Folder { get; }

        private string Filler => Path.Combine(Folder, "filler");

        public static SmallDisk Mount(string folder, int bytes)
        {
            Directory.CreateDirectory(folder);
            Run("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", folder);
            return new SmallDisk(folder);
        }

        /// <summary>Takes every free block.</summary>
        public void Fill()
        {
            using var filler = new FileStream(Filler, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
            var block = new byte[4096];
            try
            {
                while (true)
                {
                    filler.Write(block);
                }
            }
            catch (IOException)
            {
                // full
            }
        }

        public void Free() => File.Delete(Filler);

        public void Dispose() => Run("umount", "-l", Folder);

        private static void Run(string program, params string[] arguments)
        {
            var start = new ProcessStartInfo(program) { RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(
                process.ExitCode == 0,
                $"{program} {string.Join(' ', arguments)} failed ({error.Trim()}); "
                + "this test needs root (or CAP_SYS_ADMIN) to mount a small tmpfs that fills up");
        }
    }
}
