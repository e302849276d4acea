using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Stages;

/// <summary>One input a stage's model declares: its element type and dimensions (-1 where dynamic; null where its rank is unknown).</summary>
public sealed record DeclaredInput(string Name, TensorProto.Types.DataType ElementType, long[]? Dimensions);

/// <summary>
/// What a stage's frames may carry, from its plan: the tensors its spec names (the inputs its model declares, with their
/// types and shapes, and the tensors it forwards) and the bytes those need. A frame is held to it before inference, and a
/// chunked frame before it is put together, so a peer within this node's <c>pipeline.limits</c> still cannot make a stage
/// that takes 12 KiB frames assemble and decode 100 MiB ones. A dynamic dimension may take any size the node's limit on
/// a frame's bytes allows; a forwarded tensor's shape belongs to a later stage's model, so it is held to that limit too.
/// </summary>
public sealed class PlannedInputs
{
    /// <summary>
    /// What a frame's encoding adds to its tensors' bytes (frame ids, the source id, names, shapes, lengths): tensors are
    /// sent raw or zero-suppressed only when smaller, so the encoded frame never exceeds the bytes plus this.
    /// </summary>
    public const int HeaderSlackBytes = 64 << 10;

    /// <summary>The smallest chunk a sender cuts (pipeline.chunk-bytes' floor): a frame has at most its bytes over this, rounded up.</summary>
    public const int SmallestChunkBytes = 4096;

    private readonly Dictionary<string, DeclaredInput> _inputs;
    private readonly HashSet<string> _forwarded;
    private readonly WireLimits _node;

    public PlannedInputs(StageSpec spec, IReadOnlyList<DeclaredInput> declared, WireLimits node)
    {
        _node = node;
        _inputs = declared.ToDictionary(d => d.Name, StringComparer.Ordinal);
        _forwarded = spec.Forwarded.Where(f => !_inputs.ContainsKey(f)).ToHashSet(StringComparer.Ordinal);
        var needed = declared.Sum(d => BytesAtMost(d)) + (_forwarded.Count > 0 ? node.FrameBytes : 0L);
        FrameBytes = (int)Math.Min(node.FrameBytes, needed + HeaderSlackBytes);
        FrameChunks = (FrameBytes + SmallestChunkBytes - 1) / SmallestChunkBytes;
        Wire = node with
        {
            FrameBytes = FrameBytes,
            Tensors = Math.Min(node.Tensors, Math.Max(1, _inputs.Count + _forwarded.Count)),
            TensorRank = _forwarded.Count > 0 || declared.Any(d => d.Dimensions is null)
                ? node.TensorRank
                : Math.Min(node.TensorRank, Math.Max(1, declared.Max(d => (int?)d.Dimensions!.Length) ?? 1)),
        };
    }

    /// <summary>The most bytes a frame for this stage takes, encoded or decoded (this node's limit where the plan allows more).</summary>
    public int FrameBytes { get; }

    /// <summary>The most chunks a frame of <see cref="FrameBytes"/> is cut into.</summary>
    public int FrameChunks { get; }

    /// <summary>This node's wire limits tightened to the plan: what the stage's assembler decodes its frames with.</summary>
    public WireLimits Wire { get; }

    /// <summary>Why a chunk cannot belong to a frame of this plan (null when it can): one sentence for the log.</summary>
    public string? ChunkRefusal(FrameChunk chunk) =>
        chunk.TotalBytes > FrameBytes ? $"chunk {chunk.Index} of frame {chunk.FrameId} belongs to a {chunk.TotalBytes}-byte frame; this "
            + $"stage's plan needs at most {FrameBytes}"
        : chunk.Count > FrameChunks ? $"frame {chunk.FrameId} claims {chunk.Count} chunks; a frame of this stage's plan takes at most {FrameChunks}"
        : null;

