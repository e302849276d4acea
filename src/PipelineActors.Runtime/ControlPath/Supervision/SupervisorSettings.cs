using Akka.Configuration;

namespace PipelineActors.Runtime.ControlPath.Supervision;

/// <summary>The supervisor's timings and limits, read once from <c>pipeline.supervisor</c>.</summary>
public sealed record SupervisorSettings(TimeSpan RebalanceDelay, TimeSpan DeployTimeout)
{
    /// <summary>How long a new supervisor listens before its first look at who has reported.</summary>
    public TimeSpan SettleFirstCheck { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan SettleInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Looks after which it plans even if some up worker is still silent.</summary>
    public int SettleChecks { get; init; } = 20;

    /// <summary>How often a plan activation goes to the ingest again until it is acknowledged.</summary>
    public TimeSpan ActivationResend { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a stage of a job no supervisor knows keeps running (its ingest may be registering again) before it is stopped.</summary>
    public TimeSpan OrphanGrace { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Failed or timed-out deploys after which a worker gets no more stages for <see cref="Exclusion"/>.</summary>
    public int MaxFailedDeploys { get; init; } = 3;

    /// <summary>How long a worker stays unreachable before its stages move (<c>pipeline.supervisor.unreachable-after</c>, review R14).</summary>
    public TimeSpan UnreachableAfter { get; init; }

    /// <summary>How long a worker that failed too many deploys gets no stages (<c>pipeline.supervisor.exclusion</c>).</summary>
    public TimeSpan Exclusion { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Read with no defaults in code: hocon/reference.conf holds them (PipelineSettings checks the values at start).</summary>
    public static SupervisorSettings From(Config config) => new(
        config.GetTimeSpan("pipeline.supervisor.rebalance-delay"),
        config.GetTimeSpan("pipeline.supervisor.deploy-timeout"))
    {
        Exclusion = config.GetTimeSpan("pipeline.supervisor.exclusion"),
        UnreachableAfter = config.GetTimeSpan("pipeline.supervisor.unreachable-after"),
    };
}
