using System.Runtime.InteropServices;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Protocol.Tests.Serialization;

/// <summary>Zero-suppressed tensors on the wire: smaller where activations are sparse, and always exact to the bit.</summary>
public sealed class ZeroSuppressionSpecs
{
    [Fact]
    public void A_post_relu_activation_crosses_in_about_half_its_bytes_and_comes_back_bit_for_bit()
    {
        var random = new Random(3);
        var values = new float[1024 * 14 * 14];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = random.NextDouble() < 0.5 ? 0f : (float)random.NextDouble() * 4;
        }

        // Values a float comparison would get wrong: -0.0 is not +0.0, a NaN keeps its payload, denormals stay.
        values[1] = -0f;
        values[2] = BitConverter.Int32BitsToSingle(0x7FC0_1234);
        values[3] = float.Epsilon;
        values[4] = float.PositiveInfinity;
        var frame = FrameOf(new HostTensor("layer3", DataType.Float, [1, 1024, 14, 14], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));

        var encoded = FrameCodec.Encode(frame);
        var decoded = FrameCodec.Decode(encoded);

        Assert.Equal(frame, decoded); // compares the bytes, so bit patterns, not float values
        var raw = values.Length * 4;
        Assert.InRange(encoded.Length, raw * 0.45, raw * 0.60); // ~half the values plus a 1/32 bitmap
    }

    [Theory]
    [InlineData(DataType.Float16, 0.0)]
    [InlineData(DataType.Float16, 0.3)]
    [InlineData(DataType.Float, 0.05)]
    [InlineData(DataType.Float, 0.9)]
    [InlineData(DataType.Float, 1.0)]
    [InlineData(DataType.Int32, 0.6)]
    [InlineData(DataType.Int64, 0.5)]
    [InlineData(DataType.Double, 0.97)]
    [InlineData(DataType.Uint8, 0.9)]
    [InlineData(DataType.Bool, 1.0)]
    public void Every_tensor_round_trips_and_travels_suppressed_only_where_that_saves_an_eighth(DataType type, double zeroShare)
    {
        var size = type switch
        {
            DataType.Float16 => 2,
            DataType.Float or DataType.Int32 => 4,
            DataType.Int64 or DataType.Double => 8,
            _ => 1,
        };
        const int elements = 5_003; // not a multiple of 8: the last bitmap byte is partial
        var random = new Random(17);
        var data = new byte[elements * size];
        for (var i = 0; i < elements; i++)
        {
            if (random.NextDouble() >= zeroShare)
            {
                random.NextBytes(data.AsSpan(i * size, size));
                data[i * size] |= 1; // a non-zero element
            }
        }

        var frame = FrameOf(new HostTensor("t", type, [elements], data));
        var encoded = FrameCodec.Encode(frame);

        Assert.Equal(frame, FrameCodec.Decode(encoded));
        var nonZero = Enumerable.Range(0, elements).Count(i => data.AsSpan(i * size, size).ContainsAnyExcept((byte)0));
        var suppressed = ((elements + 7) / 8) + (nonZero * size);
        var worthIt = size > 1 && suppressed <= data.Length - (data.Length / 8);
        var header = FrameCodec.Encode(FrameOf(new HostTensor("t", type, [elements], []))).Length;
        Assert.Equal(worthIt ? header + 4 + suppressed : header + data.Length, encoded.Length);
    }

    [Fact]
    public void A_tensor_whose_last_elements_are_zero_or_whose_groups_are_full_round_trips()
    {
        var values = new float[4096];
        for (var i = 0; i < 1024; i++)
        {
            values[i] = i + 1; // full groups of 8 first, then nothing but zeros
        }

        var frame = FrameOf(new HostTensor("t", DataType.Float, [4096], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));

        Assert.Equal(frame, FrameCodec.Decode(FrameCodec.Encode(frame)));
    }

    [Fact]
    public void A_bitmap_that_marks_more_elements_than_were_packed_is_refused_not_read_past()
    {
        var values = new float[2048];
        values[5] = 1;
        values[700] = 2;
        var frame = FrameOf(new HostTensor("t", DataType.Float, [2048], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        var encoded = FrameCodec.Encode(frame);
        var bitmapStart = encoded.Length - 8 - 256; // two packed floats after a 256-byte bitmap
        encoded[bitmapStart + 10] = 0xFF;

        Assert.ThrowsAny<Exception>(() => FrameCodec.Decode(encoded));
    }

    [Fact]
    public void Boxes_whose_count_changes_from_frame_to_frame_none_included_cross_raw_or_suppressed_and_come_back_exactly()
    {
        // A detector's kept boxes after NonMaxSuppression: [count, 4] floats, mostly zeros once clipped, 0 to 600 of them.
        var random = new Random(9);
        var sizes = new List<int>();
        foreach (var count in new[] { 0, 3, 600, 0, 41, 1 })
        {
            var values = Enumerable.Range(0, count * 4).Select(_ => random.NextDouble() < 0.7 ? 0f : random.NextSingle()).ToArray();
            var boxes = new HostTensor("boxes", DataType.Float, [count, 4], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
            var scores = new HostTensor("scores", DataType.Float, [count], new byte[count * 4]);
            var frame = new Frame(count, "camera", 2, 3, 1, [boxes, scores]);

            var encoded = FrameCodec.Encode(frame);
            var decoded = FrameCodec.Decode(encoded);

            Assert.Equal(frame, decoded);
            Assert.Equal(new long[] { count, 4 }, decoded.Tensors[0].Shape);
            sizes.Add(encoded.Length);
        }

        Assert.True(sizes[2] < 600 * 5 * 4 / 2, $"600 sparse boxes took {sizes[2]} bytes: not suppressed.");
        Assert.Equal(sizes[0], sizes[3]);
    }

    private static Frame FrameOf(HostTensor tensor) => new(1, "camera", 2, 3, 1, [tensor]);
}
