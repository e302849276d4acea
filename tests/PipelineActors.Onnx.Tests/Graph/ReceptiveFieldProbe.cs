using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Onnx.Tests.Graph;

/// <summary>
/// Checks a receptive field against ONNX Runtime: the target tensor is made the model's output,
/// rows of the input are perturbed, and the target's row band is compared bit for bit.
/// </summary>
public sealed class ReceptiveFieldProbe : IDisposable
{
    private readonly OrtSession _runner;
    private readonly TensorInfo _input;
    private readonly string _target;
    private readonly float[] _baseInput;
    private readonly float[] _baseOutput;
    private readonly long[] _targetShape;

    public ReceptiveFieldProbe(ModelProto model, TensorInfo input, string target)
    {
        var probe = model.Clone();
        probe.Graph.Output.Clear();
        probe.Graph.Output.Add(new ValueInfoProto { Name = target });
        probe.Graph.ValueInfo.Clear();
        _runner = new OrtSession(probe.ToByteArray());
        _input = input;
        _target = target;
        var random = new Random(23);
        _baseInput = new float[input.ElementCount];
        for (var i = 0; i < _baseInput.Length; i++)
        {
            _baseInput[i] = random.NextSingle() - 0.5f;
        }

        (_baseOutput, _targetShape) = Run(_baseInput);
    }

    public long TargetRows => _targetShape[2];

    public long InputRows(int axis) => _input.Shape[axis];

    /// <summary>Whether rows [first, last] of the target change when the given input rows (on <paramref name="axis"/>) change.</summary>
    public bool BandChanges(long first, long last, int axis, IEnumerable<long> inputRows)
    {
        var rows = inputRows.ToHashSet();
        if (rows.Count == 0)
        {
            return false;
        }

        var perturbed = (float[])_baseInput.Clone();
        var shape = _input.Shape;
        var inner = shape.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);
        var random = new Random(31);
        for (long i = 0; i < perturbed.Length; i++)
        {
            if (rows.Contains(i / inner % shape[axis]))
            {
                perturbed[i] += 2f + random.NextSingle();
            }
        }

        var (output, _) = Run(perturbed);
        return !Band(_baseOutput, first, last).SequenceEqual(Band(output, first, last));
    }

    /// <summary>
    /// Asserts that <paramref name="range"/> is exactly what ONNX Runtime needs at its ends: rows outside
    /// it leave target rows [first, last] bit-identical, its first and its last row each change them.
    /// </summary>
    public void AssertExact(RowRange range, long first, long last)
    {
        var rows = InputRows(range.Axis);
        var outside = Enumerable.Range(0, (int)rows).Select(r => (long)r).Where(r => r < range.First || r > range.Last).ToList();
        Assert.False(BandChanges(first, last, range.Axis, outside),
            $"{_target} rows {first}..{last}: input rows outside {range.First}..{range.Last} (axis {range.Axis}) change them.");
        Assert.True(BandChanges(first, last, range.Axis, [range.First]),
            $"{_target} rows {first}..{last}: input row {range.First}, the first of {range.First}..{range.Last}, does not change them.");
        Assert.True(BandChanges(first, last, range.Axis, [range.Last]),
            $"{_target} rows {first}..{last}: input row {range.Last}, the last of {range.First}..{range.Last}, does not change them.");
    }

    public void Dispose() => _runner.Dispose();

    private (float[] Values, long[] Shape) Run(float[] input)
    {
        var bytes = MemoryMarshal.AsBytes(input.AsSpan()).ToArray();
        var result = _runner.Run(new Dictionary<string, HostTensor> { [_input.Name] = new HostTensor(_input, bytes) })[_target];
        return (MemoryMarshal.Cast<byte, float>(result.Data.AsSpan()).ToArray(), result.Info.Shape);
    }

    /// <summary>The raw bits of rows [first, last] (axis 2) of an NCHW target.</summary>
    private int[] Band(float[] values, long first, long last)
    {
        var rows = _targetShape[2];
        var inner = _targetShape[3];
        var result = new List<int>();
        for (long i = 0; i < values.Length; i++)
        {
            var row = i / inner % rows;
            if (row >= first && row <= last)
            {
                result.Add(BitConverter.SingleToInt32Bits(values[i]));
            }
        }

        return [.. result];
    }
}
