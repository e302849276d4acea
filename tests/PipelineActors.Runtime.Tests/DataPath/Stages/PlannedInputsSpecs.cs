using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Stages;

/// <summary>
/// A stage holds its frames to its plan: the tensors its model declares (names, types, ranks, fixed dimensions) and the
/// tensors it forwards, and no more bytes or chunks than those need, however much more this node's limits allow.
/// </summary>
public sealed class PlannedInputsSpecs : IClassFixture<TinyNetStages>
{
    private readonly TinyNetStages _stages;
    private readonly PlannedInputs _planned;

    public PlannedInputsSpecs(TinyNetStages stages)
    {
        _stages = stages;
        using var session = new StageSession(stages.MiddlePath, 1);
        _planned = new PlannedInputs(stages.Middle, session.DeclaredInputs, WireLimits.Default);
    }

    [Fact]
    public void A_frame_the_previous_stage_sends_passes_and_the_plan_allows_far_less_than_the_node()
    {
        var frame = _stages.FrameFor(0, 1, seed: 3);

        Assert.Null(_planned.Refusal(frame));
        Assert.InRange(frame.Bytes, 1, _planned.FrameBytes);
        Assert.True(_planned.FrameBytes < WireLimits.Default.FrameBytes / 100, $"the plan allows {_planned.FrameBytes} bytes");
        Assert.Equal(_planned.FrameBytes, _planned.Wire.FrameBytes);
        Assert.Equal((_planned.FrameBytes + 4095) / 4096, _planned.FrameChunks);
    }

    [Fact]
    public void Tensors_of_the_wrong_rank_type_or_name_and_missing_or_doubled_inputs_are_refused()
    {
        var frame = _stages.FrameFor(0, 1, seed: 3);
        var input = frame.Tensors.First(t => _stages.Middle.Inputs.Contains(t.Name));
        Frame With(params HostTensor[] tensors) => frame with { Tensors = frame.Tensors.Where(t => t.Name != input.Name).Concat(tensors).ToList() };

        var flat = input with { Shape = [input.Shape.Aggregate(1L, (a, d) => a * d)] };
        Assert.Contains("rank 1", _planned.Refusal(With(flat)), StringComparison.Ordinal);
        var halved = input with { Shape = input.Shape.Select((d, i) => i == input.Shape.Length - 1 ? d * 2 : d).ToArray(),
            Data = new byte[input.Data.Length * 2] };
        Assert.Contains("has shape", _planned.Refusal(With(halved)), StringComparison.Ordinal);
        var retyped = input with { ElementType = TensorProto.Types.DataType.Int32 };
        Assert.Contains("the stage takes", _planned.Refusal(With(retyped)), StringComparison.Ordinal);
        var short_ = input with { Data = input.Data[..^4] };
        Assert.Contains("needs", _planned.Refusal(With(short_)), StringComparison.Ordinal);
        Assert.Contains("neither takes nor forwards", _planned.Refusal(With(input, input with { Name = "smuggled" })), StringComparison.Ordinal);
        Assert.Contains("twice", _planned.Refusal(With(input, input)), StringComparison.Ordinal);
        Assert.Contains("lacks input", _planned.Refusal(With()), StringComparison.Ordinal);
    }

    [Fact]
    public void A_frame_past_the_plans_bytes_is_refused_whole_and_as_chunks_before_it_is_put_together()
    {
        var frame = _stages.FrameFor(0, 1, seed: 3);
        var padding = new HostTensor(_stages.Middle.Inputs[0], TensorProto.Types.DataType.Uint8, [_planned.FrameBytes],
            new byte[_planned.FrameBytes]);
        Assert.Contains("needs at most", _planned.Refusal(frame with { Tensors = [.. frame.Tensors, padding] }), StringComparison.Ordinal);

        // Under this node's limit of 128 MiB, past the plan's: refused on its first chunk, before anything is held for it.
        var big = new FrameChunk(1, 1, 1, 0, 2, 0, 50 << 20, new byte[4096]);
        Assert.Null(FrameSerializer.MalformedChunk(big, WireLimits.Default));
        Assert.Contains("needs at most", _planned.ChunkRefusal(big), StringComparison.Ordinal);
        var many = new FrameChunk(1, 1, 1, 0, _planned.FrameChunks + 1, 0, _planned.FrameBytes, new byte[16]);
        Assert.Contains("chunks", _planned.ChunkRefusal(many), StringComparison.Ordinal);
        Assert.Null(_planned.ChunkRefusal(new FrameChunk(1, 1, 1, 0, 2, 0, (int)frame.Bytes, new byte[4096])));
    }

    [Fact]
    public void A_dynamic_dimension_takes_any_size_within_the_nodes_limit_and_only_that()
    {
        var spec = new StageSpec(0, new StageFile(new string('a', 64), 1), ["x"], ["y"], [], 1, "0..1");
        var node = WireLimits.Default with { FrameBytes = 1 << 20 };
        var planned = new PlannedInputs(spec, [new DeclaredInput("x", TensorProto.Types.DataType.Float, [-1, 3])], node);
        Frame FrameOf(long rows) => new(0, "camera", 1, 0, 1,
            [new HostTensor("x", TensorProto.Types.DataType.Float, [rows, 3], new byte[rows * 12])]);

        Assert.Equal(node.FrameBytes, planned.FrameBytes);
        Assert.Null(planned.Refusal(FrameOf(1)));
        Assert.Null(planned.Refusal(FrameOf(20_000)));
        Assert.Null(planned.Refusal(FrameOf(0))); // no boxes after NonMaxSuppression
        Assert.NotNull(planned.Refusal(new Frame(0, "camera", 1, 0, 1,
            [new HostTensor("x", TensorProto.Types.DataType.Float, [2, 4], new byte[32])])));
        Assert.Contains("needs at most", planned.Refusal(FrameOf(100_000)), StringComparison.Ordinal);
        var unknown = new PlannedInputs(spec, [new DeclaredInput("x", TensorProto.Types.DataType.Float, null)], node);
        Assert.Null(unknown.Refusal(FrameOf(5)));
        Assert.NotNull(unknown.Refusal(new Frame(0, "camera", 1, 0, 1, [new HostTensor("x", TensorProto.Types.DataType.Float, new long[17], [])])));
        var huge = new Frame(0, "camera", 1, 0, 1, [new HostTensor("x", TensorProto.Types.DataType.Float, [long.MaxValue / 2, 3], new byte[12])]);
        Assert.NotNull(planned.Refusal(huge));
    }
}
