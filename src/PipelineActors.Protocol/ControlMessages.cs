using Akka.Actor;

namespace PipelineActors.Protocol;

/// <summary>One split of the model into <see cref="Stages"/>.Count stages; a run holds one per worker count.</summary>
public sealed record SplitPlan(int Parts, IReadOnlyList<StageSpec> Stages);

/// <summary>
/// What a node needs to host one stage. <see cref="Encodes"/> are the cut tensors it sends on encoded (with their
/// calibration), <see cref="Decodes"/> the ones it receives encoded and decodes before inference; both empty (or null)
/// is the exact wire, as before codecs.
/// </summary>
public sealed record StageSpec(
    int Index,
    StageFile File,
    IReadOnlyList<string> Inputs,
    IReadOnlyList<string> Outputs,
    IReadOnlyList<string> Forwarded,
    long Flops,
    string Layers,
    IReadOnlyList<CutCodec>? Encodes = null,
    IReadOnlyList<CutCodec>? Decodes = null);

/// <summary>
/// How one cut tensor crosses to the stage that reads it: encoded with the transfer layer's codec <see cref="Codec"/>
/// (<c>int8</c>, <c>fp16+zstd</c>, ...). The quantisers' per-channel <see cref="Scales"/> and <see cref="ZeroPoints"/> on
/// <see cref="ChannelAxis"/> come from calibration and are what the encoding stage needs; a decoding stage gets them empty,
/// since every encoded buffer carries its own.
/// </summary>
public sealed record CutCodec(string Tensor, string Codec, int ChannelAxis, float[] Scales, byte[] ZeroPoints)
{
    /// <summary>What the receiving end needs: the codec's name, no calibration.</summary>
    public CutCodec ForDecoding() => this with { Scales = [], ZeroPoints = [] };

    public bool Equals(CutCodec? other) =>
        other is not null && Tensor == other.Tensor && Codec == other.Codec && ChannelAxis == other.ChannelAxis
        && Scales.AsSpan().SequenceEqual(other.Scales) && ZeroPoints.AsSpan().SequenceEqual(other.ZeroPoints);

    public override int GetHashCode() => HashCode.Combine(Tensor, Codec, Scales.Length);
}

/// <summary>
/// The job: a model cut every way the cluster may need, where to fetch the stage files, and who
/// receives results. The ingest node re-sends it to the supervisor until acknowledged, so a
/// supervisor that moved to another node learns it again. <see cref="LastEpoch"/> is the newest plan
/// epoch the ingest has seen: a new supervisor numbers its plans after it, so its plans are never
/// taken for stale ones (review R7).
/// </summary>
public sealed record PipelineJob(
    string JobId, IReadOnlyList<SplitPlan> Splits, IActorRef ModelStore, IActorRef Ingest, IActorRef Sink, int FrameWindow, long LastEpoch = 0)
    : IControlMessage;

/// <summary>Ingest to supervisor: the job has ended (its source is done, or it was stopped); its stages can go.</summary>
public sealed record JobEnded(string JobId) : IControlMessage;

/// <summary>Ingest to supervisor: the plan of <see cref="Epoch"/> (or a newer one) is in use; the supervisor stops re-sending it (review
/// R8).</summary>
public sealed record PlanAcknowledged(string JobId, long Epoch) : IControlMessage;

/// <summary>Supervisor to ingest: the job is known.</summary>
public sealed record JobAccepted(string JobId) : IControlMessage;

/// <summary>
/// A stage actor that is running on a worker, for one job and one stage file: two jobs never share a stage, and a job
/// cut anew never takes a stage of its old cuts for one of its new ones (review R11). An empty SHA-256 is not known.
/// </summary>
public sealed record HostedStage(string JobId, int Parts, int Index, IActorRef Stage, long WiredEpoch, string Sha256 = "");

/// <summary>
/// Worker to supervisor, when ready and every few seconds after: what the node offers and what it
/// hosts, so a new supervisor can rebuild its view without redeploying.
/// </summary>
public sealed record WorkerStatus(
    IActorRef Agent,
    int Cores,
    int IntraOpThreads,
    long MemoryBytes,
    IReadOnlyList<string> CachedFiles,
    IReadOnlyList<HostedStage> Hosted) : IControlMessage;

/// <summary>Supervisor to worker: host stage <see cref="Spec"/> of the <see cref="Parts"/>-part split.</summary>
public sealed record DeployStage(string JobId, long Epoch, int Parts, StageSpec Spec, IActorRef ModelStore) : IControlMessage;

/// <summary>Worker to supervisor: the stage is loaded, warmed up, and listening at <see cref="Stage"/>.</summary>
public sealed record StageDeployed(string JobId, long Epoch, int Parts, int Index, IActorRef Stage, double WarmupMs) : IControlMessage;

/// <summary>Worker to supervisor: the stage could not start.</summary>
public sealed record StageDeployFailed(string JobId, long Epoch, int Parts, int Index, string Reason) : IControlMessage;

/// <summary>Supervisor to stage: from <see cref="Epoch"/> on, send results to these successors (the sink after the last stage).</summary>
public sealed record WireStage(string JobId, long Epoch, IReadOnlyList<IActorRef> Successors, IActorRef Ingest) : IControlMessage;

/// <summary>Stage to supervisor: wired for the epoch.</summary>
public sealed record StageWired(string JobId, long Epoch, int Parts, int Index) : IControlMessage;

/// <summary>Supervisor to worker: stop hosting this stage of the job (only if it is of this stage file, when one is named).</summary>
public sealed record StopStage(string JobId, int Parts, int Index, string Sha256 = "") : IControlMessage;

/// <summary>One stage of the active plan: where it runs.</summary>
public sealed record StagePlacement(int Index, IActorRef Stage, string Node, string Layers, long Flops);

/// <summary>Supervisor to ingest: the plan for <see cref="Epoch"/> is wired end to end; send frames to <see cref="Heads"/>.</summary>
public sealed record PlanActivated(string JobId, long Epoch, int Parts, IReadOnlyList<IActorRef> Heads,
    IReadOnlyList<StagePlacement> Placements, PlanReason Reason)
    : IControlMessage;
