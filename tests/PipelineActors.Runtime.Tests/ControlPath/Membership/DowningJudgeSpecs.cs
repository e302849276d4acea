using Akka.Actor;
using Akka.Cluster;
using PipelineActors.Runtime.ControlPath.Membership.Downing;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.ControlPath.Membership;

/// <summary>
/// The downing judge on pictures of a keeper K (the ingest) and workers W1, W2, W3, with a clock of the test's own: what
/// goes, what stays, and that nothing goes before its condition has held for stable-after.
/// </summary>
public sealed class DowningJudgeSpecs
{
    private static readonly TimeSpan Stable = TimeSpan.FromSeconds(1.5);
    private static readonly UniqueAddress K = Node(1), W1 = Node(2), W2 = Node(3), W3 = Node(4), Monitor = Node(5);

    // A second ingest node and a second coordinator: members that can stand in for the keeper.
    private static readonly UniqueAddress Ingest2 = Node(6), Coordinator2 = Node(7);

    [Fact]
    public void A_crashed_worker_goes_once_it_has_been_unreachable_and_silent_for_stable_after_and_not_before()
    {
        var judge = new DowningJudge(Stable);
        var picture = Picture(self: K, members: [K, W1, W2], unreachable: [W2], silent: [W2], observations: [(K, W2), (W1, W2)]);

        Assert.Empty(judge.Judge(picture, At(0)));
        Assert.Empty(judge.Judge(picture, At(1.4)));
        var verdict = Assert.Single(judge.Judge(picture, At(1.5)));
        Assert.Equal(W2, verdict.Member);
    }

    [Fact]
    public void A_flap_shorter_than_stable_after_downs_nobody_and_a_new_loss_counts_from_its_own_start()
    {
        var judge = new DowningJudge(Stable);
        var lost = Picture(self: K, members: [K, W1, W2], unreachable: [W2], silent: [W2], observations: [(K, W2)]);
        var back = Picture(self: K, members: [K, W1, W2], unreachable: [], silent: [], observations: []);

        Assert.Empty(judge.Judge(lost, At(0)));
        Assert.Empty(judge.Judge(lost, At(1.0)));
        Assert.Empty(judge.Judge(back, At(1.2)));
        Assert.Empty(judge.Judge(lost, At(2.0)));
        Assert.Empty(judge.Judge(lost, At(3.4)));
        Assert.Equal(W2, Assert.Single(judge.Judge(lost, At(3.5))).Member);
    }

    [Fact]
    public void A_worker_resumed_from_a_pause_that_sees_the_keeper_unreachable_while_the_keeper_sees_it_loses_and_the_keeper_stays()
    {
        // The chaos soak's case: both speak again, each failure detector still holds the other unreachable. Akka's
        // resolver downed both ends as indirectly connected, the ingest among them.
        foreach (var self in new[] { K, W1, W2 })
        {
            var judge = new DowningJudge(Stable);
            var picture = Picture(self, members: [K, W1, W2], unreachable: [K, W1], silent: [], observations: [(K, W1), (W1, K)]);

            Assert.Empty(judge.Judge(picture, At(0)));
            var verdicts = judge.Judge(picture, At(1.5));

            Assert.Equal(W1, Assert.Single(verdicts).Member);
        }
    }

    [Fact]
    public void One_worker_that_cannot_hear_another_while_both_speak_to_the_rest_downs_the_younger_of_the_two_only()
    {
        var judge = new DowningJudge(Stable);
        var picture = Picture(self: K, members: [K, W1, W2, W3], unreachable: [W3], silent: [], observations: [(W3, W1), (W1, W3)]);

        judge.Judge(picture, At(0));

        Assert.Equal(W3, Assert.Single(judge.Judge(picture, At(2))).Member);
    }

