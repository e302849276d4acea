using System.Runtime.InteropServices;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Ingest;

namespace PipelineActors.Runtime.DataPath.Preprocessing;

/// <summary>
/// Turns an RGB24 picture (rows top-down, <c>width * height * 3</c> bytes) into a model's image
/// input as its <see cref="ModelProfile"/> says: bilinear resize to the input size (no letterbox),
/// channel order, layout, normalisation. The resize tables are computed once per picture size and
/// reused; a frame costs one output array and no per-pixel allocations. Not thread-safe: one per source.
/// </summary>
public sealed class Preprocessor
{
    private readonly float[] _multiply = new float[3];
    private readonly float[] _add = new float[3];
    private readonly int[] _sourceChannel = new int[3];
    private Taps? _columns;
    private Taps? _rows;

    /// <param name="uint8Pixels">Emit the resized, reordered pixels as uint8; the pipeline's first stage applies the profile's normalisation.</param>
    public Preprocessor(ModelProfile profile, bool uint8Pixels = false)
    {
        Profile = profile;
        Uint8Pixels = uint8Pixels;
        Output = profile.InputInfo(uint8Pixels);
        for (var c = 0; c < 3; c++)
        {
            // (p * scale - mean) / std, folded into one multiply-add per value.
            _multiply[c] = profile.Scale / profile.Std[c];
            _add[c] = -profile.Mean[c] / profile.Std[c];
            _sourceChannel[c] = profile.Channels == ChannelOrder.Rgb ? c : 2 - c;
        }
    }

    public ModelProfile Profile { get; }

    public bool Uint8Pixels { get; }

    /// <summary>The tensor every frame becomes.</summary>
    public TensorInfo Output { get; }

    /// <summary>The model input of one RGB24 picture, in a new array the frame owns.</summary>
    public HostTensor Run(ReadOnlySpan<byte> rgb, int width, int height)
    {
        var data = new byte[Output.Bytes];
        Run(rgb, width, height, data);
        return new HostTensor(Output.Name, Output.ElementType, Output.Shape, data);
    }

    /// <summary>Writes the model input of one RGB24 picture into <paramref name="destination"/> (<see cref="Output"/>'s byte size).</summary>
    public void Run(ReadOnlySpan<byte> rgb, int width, int height, Span<byte> destination)
    {
        if (width < 1 || height < 1 || rgb.Length < width * height * 3)
        {
            throw new ArgumentException($"An RGB24 picture of {width}x{height} needs {width * height * 3} bytes, not {rgb.Length}.", nameof(rgb));
        }

        if (destination.Length != Output.Bytes)
        {
            throw new ArgumentException($"The destination must hold {Output.Bytes} bytes, not {destination.Length}.", nameof(destination));
        }

        var outWidth = Profile.Width;
        var outHeight = Profile.Height;
        if (width == outWidth && height == outHeight)
        {
            // ffmpeg already scaled the picture to the model's size: reorder and normalise only (the bilinear
            // taps would all be identities, at four reads and three lerps per value).
            Reorder(rgb, destination);
            return;
        }

        var columns = _columns is { } c && c.Source == width ? c : _columns = new Taps(width, outWidth);
        var rows = _rows is { } r && r.Source == height ? r : _rows = new Taps(height, outHeight);
        var planar = Profile.Layout == TensorLayout.Nchw;
        var plane = outWidth * outHeight;
        var stride = width * 3;
        var floats = Uint8Pixels ? Span<float>.Empty : MemoryMarshal.Cast<byte, float>(destination);

        for (var y = 0; y < outHeight; y++)
        {
            var top = rows.Low[y] * stride;
            var bottom = rows.High[y] * stride;
            var wy = rows.Weight[y];
            for (var x = 0; x < outWidth; x++)
            {
                var left = columns.Low[x] * 3;
                var right = columns.High[x] * 3;
                var wx = columns.Weight[x];
                var pixel = (y * outWidth) + x;
                for (var channel = 0; channel < 3; channel++)
                {
                    var s = _sourceChannel[channel];
                    float upper = rgb[top + left + s] + (wx * (rgb[top + right + s] - rgb[top + left + s]));
                    float lower = rgb[bottom + left + s] + (wx * (rgb[bottom + right + s] - rgb[bottom + left + s]));
                    var value = upper + (wy * (lower - upper));
                    var index = planar ? (channel * plane) + pixel : (pixel * 3) + channel;
                    if (Uint8Pixels)
                    {
                        destination[index] = (byte)Math.Clamp((int)(value + 0.5f), 0, 255);
                    }
                    else
                    {
                        floats[index] = (value * _multiply[channel]) + _add[channel];
                    }
                }
            }
        }
    }

    /// <summary>A picture already at the model's size into the model's layout and channel order; the same values the bilinear path gives.</summary>
    private void Reorder(ReadOnlySpan<byte> rgb, Span<byte> destination)
    {
        var plane = Profile.Width * Profile.Height;
        var planar = Profile.Layout == TensorLayout.Nchw;
        var floats = Uint8Pixels ? Span<float>.Empty : MemoryMarshal.Cast<byte, float>(destination);
        for (var pixel = 0; pixel < plane; pixel++)
        {
            for (var channel = 0; channel < 3; channel++)
            {
                var value = rgb[(pixel * 3) + _sourceChannel[channel]];
                var index = planar ? (channel * plane) + pixel : (pixel * 3) + channel;
                if (Uint8Pixels)
                {
                    destination[index] = value;
                }
                else
                {
                    floats[index] = (value * _multiply[channel]) + _add[channel];
                }
            }
        }
    }

    /// <summary>For each output column (or row): the two source pixels it lies between and the weight of the second (half-pixel centres,
    /// edges clamped).</summary>
    private sealed class Taps
    {
        public Taps(int source, int output)
        {
            Source = source;
            Low = new int[output];
            High = new int[output];
            Weight = new float[output];
            var ratio = (double)source / output;
            for (var i = 0; i < output; i++)
            {
                var at = Math.Clamp(((i + 0.5) * ratio) - 0.5, 0, source - 1);
                var low = (int)Math.Floor(at);
                Low[i] = low;
                High[i] = Math.Min(low + 1, source - 1);
                Weight[i] = (float)(at - low);
            }
        }

        public int Source { get; }

        public int[] Low { get; }

        public int[] High { get; }

        public float[] Weight { get; }
    }
}
