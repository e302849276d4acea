namespace PipelineActors.Runtime.ControlPath.Membership;

/// <summary>How a worker was lost to the cluster: unreachable may come back; the others are gone for good.</summary>
public enum LossKind
{
    /// <summary>The failure detector stopped hearing from the node; it may become reachable again.</summary>
    Unreachable,

    /// <summary>The node announced it is leaving (graceful shutdown).</summary>
    Leaving,

    /// <summary>The node finished leaving.</summary>
    Exited,

    /// <summary>The node was removed from the cluster (downed or left).</summary>
    Removed,
}

/// <summary>The words a <see cref="LossKind"/> is written with in events.</summary>
public static class LossKinds
{
    public static string Text(this LossKind kind) => kind switch
    {
        LossKind.Unreachable => "unreachable",
        LossKind.Leaving => "leaving",
        LossKind.Exited => "exited",
        LossKind.Removed => "removed",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "No text for this loss."),
    };

    /// <summary>Whether the worker is gone for good (it may not host stages again under this address).</summary>
    public static bool IsFinal(this LossKind kind) => kind != LossKind.Unreachable;
}