    [Fact]
    public void A_crashed_keeper_alone_against_two_members_goes_when_another_ingest_can_stand_in_for_it()
    {
        var judge = new DowningJudge(Stable);
        var picture = Picture(self: W1, members: [K, Ingest2, W1], unreachable: [K], silent: [K], observations: [(W1, K), (Ingest2, K)]);

        judge.Judge(picture, At(0));

        var verdict = Assert.Single(judge.Judge(picture, At(1.5)));
        Assert.Equal(K, verdict.Member);
        Assert.Contains("keeper", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Workers_of_a_dead_keeper_that_none_of_them_can_stand_in_for_wait_for_it_and_down_nobody()
    {
        // The first soak's other end: a worker that lost the head downed it, and with it the only ingest and coordinator.
        foreach (var members in new[] { new[] { K, W1 }, [K, W1, W2], [K, W1, W2, W3] })
        {
            var judge = new DowningJudge(Stable);
            var picture = Picture(self: W1, members, unreachable: [K], silent: [K], observations: [(W1, K)]);

            judge.Judge(picture, At(0));

            Assert.Empty(judge.Judge(picture, At(30)));
        }
    }

    [Fact]
    public void A_monitor_never_counts_towards_the_side_that_may_down_the_keeper()
    {
        var judge = new DowningJudge(Stable);
        var picture = Picture(
            self: Ingest2, members: [K, Ingest2, Monitor], unreachable: [K], silent: [K], observations: [(Ingest2, K), (Monitor, K)]);

        judge.Judge(picture, At(0));

        // Alone with a monitor, the second ingest does not count as a side that outvotes the keeper: it goes itself.
        Assert.Equal(Ingest2, Assert.Single(judge.Judge(picture, At(1.5))).Member);
    }

    [Fact]
    public void In_a_clean_partition_the_side_with_the_keeper_downs_the_other_side_and_the_other_side_downs_only_itself()
    {
        var keeperSide = new DowningJudge(Stable);
        var otherSide = new DowningJudge(Stable);
        var fromK = Picture(self: K, members: [K, W1, Coordinator2, W3], unreachable: [Coordinator2, W3], silent: [Coordinator2, W3],
            observations: [(K, Coordinator2), (K, W3), (W1, W3)]);
        var fromC2 = Picture(self: Coordinator2, members: [K, W1, Coordinator2, W3], unreachable: [K, W1], silent: [K, W1],
            observations: [(Coordinator2, K), (W3, W1)]);

        keeperSide.Judge(fromK, At(0));
        otherSide.Judge(fromC2, At(0));

        Assert.Equal([W3, Coordinator2], keeperSide.Judge(fromK, At(1.5)).Select(v => v.Member).OrderBy(m => m.Address.Port));
        // The second coordinator could stand in, but the keeper is not alone: the side without the camera is the one to go.
        Assert.Equal(Coordinator2, Assert.Single(otherSide.Judge(fromC2, At(1.5))).Member);
    }

    [Fact]
    public void A_member_that_is_unreachable_but_still_speaks_through_others_is_not_taken_for_dead()
    {
        var judge = new DowningJudge(Stable);
        // Akka's gossip still carries an old record; no fresh view observes W2 and W2's own views keep arriving.
        var picture = Picture(self: K, members: [K, W1, W2], unreachable: [W2], silent: [], observations: []);

        judge.Judge(picture, At(0));

        Assert.Empty(judge.Judge(picture, At(10)));
    }

    [Fact]
    public void Views_cross_as_their_own_binary_message_and_truncated_or_oversized_bytes_are_refused()
    {
        using var system = ActorSystem.Create(PipelineConfig.SystemName, TestNodes.Config(Roles.Worker));
        var views = new ReachabilityViews([
            new ReachabilityView(new MemberId("akka.ssl.tcp://pipeline@127.0.0.1:4711", 17), 42,
                [new MemberId("akka.ssl.tcp://pipeline@127.0.0.1:4712", -3)]),
            new ReachabilityView(new MemberId("akka.ssl.tcp://pipeline@127.0.0.1:4712", -3), 7, []),
        ]);

        var serializer = Assert.IsType<ReachabilityViewsSerializer>(system.Serialization.FindSerializerFor(views));
        var bytes = serializer.ToBinary(views);
        var back = Assert.IsType<ReachabilityViews>(serializer.FromBinary(bytes, serializer.Manifest(views)));

        Assert.Equal(views.Views.Select(Flat), back.Views.Select(Flat));
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary(bytes[..length], "V"));
        }

        var huge = (byte[])bytes.Clone();
        BitConverter.GetBytes(int.MaxValue).CopyTo(huge, 0);
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary(huge, "V"));
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary([.. bytes, 0], "V"));
    }

    private static string Flat(ReachabilityView v) => $"{v.Observer} {v.Sequence} [{string.Join(",", v.Unreachable)}]";

    private static TimeSpan At(double seconds) => TimeSpan.FromSeconds(seconds);

    private static UniqueAddress Node(int i) => new(new Address("akka.ssl.tcp", "pipeline", "127.0.0.1", 4710 + i), i);

    private static ClusterPicture Picture(
        UniqueAddress self,
        UniqueAddress[] members,
        UniqueAddress[] unreachable,
        UniqueAddress[] silent,
        (UniqueAddress, UniqueAddress)[] observations) =>
        new(
            self,
            members.Select(m => new JudgedMember(m, !m.Equals(Monitor), RolesOf(m))).ToList(),
            unreachable.ToHashSet(),
            silent.ToHashSet(),
            observations);

    private static string[] RolesOf(UniqueAddress member) =>
        member.Equals(K) ? [Roles.Coordinator, Roles.Ingest]
        : member.Equals(Ingest2) ? [Roles.Ingest]
        : member.Equals(Coordinator2) ? [Roles.Coordinator, Roles.Worker]
        : member.Equals(Monitor) ? [Roles.Monitor]
        : [Roles.Worker];
}
