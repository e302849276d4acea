using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Event;

namespace PipelineActors.Runtime.ControlPath.Membership.Downing;

/// <summary>The downing settings, <c>pipeline.downing</c> in reference.conf.</summary>
/// <param name="StableAfter">How long a condition must hold before a member is downed for it.</param>
/// <param name="ViewInterval">How often each node sends its views to every member.</param>
/// <param name="SilentAfter">A member whose views have not risen for this long is silent.</param>
/// <param name="FirstViewGrace">How long a member just seen joining may stay silent before its first view arrives.</param>
public sealed record DowningSettings(TimeSpan StableAfter, TimeSpan ViewInterval, TimeSpan SilentAfter, TimeSpan FirstViewGrace)
{
    public static DowningSettings From(Config config)
    {
        var c = config.GetConfig("pipeline.downing");
        var settings = new DowningSettings(
            c.GetTimeSpan("stable-after", TimeSpan.FromSeconds(1.5)),
            c.GetTimeSpan("view-interval", TimeSpan.FromMilliseconds(250)),
            c.GetTimeSpan("silent-after", TimeSpan.FromSeconds(1.25)),
            c.GetTimeSpan("first-view-grace", TimeSpan.FromSeconds(5)));
        return settings.SilentAfter > 2 * settings.ViewInterval && settings.StableAfter > TimeSpan.Zero && settings.FirstViewGrace >= TimeSpan.Zero
            ? settings
            : throw new ConfigurationException(
                "pipeline.downing.silent-after must be more than two view-intervals, stable-after more than zero and first-view-grace not negative.");
    }
}

/// <summary>
/// Akka's downing hook (<c>akka.cluster.downing-provider-class</c>): starts a <see cref="DowningActor"/> on every node.
/// </summary>
public sealed class PipelineDowningProvider : IDowningProvider
{
    private readonly Cluster _cluster;
    private readonly DowningSettings _settings;

    public PipelineDowningProvider(ActorSystem system, Cluster cluster)
    {
        _cluster = cluster;
        _settings = DowningSettings.From(system.Settings.Config);
    }

    /// <summary>The cluster singleton (the supervisor) waits this long after a removal before it starts elsewhere.</summary>
    public TimeSpan DownRemovalMargin => _settings.StableAfter;

    public Props DowningActorProps => Props.Create(() => new DowningActor(_cluster, _settings));
}

/// <summary>Asks this node's <see cref="DowningActor"/> for the views it holds fresh (its own included); local only.</summary>
public sealed class GetReachabilityViews : INoSerializationVerificationNeeded
{
    public static readonly GetReachabilityViews Instance = new();
}

/// <summary>
/// One per node: a few times a second it asks this node's failure detector whom it cannot hear, sends that view (with
/// the latest views of everyone else) to every member, and downs whom <see cref="DowningJudge"/> says to.
/// </summary>
public sealed class DowningActor : ReceiveActor, IWithTimers
{
    private readonly Cluster _cluster;
    private readonly DowningSettings _settings;
    private readonly DowningJudge _judge;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<MemberId, (ReachabilityView View, TimeSpan Rose)> _views = [];
    private readonly HashSet<UniqueAddress> _downed = [];
    private readonly Dictionary<UniqueAddress, TimeSpan> _firstSeen = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly MemberId _self;
    private long _sequence;

    public DowningActor(Cluster cluster, DowningSettings settings)
    {
        _cluster = cluster;
        _settings = settings;
        _judge = new DowningJudge(settings.StableAfter);
        _self = IdOf(cluster.SelfUniqueAddress);
        Receive<Tick>(_ => OnTick());
        Receive<ReachabilityViews>(OnViews);
        Receive<GetReachabilityViews>(_ => Sender.Tell(new ReachabilityViews(
            _views.Values.Where(v => _clock.Elapsed - v.Rose < _settings.SilentAfter).Select(v => v.View).ToList())));
    }

    /// <summary>The path of this node's downing actor, where Akka's cluster daemon starts it.</summary>
    public static string Path => "/system/cluster/core/daemon/downingProvider";

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart() => Timers.StartPeriodicTimer("views", Tick.Instance, _settings.ViewInterval);

