using System.Globalization;
using SkiaSharp;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sink.Decoders;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// Writes each frame's picture (as the model saw it) with the detector's boxes drawn on it, as
/// <c>frame-NNNNNN.png</c>, then passes the outcome on. Pictures ride on the outcome
/// (<see cref="FrameOutcome.Pixels"/>, when the ingest hands them to the sink); boxes come from the profile's decoder.
/// </summary>
public sealed class AnnotatingResultWriter(IResultWriter inner, ModelProfile profile, string folder) : IResultWriter
{
    private readonly IResultDecoder _decoder = DecoderRegistry.Get(profile.Decoder!);
    private readonly DecodeContext _context = new(profile.Width, profile.Height, profile.Width, profile.Height);

    public void Write(FrameOutcome outcome)
    {
        inner.Write(outcome);
        if (outcome.Pixels is not { } pixels || outcome.FailedReason is not null)
        {
            return;
        }

        Directory.CreateDirectory(folder);
        using var bitmap = ToBitmap(pixels);
        using (var canvas = new SKCanvas(bitmap))
        using (var pen = new SKPaint { Color = SKColors.Lime, Style = SKPaintStyle.Stroke, StrokeWidth = 2, IsAntialias = true })
        {
            foreach (var box in BoxesIn(_decoder.Decode(outcome.Outputs, _context)))
            {
                canvas.DrawRect(new SKRect((float)box.X, (float)box.Y, (float)(box.X + box.Width), (float)(box.Y + box.Height)), pen);
            }
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 90);
        var path = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"frame-{outcome.FrameId:D6}.png"));
        using var file = File.Create(path);
        png.SaveTo(file);
    }

    public void Dispose() => inner.Dispose();

    /// <summary>Every <see cref="Box"/> anywhere in a decoded result (faces, text regions...).</summary>
    public static IEnumerable<Box> BoxesIn(object? value) => value switch
    {
        null or string => [],
        Box box => [box],
        System.Collections.IEnumerable items => items.Cast<object?>().SelectMany(BoxesIn),
        _ when value.GetType().IsPrimitive || value.GetType().IsEnum => [],
        _ => value.GetType().GetProperties().Where(p => p.GetIndexParameters().Length == 0).SelectMany(p => BoxesIn(p.GetValue(value))),
    };

    /// <summary>The frame's uint8 pixels (NCHW or NHWC, RGB or BGR as the profile says) as an RGB bitmap.</summary>
    private SKBitmap ToBitmap(HostTensor pixels)
    {
        var (width, height) = (profile.Width, profile.Height);
        var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var data = pixels.Data;
        var isFloat = pixels.ElementType == Onnx.Proto.TensorProto.Types.DataType.Float;
        byte At(int c, int y, int x)
        {
            var channel = profile.Channels == ChannelOrder.Bgr ? 2 - c : c;
            var index = profile.Layout == TensorLayout.Nchw ? (channel * height * width) + (y * width) + x : (((y * width) + x) * 3) + channel;
            return isFloat ? (byte)Math.Clamp(BitConverter.ToSingle(data, index * 4) * 255, 0, 255) : data[index];
        }

        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                bitmap.SetPixel(x, y, new SKColor(At(0, y, x), At(1, y, x), At(2, y, x)));
            }
        }

        return bitmap;
    }
}
