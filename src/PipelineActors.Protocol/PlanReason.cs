namespace PipelineActors.Protocol;

/// <summary>Why a plan went live: the supervisor's decision, carried to the ingest in <see cref="PlanActivated"/>.</summary>
public enum PlanReason
{
    /// <summary>The first plan of a job, on the workers there are.</summary>
    InitialPlacement,

    /// <summary>A worker of the live plan was lost; its stages moved to live workers.</summary>
    Recovery,

    /// <summary>Membership changed and a better split exists for the workers there are.</summary>
    Rebalance,

    /// <summary>A supervisor that just started took over the plan the workers were running.</summary>
    Adopted,
}

/// <summary>The text of a <see cref="PlanReason"/> in events, metrics and on the wire (the strings older nodes sent).</summary>
public static class PlanReasons
{
    public static string Text(this PlanReason reason) => reason switch
    {
        PlanReason.InitialPlacement => "initial placement",
        PlanReason.Recovery => "recovery",
        PlanReason.Rebalance => "rebalance",
        PlanReason.Adopted => "adopted by a new supervisor",
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "No text for this plan reason."),
    };

    /// <summary>The reason whose <see cref="Text"/> this is.</summary>
    public static PlanReason Parse(string text) => text switch
    {
        "initial placement" => PlanReason.InitialPlacement,
        "recovery" => PlanReason.Recovery,
        "rebalance" => PlanReason.Rebalance,
        "adopted by a new supervisor" => PlanReason.Adopted,
        _ => throw new FormatException($"'{text}' is not a plan reason (a node of another version?)."),
    };
}
