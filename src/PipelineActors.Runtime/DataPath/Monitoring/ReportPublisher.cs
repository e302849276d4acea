using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Sink;

namespace PipelineActors.Runtime.DataPath.Monitoring;

/// <summary>
/// On the ingest node: once a second, gathers the ingest's and the sink's counters and publishes
/// them (and the ingest's new events) to the monitor topic, so a monitor needs no access to nodes.
/// </summary>
public sealed class ReportPublisher : ReceiveActor, IWithTimers
{
    public ReportPublisher(string jobId, IActorRef ingest, IActorRef sink)
    {
        ReceiveAsync<Tick>(async _ =>
        {
            IngestStats i;
            SinkStats s;
            try
            {
                i = await ingest.Ask<IngestStats>(GetIngestStats.Instance, TimeSpan.FromSeconds(2));
                s = await sink.Ask<SinkStats>(GetSinkCounters.Instance, TimeSpan.FromSeconds(2));
            }
            catch (AskTimeoutException)
            {
                return;
            }

            var now = MonitorTopic.Now();
            var nowTicks = System.Diagnostics.Stopwatch.GetTimestamp();
            var recent = i.Events.TakeLast(20)
                .Select(e => new PipelineEvent(
                    now - (long)((nowTicks - e.Ticks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency), "ingest", e.Text, jobId))
                .ToList();
            MonitorTopic.Publish(Context.System, new PipelineReport(
                now,
                jobId,
                i.Accepted,
                s.Delivered,
                i.Skipped,
                s.Failed,
                i.Resent,
                i.Replayed,
                s.DuplicatesDropped,
                s.OutOfOrder,
                i.Accepted - (i.DeliveredThrough + 1),
                s.RecentLatencyMs[0],
                s.RecentLatencyMs[1],
                s.RecentLatencyMs[2],
                i.Epoch,
                i.Plan?.Placements ?? [],
                recent));
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string jobId, IActorRef ingest, IActorRef sink) =>
        Akka.Actor.Props.Create(() => new ReportPublisher(jobId, ingest, sink));

    protected override void PreStart() => Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromSeconds(1));

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}
