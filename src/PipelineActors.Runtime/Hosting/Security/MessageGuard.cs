using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Event;
using PipelineActors.Onnx;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>
/// What a node believes from its peers (<c>pipeline.limits</c>): the wire's lengths and counts, how far a plan's epoch
/// may jump, and how many chunked frames it puts together for one sender and for how long.
/// </summary>
public sealed record NodeLimits(WireLimits Wire, long EpochStep, int PartialFramesPerSender, TimeSpan PartialFrameTimeout)
{
    /// <summary>Reads <c>pipeline.limits</c>; a bad value is one sentence naming its key.</summary>
    public static NodeLimits From(Config config)
    {
        var wire = WireLimits.From(config);
        const string StepKey = "pipeline.limits.epoch-step";
        const string PerSenderKey = "pipeline.limits.partial-frames-per-sender";
        const string TimeoutKey = "pipeline.limits.partial-frame-timeout";
        long step;
        int perSender;
        TimeSpan timeout;
        try
        {
            step = config.GetLong(StepKey);
            perSender = config.GetInt(PerSenderKey);
            timeout = config.GetTimeSpan(TimeoutKey);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new PipelineInputException($"pipeline.limits: {e.Message.TrimEnd('.')}; give epoch-step and partial-frames-per-sender as "
                + "whole numbers and partial-frame-timeout as a time such as 30s.");
        }

        if (step is < 1 or > 1L << 40)
        {
            throw new PipelineInputException($"{StepKey} is {step}; give 1 to {1L << 40}, such as 1000000.");
        }

        if (perSender is < 1 or > 4096)
        {
            throw new PipelineInputException($"{PerSenderKey} is {perSender}; give 1 to 4096, such as 64.");
        }

        if (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromHours(1))
        {
            throw new PipelineInputException($"{TimeoutKey} is {timeout}; give a positive time up to 1h, such as 30s.");
        }

        return new NodeLimits(wire, step, perSender, timeout);
    }

    /// <summary>The limits of the actor system's configuration.</summary>
    public static NodeLimits Of(ActorSystem system) => From(system.Settings.Config);

    /// <summary>An assembler's limits: <paramref name="maxPartial"/> partial frames in all, this node's per sender and timeout.</summary>
    public AssemblyLimits Assembly(int maxPartial) =>
        new(maxPartial, Math.Min(maxPartial, PartialFramesPerSender), PartialFrameTimeout, Wire);

    /// <summary>
    /// Whether <paramref name="epoch"/> may follow <paramref name="current"/> (-1 before the first): never negative, and at
    /// most <see cref="EpochStep"/> past it, so a forged plan numbered near long.MaxValue cannot lock the real ones out.
    /// Going back is the caller's to judge (a stale plan is acknowledged and ignored, R7).
    /// </summary>
    public bool EpochWithinStep(long epoch, long current) => epoch >= 0 && epoch - Math.Max(current, 0) <= EpochStep;
}

/// <summary>
/// Checks on who sent a control message: plans, deploys, stops and wiring come from the supervisor's node only (the oldest
/// Up member with the coordinator role, where the singleton runs); an actor on this node is trusted. A refused message is
/// counted (<c>pipeline_rejected_messages{reason}</c>) and logged, the first few per reason and then every thousandth,
/// so a flood of forgeries cannot flood the log.
/// </summary>
public static class MessageGuard
{
    private static readonly ConcurrentDictionary<string, long> Refused = new(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="sender"/> is on this node or on the supervisor's (the oldest Up coordinator).</summary>
    public static bool FromSupervisorNode(ActorSystem system, IActorRef sender)
    {
        var address = sender.Path.Address;
        if (address.HasLocalScope)
        {
            return !sender.IsNobody();
        }

        if (system is not ExtendedActorSystem { Provider: Akka.Cluster.ClusterActorRefProvider })
        {
            return false;
        }

        var oldest = Cluster.Get(system).State.Members
            .Where(m => m.Status == MemberStatus.Up && m.HasRole(Roles.Coordinator))
            .Aggregate((Member?)null, (a, m) => a is null || m.IsOlderThan(a) ? m : a);
        return oldest is not null && oldest.Address.Equals(address);
    }

    /// <summary>Whether <paramref name="sender"/> is an actor of this node (the ingest and its sink share one).</summary>
    public static bool FromThisNode(IActorRef sender) => sender.Path.Address.HasLocalScope && !sender.IsNobody();

    /// <summary>Counts a dropped message under <paramref name="reason"/> (a short label) and logs <paramref name="text"/> when due.</summary>
    public static void Refuse(ILoggingAdapter log, string reason, string text)
    {
        PipelineMetrics.RejectedMessages.Add(1, new KeyValuePair<string, object?>("reason", reason));
        var count = Refused.AddOrUpdate(reason, 1, (_, n) => n + 1);
        if (count <= 10 || count % 1000 == 0)
        {
            log.Warning("Dropped a message ({0}, {1} so far): {2}", reason, count, text);
        }
    }

    /// <summary>Messages refused under <paramref name="reason"/> since the process started (all actor systems in it).</summary>
    public static long RefusedSoFar(string reason) => Refused.GetValueOrDefault(reason);
}
