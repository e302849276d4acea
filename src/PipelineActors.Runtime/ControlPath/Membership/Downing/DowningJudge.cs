using Akka.Cluster;

namespace PipelineActors.Runtime.ControlPath.Membership.Downing;

/// <summary>A member as the judge weighs it: who it is, and whether it counts when sides are compared.</summary>
/// <param name="Id">The member's incarnation.</param>
/// <param name="Counts">False for a monitor: it watches, so it never keeps a side alive.</param>
/// <param name="Roles">Its roles: a dead keeper is downed only when another member has one of its leading roles.</param>
public sealed record JudgedMember(UniqueAddress Id, bool Counts, IReadOnlyCollection<string> Roles);

/// <summary>
/// What one node knows at one moment: the members in keeping order (the keeper first), who Akka's gossip marks unreachable,
/// whose reachability views have stopped arriving, and the unreachability each member whose views still arrive observes.
/// </summary>
/// <param name="Self">This node.</param>
/// <param name="Members">Every member that is not Down, Exiting or Removed, keeper first (see <see cref="DowningJudge.KeepingOrder"/>).</param>
/// <param name="Unreachable">Members some observer in the gossip marks unreachable (Akka's failure detector, its pause included).</param>
/// <param name="Silent">Members whose reachability views have reached this node from nobody for a while (never this node).</param>
/// <param name="Observations">Observer to subject, as the latest fresh view of each observer says (this node's own included).</param>
public sealed record ClusterPicture(
    UniqueAddress Self,
    IReadOnlyList<JudgedMember> Members,
    IReadOnlySet<UniqueAddress> Unreachable,
    IReadOnlySet<UniqueAddress> Silent,
    IReadOnlyList<(UniqueAddress Observer, UniqueAddress Subject)> Observations);

/// <summary>A member to down and why (the why is logged).</summary>
public sealed record DowningDecision(UniqueAddress Member, string Reason);

/// <summary>
/// Decides which members to down, for a cluster built around a keeper: the ingest (the camera's side), else the oldest
/// coordinator, else the oldest member. It replaces Akka's split-brain resolver, which downs both ends of every
/// one-way unreachability ("indirectly connected"): a worker resumed from a long pause briefly sees the ingest as
/// unreachable while the ingest still sees it, and the resolver then downed the ingest with it (the chaos soak ended
/// so, twice). Here such a pair loses only its lower-ranked member, and the keeper never goes for a worker's sake.
/// <list type="bullet">
/// <item>A member both unreachable and silent (no view of it reaches anyone this node hears from) is dead: it is downed
/// once that has held for <c>stable-after</c>, unless it is the keeper.</item>
/// <item>A dead keeper is downed only if it is alone on its side, this side has two counted members or more (as
/// Akka's keep-oldest with down-if-alone does) and one of them can stand in for it (another ingest or coordinator);
/// with no stand-in this side waits for the keeper to come back (and, behind a partition, for the keeper's side to down it). If the keeper
/// is not alone, its side is taken to be
/// alive behind a partition, and this node downs itself (the side without the camera is the one to go).</item>
/// <item>An observation between two members that both still speak (one-way or two-way, a flaky link or a stale
/// failure detector after a pause) downs the lower-ranked of the two once it has held for <c>stable-after</c>.</item>
/// </list>
/// Every node judges for itself; a down is idempotent, and nodes that hear the same views come to the same verdicts.
/// The class keeps only how long each condition has held, so it is tested with a clock of the test's own.
/// </summary>
public sealed class DowningJudge(TimeSpan stableAfter)
{
    private readonly Dictionary<string, TimeSpan> _since = new(StringComparer.Ordinal);

    public TimeSpan StableAfter { get; } = stableAfter;

    /// <summary>
    /// Members in keeping order: ingest members first, then coordinators, then the rest, then monitors; within each, the
    /// oldest first. The first counted member is the keeper.
    /// </summary>
    public static IReadOnlyList<Member> KeepingOrder(IEnumerable<Member> members) =>
        members.OrderBy(Rank).ThenBy(m => m, Member.AgeOrdering).ToList();

    /// <summary>Whether the member counts when sides are compared: a monitor-only member never does.</summary>
    public static bool Counts(Member member) => member.Roles.Any(r => r != Hosting.Roles.Monitor) || member.Roles.Count == 0;

