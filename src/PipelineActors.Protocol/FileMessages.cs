using Akka.Actor;

namespace PipelineActors.Protocol;

/// <summary>A stage model file by content: the planner names it, nodes fetch and cache it by hash.</summary>
public sealed record StageFile(string Sha256, long Bytes);

/// <summary>Supervisor to worker: make sure these files are in your cache (fetch what is missing).</summary>
public sealed record PrefetchFiles(string JobId, IReadOnlyList<StageFile> Files, IActorRef ModelStore) : IControlMessage;

/// <summary>Worker to model store: send piece <see cref="Index"/> of a stage file.</summary>
public sealed record FetchFileChunk(string Sha256, int Index) : IControlMessage;

/// <summary>Model store to worker: one piece of a stage file (64 KiB at most).</summary>
public sealed record FileChunk(string Sha256, int Index, int Count, long TotalBytes, byte[] Data) : IControlMessage
{
    public bool Equals(FileChunk? other) =>
        other is not null && Sha256 == other.Sha256 && Index == other.Index && Count == other.Count && TotalBytes == other.TotalBytes
        && Data.AsSpan().SequenceEqual(other.Data);

    public override int GetHashCode() => HashCode.Combine(Sha256, Index);
}

/// <summary>Model store to worker: no such file.</summary>
public sealed record FileUnavailable(string Sha256) : IControlMessage;
