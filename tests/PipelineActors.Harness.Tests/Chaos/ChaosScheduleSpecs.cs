using PipelineActors.Harness.Chaos;

namespace PipelineActors.Harness.Tests.Chaos;

public class ChaosScheduleSpecs
{
    private static readonly TimeSpan Pause = TimeSpan.FromSeconds(1);

    /// <summary>Plays a schedule against a simple model of the cluster, the way the monkey changes it, and returns every action.</summary>
    private static List<ChaosAction> Play(ChaosSchedule schedule, int draws, int nominal)
    {
        var running = nominal;
        var actions = new List<ChaosAction>();
        for (var i = 0; i < draws; i++)
        {
            var state = new ChaosState(running, running, 0, 0);
            var action = schedule.Next(state);
            Assert.NotNull(action);
            actions.Add(action);
            // Kills are replaced and restarts come back before the next draw in this model; joins and leaves change the count.
            running += action.Kind switch
            {
                ChaosActionKind.Join => 1,
                ChaosActionKind.Leave => -1,
                _ => 0,
            };
        }

        return actions;
    }

    [Fact]
    public void The_same_seed_and_the_same_states_give_the_same_actions_and_another_seed_others()
    {
        var first = Play(new ChaosSchedule(42, 3, 5, Pause), 200, 3);
        var again = Play(new ChaosSchedule(42, 3, 5, Pause), 200, 3);
        var other = Play(new ChaosSchedule(43, 3, 5, Pause), 200, 3);

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void Every_kind_happens_within_the_first_five_actions_then_all_keep_happening()
    {
        foreach (var seed in Enumerable.Range(0, 50))
        {
            var actions = Play(new ChaosSchedule(seed, 3, 5, Pause), 400, 3);

            Assert.Equal(Enum.GetValues<ChaosActionKind>().Order(), actions.Take(5).Select(a => a.Kind).Distinct().Order());
            foreach (var kind in Enum.GetValues<ChaosActionKind>())
            {
                Assert.True(actions.Skip(5).Count(a => a.Kind == kind) > 20,
                    $"seed {seed}: {kind} {actions.Count(a => a.Kind == kind)} times in 400");
            }
        }
    }

    [Fact]
    public void Gaps_pauses_and_replacements_stay_in_their_ranges_and_a_pause_outlasts_the_acceptable_pause()
    {
        var acceptable = TimeSpan.FromSeconds(2.5);
        var actions = Play(new ChaosSchedule(7, 3, 5, acceptable, minimumGapSeconds: 3, maximumGapSeconds: 7), 2000, 3);

        Assert.All(actions, a => Assert.InRange(a.GapSeconds, 3, 7));
        Assert.All(actions, a => Assert.InRange(a.PauseSeconds, acceptable.TotalSeconds + 1, acceptable.TotalSeconds + 3));
        Assert.All(actions, a => Assert.InRange(a.ReplaceAfterSeconds, 2, 6));
        // Drawn, not fixed: the values spread over their ranges.
        Assert.True(actions.Max(a => a.GapSeconds) - actions.Min(a => a.GapSeconds) > 3.5);
        Assert.True(actions.Max(a => a.PauseSeconds) - actions.Min(a => a.PauseSeconds) > 1.5);
    }

    [Fact]
    public void The_count_stays_between_the_nominal_and_the_cap_and_victims_are_healthy_workers()
    {
        var schedule = new ChaosSchedule(11, 2, 4, Pause);
        var running = 2;
        for (var i = 0; i < 2000; i++)
        {
            var action = schedule.Next(new ChaosState(running, running, 0, 0))!;
            Assert.InRange(action.Victim, 0, running - 1);
            running += action.Kind == ChaosActionKind.Join ? 1 : action.Kind == ChaosActionKind.Leave ? -1 : 0;
            Assert.InRange(running, 2, 4);
        }
    }

    [Fact]
    public void The_last_healthy_worker_is_never_hit_and_one_pause_at_a_time()
    {
        var schedule = new ChaosSchedule(5, 1, 3, Pause);

        Assert.Equal([ChaosActionKind.Join], schedule.Allowed(new ChaosState(1, 1, 0, 0)));
        // Two running but one of them paused: only a join; nothing hits the one still carrying the stream.
        Assert.Equal([ChaosActionKind.Join], schedule.Allowed(new ChaosState(2, 1, 0, 1)));
        // At the cap with a single healthy worker nothing may happen at all.
        Assert.Empty(schedule.Allowed(new ChaosState(3, 1, 0, 2)));
        Assert.Null(schedule.Next(new ChaosState(3, 1, 0, 2)));
        // A pause in progress allows no second one; starting replacements count towards the cap.
        var twoHealthy = schedule.Allowed(new ChaosState(3, 2, 0, 1));
        Assert.DoesNotContain(ChaosActionKind.Pause, twoHealthy);
        Assert.DoesNotContain(ChaosActionKind.Join, schedule.Allowed(new ChaosState(2, 2, 1, 0)));
        // At the nominal count a leave would shrink the cluster below what the run asked for.
        Assert.DoesNotContain(ChaosActionKind.Leave, new ChaosSchedule(5, 3, 5, Pause).Allowed(new ChaosState(3, 3, 0, 0)));
    }

    [Fact]
    public void Impossible_limits_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChaosSchedule(1, 3, 2, Pause));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChaosSchedule(1, 0, 2, Pause));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChaosSchedule(1, 1, 2, Pause, minimumGapSeconds: 5, maximumGapSeconds: 4));
    }
}
