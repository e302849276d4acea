using Akka.Actor;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Monitoring;

namespace PipelineActors.Runtime.Hosting;

/// <summary>
/// The ingest side of one run on an ingest node: the model store that serves stage files, the
/// sink, and the ingest that streams the source; completes when every frame has an outcome.
/// </summary>
public sealed class IngestSession
{
    private readonly TaskCompletionSource<long> _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private IngestSession(IActorRef ingest, IActorRef sink)
    {
        Ingest = ingest;
        Sink = sink;
    }

    public IActorRef Ingest { get; private set; }

    public IActorRef Sink { get; }

    /// <summary>Completes with the number of frames when the source has ended and every frame has an outcome; faults if the ingest fails.</summary>
    public Task<long> Completed => _completed.Task;

    public static IngestSession Start(
        PipelineNode node, PreparedModel model, IFrameSource source, IResultWriter writer, IngestSettings settings, string jobId) =>
        Start(node.System, node.Supervisor, model, source, writer, settings, jobId, jobId);

    /// <param name="system">Where the session's actors are made: the system, or a job run's context (they stop with the run).</param>
    /// <param name="names">What the session's actors are named after (the job id, with the run's number for a job host's runs).</param>
    public static IngestSession Start(
        IActorRefFactory system,
        IActorRef supervisor,
        PreparedModel model,
        IFrameSource source,
        IResultWriter writer,
        IngestSettings settings,
        string jobId,
        string names)
    {
        var store = system.ActorOf(ModelStoreActor.Props(model.FilesBySha), $"model-store-{names}");
        var sink = system.ActorOf(SinkActor.Props(writer, settings.FirstId, jobId, settings.Window), $"sink-{names}");
        var session = new IngestSession(ActorRefs.Nobody, sink);
        var observer = system.ActorOf(Props.Create(() => new CompletionObserver(session._completed)), $"observer-{names}");
        var job = new PipelineJob(jobId, model.Splits, store, ActorRefs.Nobody, sink, settings.Window);
        var ingest = system.ActorOf(IngestActor.Props(source, sink, supervisor, job, settings, observer), $"ingest-{names}");
        sink.Tell(new AttachIngest(ingest));
        system.ActorOf(ReportPublisher.Props(jobId, ingest, sink), $"reports-{names}");
        session.Ingest = ingest;
        return session;
    }

    /// <summary>
    /// Refuses, in one sentence, a job whose message to the supervisor is larger than a remote message may be (review C8):
    /// Akka.Remote would drop it silently, and the ingest would wait for a plan for ever.
    /// </summary>
    public static void CheckFits(ActorSystem system, IReadOnlyList<SplitPlan> splits, long maximumFrameSize)
    {
        var job = new PipelineJob("size-check", splits, ActorRefs.Nobody, ActorRefs.Nobody, ActorRefs.Nobody, 1);
        var bytes = system.Serialization.FindSerializerFor(job).ToBinary(job).Length;
        if (bytes + PipelineSettings.ChunkOverheadBytes > maximumFrameSize)
        {
            throw new Onnx.PipelineInputException(
                $"The job's plans ({splits.Count} splits) take {bytes:N0} bytes, more than akka.remote.dot-netty.tcp.maximum-frame-size "
                + $"({maximumFrameSize:N0}) allows; raise it in the nodes' configuration, or cut for fewer workers.");
        }
    }

    public Task<IngestStats> IngestStatsAsync() => Ingest.Ask<IngestStats>(GetIngestStats.Instance, TimeSpan.FromSeconds(10));

    public Task<SinkStats> SinkStatsAsync() => Sink.Ask<SinkStats>(GetSinkStats.Instance, TimeSpan.FromSeconds(10));

    /// <summary>Counters without the per-frame records (for polling).</summary>
    public Task<SinkStats> SinkCountersAsync() => Sink.Ask<SinkStats>(GetSinkCounters.Instance, TimeSpan.FromSeconds(10));

    private sealed class CompletionObserver : ReceiveActor
    {
        public CompletionObserver(TaskCompletionSource<long> completed)
        {
            Receive<IngestCompleted>(c => completed.TrySetResult(c.Frames));
            Receive<IngestFailed>(f => completed.TrySetException(new InvalidOperationException($"The run cannot complete: {f.Reason}.")));
        }
    }
}