    /// <summary>
    /// Why a frame is not one this stage's plan sends it (null when it is), in one sentence: past the bytes its inputs need,
    /// a tensor the plan does not name or names twice, an input missing, or one of another type, rank or shape.
    /// </summary>
    public string? Refusal(Frame frame)
    {
        if (frame.Bytes > FrameBytes)
        {
            return $"frame {frame.FrameId} carries {frame.Bytes} bytes of tensors; this stage's plan needs at most {FrameBytes}";
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in frame.Tensors)
        {
            if (!seen.Add(tensor.Name))
            {
                return $"frame {frame.FrameId} carries tensor '{Shown(tensor.Name)}' twice";
            }

            if (_inputs.TryGetValue(tensor.Name, out var input))
            {
                if (InputRefusal(tensor, input) is { } why)
                {
                    return $"frame {frame.FrameId}: {why}";
                }
            }
            else if (!_forwarded.Contains(tensor.Name))
            {
                return $"frame {frame.FrameId} carries tensor '{Shown(tensor.Name)}', which this stage neither takes nor forwards";
            }
            else if (tensor.Shape.Length > _node.TensorRank || tensor.Shape.Any(d => d < 0))
            {
                return $"frame {frame.FrameId} forwards tensor '{Shown(tensor.Name)}' of shape {tensor.Info.ShapeText}, past this node's limits";
            }
        }

        var missing = _inputs.Keys.FirstOrDefault(name => !seen.Contains(name));
        return missing is null ? null : $"frame {frame.FrameId} lacks input '{missing}' of this stage";
    }

    private string? InputRefusal(HostTensor tensor, DeclaredInput input)
    {
        if (tensor.ElementType != input.ElementType)
        {
            return $"input '{input.Name}' is {ElementTypes.NameOf(tensor.ElementType)}; the stage takes {ElementTypes.NameOf(input.ElementType)}";
        }

        // A rank the model leaves unknown is held to this node's limit; ONNX Runtime judges the rest.
        var dimensions = input.Dimensions ?? Enumerable.Repeat(-1L, tensor.Shape.Length).ToArray();
        if (tensor.Shape.Length > _node.TensorRank)
        {
            return $"input '{input.Name}' has rank {tensor.Shape.Length}, past this node's limit of {_node.TensorRank}";
        }

        if (tensor.Shape.Length != dimensions.Length)
        {
            return $"input '{input.Name}' has rank {tensor.Shape.Length} ({tensor.Info.ShapeText}); the stage takes rank "
                + $"{dimensions.Length} ({Declared(input)})";
        }

        var elements = 1L;
        for (var i = 0; i < tensor.Shape.Length; i++)
        {
            // A dynamic dimension may be 0: a stage after NonMaxSuppression gets frames with no boxes.
            var size = tensor.Shape[i];
            var declared = dimensions[i];
            if (declared > 0 ? size != declared : size < 0 || size > _node.FrameBytes)
            {
                return $"input '{input.Name}' has shape {tensor.Info.ShapeText}; the stage takes {Declared(input)}";
            }

            // Bounded before multiplying on: the product cannot overflow past the node's limit.
            elements *= size;
            if (elements > _node.FrameBytes)
            {
                return $"input '{input.Name}' of shape {tensor.Info.ShapeText} has more elements than this node's limit of {_node.FrameBytes} bytes";
            }
        }

        var bytes = tensor.Info.Bytes;
        return tensor.Data.Length == bytes ? null
            : $"input '{input.Name}' has {tensor.Data.Length} bytes; its shape {tensor.Info.ShapeText} needs {bytes}";
    }

    /// <summary>The bytes an input takes at most: its shape's where the model fixes every dimension, else this node's limit.</summary>
    private long BytesAtMost(DeclaredInput input) =>
        input.Dimensions is { } dimensions && dimensions.All(d => d > 0)
            ? Math.Min(_node.FrameBytes, new TensorInfo(input.Name, input.ElementType, dimensions).Bytes)
            : _node.FrameBytes;

    private static string Declared(DeclaredInput input) => input.Dimensions is null ? "any shape"
        : "[" + string.Join(",", input.Dimensions.Select(d => d > 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?")) + "]";

    // A tensor name is the peer's text: a line in the log, not a page.
    private static string Shown(string name) => name.Length <= 80 ? name : name[..80] + "...";
}