    /// <summary>The downs this picture calls for now; conditions that stopped holding start their count again.</summary>
    public IReadOnlyList<DowningDecision> Judge(ClusterPicture picture, TimeSpan now)
    {
        var held = new HashSet<string>(StringComparer.Ordinal);
        var decisions = new List<DowningDecision>();
        var rank = picture.Members.Select((m, i) => (m.Id, i)).ToDictionary(x => x.Id, x => x.i);
        var counted = picture.Members.Where(m => m.Counts).Select(m => m.Id).ToList();
        var keeper = counted.Count > 0 ? counted[0] : picture.Members.Count > 0 ? picture.Members[0].Id : null;

        var dead = picture.Members
            .Select(m => m.Id)
            .Where(id => !id.Equals(picture.Self) && picture.Unreachable.Contains(id) && picture.Silent.Contains(id))
            .ToList();
        if (keeper is not null && dead.Contains(keeper))
        {
            var deadCounted = dead.Where(counted.Contains).ToList();
            var aliveCounted = counted.Count - deadCounted.Count;
            var keeperRoles = picture.Members.First(m => m.Id.Equals(keeper)).Roles.Where(LeadingRoles.Contains).ToList();
            var standIn = picture.Members.Any(m => m.Counts && !dead.Contains(m.Id) && (keeperRoles.Count == 0 || m.Roles.Any(keeperRoles.Contains)));
            if (!standIn)
            {
                // Nobody here could take the keeper's place (no other ingest or coordinator): downing it would end every
                // job for certain, while a keeper that is only starved comes back, and a crashed one that restarts at
                // its address replaces its old incarnation by itself. So this side waits.
                Held("keeper-without-stand-in", now, held);
            }
            else if (deadCounted.Count == 1 && aliveCounted >= 2)
            {
                foreach (var id in dead)
                {
                    Add(Held($"dead:{id}", now, held), id, id.Equals(keeper)
                        ? $"the keeper is unreachable and silent, alone against {aliveCounted} members"
                        : "unreachable and silent");
                }
            }
            else
            {
                Add(Held("keeper-side-lost", now, held), picture.Self,
                    $"the keeper and {deadCounted.Count - 1} other member(s) are unreachable and silent: this side has no keeper and goes");
            }
        }
        else
        {
            foreach (var id in dead)
            {
                Add(Held($"dead:{id}", now, held), id, "unreachable and silent");
            }
        }

        foreach (var (observer, subject) in picture.Observations.Distinct())
        {
            if (observer.Equals(subject) || picture.Silent.Contains(observer) || picture.Silent.Contains(subject)
                || !rank.TryGetValue(observer, out var observerRank) || !rank.TryGetValue(subject, out var subjectRank))
            {
                continue; // a silent end is judged as dead above; a member that left is no one's business
            }

            var lower = observerRank > subjectRank ? observer : subject;
            Add(Held($"edge:{observer}>{subject}", now, held), lower,
                $"{observer.Address} sees {subject.Address} unreachable while both still speak; the lower-ranked one goes");
        }

        foreach (var key in _since.Keys.Where(k => !held.Contains(k)).ToList())
        {
            _since.Remove(key);
        }

        return decisions.GroupBy(d => d.Member).Select(g => g.First()).ToList();

        void Add(bool ripe, UniqueAddress member, string reason)
        {
            if (ripe)
            {
                decisions.Add(new DowningDecision(member, reason));
            }
        }
    }

    /// <summary>The roles a keeper holds the cluster together with: only a member with one of them can stand in for it.</summary>
    private static readonly string[] LeadingRoles = [Hosting.Roles.Ingest, Hosting.Roles.Coordinator];

    private static int Rank(Member member) =>
        member.HasRole(Hosting.Roles.Ingest) ? 0
        : member.HasRole(Hosting.Roles.Coordinator) ? 1
        : Counts(member) ? 2
        : 3;

    /// <summary>Marks the condition as holding now; true once it has held for <see cref="StableAfter"/>.</summary>
    private bool Held(string key, TimeSpan now, HashSet<string> held)
    {
        held.Add(key);
        if (!_since.TryGetValue(key, out var since))
        {
            _since[key] = since = now;
        }

        return now - since >= StableAfter;
    }
}