    private static MemberId IdOf(UniqueAddress id) => new(id.Address.ToString(), id.Uid);

    private void OnViews(ReachabilityViews message)
    {
        foreach (var view in message.Views)
        {
            // Nobody speaks for this node's own failure detector; a newer number replaces an older one, whoever relays it.
            if (view.Observer == _self || (_views.TryGetValue(view.Observer, out var known) && known.View.Sequence >= view.Sequence))
            {
                continue;
            }

            _views[view.Observer] = (view, _clock.Elapsed);
        }
    }

    private void OnTick()
    {
        var state = _cluster.State;
        var members = state.Members
            .Where(m => m.Status is not (MemberStatus.Down or MemberStatus.Exiting or MemberStatus.Removed))
            .ToList();
        var current = members.ToDictionary(m => IdOf(m.UniqueAddress), m => m.UniqueAddress);
        foreach (var gone in _views.Keys.Where(k => !current.ContainsKey(k)).ToList())
        {
            _views.Remove(gone);
        }

        var now = _clock.Elapsed;
        foreach (var member in members)
        {
            _firstSeen.TryAdd(member.UniqueAddress, now);
        }

        foreach (var gone in _firstSeen.Keys.Where(k => !current.ContainsKey(IdOf(k))).ToList())
        {
            _firstSeen.Remove(gone);
        }

        var detector = _cluster.FailureDetector;
        var cannotHear = members
            .Where(m => !m.UniqueAddress.Equals(_cluster.SelfUniqueAddress) && detector.IsMonitoring(m.Address) && !detector.IsAvailable(m.Address))
            .Select(m => IdOf(m.UniqueAddress))
            .ToList();
        _views[_self] = (new ReachabilityView(_self, ++_sequence, cannotHear), now);

        var outgoing = new ReachabilityViews(_views.Values.Select(v => v.View).ToList());
        foreach (var member in members.Where(m => !m.UniqueAddress.Equals(_cluster.SelfUniqueAddress)))
        {
            Context.ActorSelection(new RootActorPath(member.Address) / Self.Path.Elements).Tell(outgoing);
        }

        // A node that is not yet Up has no say: it knows too little of the cluster it is joining.
        if (_cluster.SelfMember.Status is not (MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving))
        {
            return;
        }

        var picture = new ClusterPicture(
            _cluster.SelfUniqueAddress,
            DowningJudge.KeepingOrder(members).Select(m => new JudgedMember(m.UniqueAddress, DowningJudge.Counts(m), m.Roles)).ToList(),
            state.Unreachable.Select(m => m.UniqueAddress).ToHashSet(),
            members
                .Select(m => m.UniqueAddress)
                .Where(id => !id.Equals(_cluster.SelfUniqueAddress) && IsSilent(id, now))
                .ToHashSet(),
            _views.Values
                .Where(v => now - v.Rose < _settings.SilentAfter && current.ContainsKey(v.View.Observer))
                .SelectMany(v => v.View.Unreachable.Where(current.ContainsKey).Select(s => (current[v.View.Observer], current[s])))
                .ToList());

        foreach (var decision in _judge.Judge(picture, now))
        {
            if (_downed.Add(decision.Member))
            {
                _log.Warning("Downing {0}: {1}", decision.Member.Address, decision.Reason);
                _cluster.Down(decision.Member.Address);
            }
        }
    }

    /// <summary>
    /// No view of the member rose lately. A member never heard from is silent only after a grace from when it was first
    /// seen: a process that has just started (JIT, TLS handshakes, on a loaded board) is often late with its first
    /// heartbeats, and the soak downed such newcomers a second after they joined.
    /// </summary>
    private bool IsSilent(UniqueAddress id, TimeSpan now) =>
        _views.TryGetValue(IdOf(id), out var v)
            ? now - v.Rose >= _settings.SilentAfter
            : now - _firstSeen.GetValueOrDefault(id, now) >= _settings.FirstViewGrace;

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}
