using System.Text.Json;
using System.Text.Json.Serialization;
using PipelineActors.Onnx;

namespace PipelineActors.Transfer.Calibration;

/// <summary>
/// Per-channel statistics of one cut tensor over calibration frames: what the quantising codecs derive their clip
/// ranges from. The channel axis is axis 1 of NCHW unless declared otherwise; a tensor of lower rank is one channel.
/// Serialises to JSON so that it can sit beside a split's manifest.
/// </summary>
public sealed class TensorStatistics
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public TensorStatistics(string name, int channelAxis, int channels)
    {
        if (channelAxis < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(channelAxis), channelAxis, "A channel axis is 0 or more.");
        }

        if (channels < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "A tensor has at least one channel.");
        }

        Name = name;
        ChannelAxis = channelAxis;
        Channels = Enumerable.Range(0, channels).Select(_ => new ChannelStatistics()).ToArray();
    }

    [JsonConstructor]
    public TensorStatistics(string name, int channelAxis, ChannelStatistics[] channels, long frames)
    {
        Name = name;
        ChannelAxis = channelAxis;
        Channels = channels;
        Frames = frames;
    }

    /// <summary>The cut tensor's name in the model.</summary>
    public string Name { get; }

    public int ChannelAxis { get; }

    public ChannelStatistics[] Channels { get; }

    /// <summary>How many frames (tensors) have been added.</summary>
    public long Frames { get; private set; }

    /// <summary>Statistics of one tensor (one frame).</summary>
    public static TensorStatistics Of(string name, ReadOnlySpan<float> values, ReadOnlySpan<long> shape, int channelAxis = 1)
    {
        var statistics = new TensorStatistics(name, channelAxis, (int)ChannelLayout.Of(shape, channelAxis).Channels);
        statistics.Add(values, shape);
        return statistics;
    }

    /// <summary>Adds one frame's tensor; its channel count must match.</summary>
    public void Add(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        var layout = ChannelLayout.Of(shape, ChannelAxis);
        if (layout.Channels != Channels.Length)
        {
            throw new ArgumentException(
                $"A tensor with {layout.Channels} channels on axis {ChannelAxis} cannot be added to statistics of {Channels.Length}.",
                nameof(shape));
        }

        if (layout.Count != values.Length)
        {
            throw new ArgumentException($"The shape holds {layout.Count} elements but {values.Length} values were given.", nameof(values));
        }

        var run = (int)layout.Inner;
        for (long outer = 0, offset = 0; outer < layout.Outer; outer++)
        {
            for (var c = 0; c < Channels.Length; c++, offset += run)
            {
                Channels[c].Add(values.Slice((int)offset, run));
            }
        }

        Frames++;
    }

    /// <summary>Adds every frame of <paramref name="other"/> (statistics of the same tensor from other frames).</summary>
    public void Merge(TensorStatistics other)
    {
        if (other.ChannelAxis != ChannelAxis || other.Channels.Length != Channels.Length)
        {
            throw new ArgumentException(
                $"Statistics of {other.Channels.Length} channels on axis {other.ChannelAxis} cannot merge into {Channels.Length} "
                + $"on axis {ChannelAxis}.",
                nameof(other));
        }

        for (var c = 0; c < Channels.Length; c++)
        {
            Channels[c].Merge(other.Channels[c]);
        }

        Frames += other.Frames;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads statistics <see cref="ToJson"/> wrote; <paramref name="what"/> names the source in errors.</summary>
    public static TensorStatistics FromJson(string json, string what)
    {
        TensorStatistics? statistics;
        try
        {
            statistics = JsonSerializer.Deserialize<TensorStatistics>(json, Json);
        }
        catch (JsonException e)
        {
            throw new PipelineInputException($"'{what}' does not hold calibration statistics ({e.Message}); run the calibration again.", e);
        }

        if (statistics is null || string.IsNullOrEmpty(statistics.Name) || statistics.Channels is null || statistics.Channels.Length == 0
            || statistics.ChannelAxis < 0 || statistics.Channels.Any(c => c is null || c.Count < 0 || c.Min > c.Max))
        {
            throw new PipelineInputException(
                $"'{what}' holds incomplete calibration statistics (a name, a channel axis and consistent channels are needed); run the "
                + $"calibration again.");
        }

        return statistics;
    }
}

/// <summary>How a row-major tensor splits around its channel axis: outer blocks, channels, and the run of one channel in a block.</summary>
public readonly record struct ChannelLayout(long Outer, long Channels, long Inner, long Count)
{
    /// <summary>The layout for <paramref name="shape"/>; a tensor whose rank does not reach the axis is one channel.</summary>
    public static ChannelLayout Of(ReadOnlySpan<long> shape, int channelAxis)
    {
        long count = 1;
        foreach (var d in shape)
        {
            count = checked(count * d);
        }

        if (channelAxis >= shape.Length)
        {
            return new ChannelLayout(1, 1, count, count);
        }

        long outer = 1, inner = 1;
        for (var i = 0; i < channelAxis; i++)
        {
            outer *= shape[i];
        }

        for (var i = channelAxis + 1; i < shape.Length; i++)
        {
            inner *= shape[i];
        }

        // A zero-sized tensor still has its channels; only when the channel dim itself is 0 is there no channel.
        return new ChannelLayout(outer, Math.Max(shape[channelAxis], 1), shape[channelAxis] == 0 ? 0 : inner, count);
    }
}
