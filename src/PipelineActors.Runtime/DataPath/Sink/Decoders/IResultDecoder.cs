using System.Runtime.InteropServices;
using System.Text.Json.Serialization;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Sink.Decoders;

/// <summary>Turns a model's output tensors into a result a person can read (classes, boxes), serialisable as JSON.</summary>
public interface IResultDecoder
{
    /// <summary>The name a model profile uses to pick this decoder (e.g. <c>blazeface</c>).</summary>
    string Name { get; }

    /// <summary>Decodes one frame's outputs; boxes come back in original-image pixels.</summary>
    object Decode(IReadOnlyList<HostTensor> outputs, DecodeContext ctx);
}

/// <summary>How the original image was fitted into the model input.</summary>
public enum ImageFit
{
    /// <summary>Each axis scaled on its own to fill the input (aspect ratio not kept).</summary>
    Stretch,

    /// <summary>Scaled uniformly to fit inside the input and centred; the rest is padding.</summary>
    Letterbox,
}

/// <summary>The original image's size and the model input's size, so that decoders can map coordinates back.</summary>
public sealed record DecodeContext(int ImageWidth, int ImageHeight, int InputWidth, int InputHeight, ImageFit Fit = ImageFit.Stretch)
{
    /// <summary>Maps a point in model-input pixels to original-image pixels.</summary>
    public (double X, double Y) ToImage(double inputX, double inputY)
    {
        if (Fit == ImageFit.Stretch)
        {
            return (inputX * ImageWidth / InputWidth, inputY * ImageHeight / InputHeight);
        }

        var scale = Math.Min((double)InputWidth / ImageWidth, (double)InputHeight / ImageHeight);
        var padX = (InputWidth - (ImageWidth * scale)) / 2;
        var padY = (InputHeight - (ImageHeight * scale)) / 2;
        return ((inputX - padX) / scale, (inputY - padY) / scale);
    }

    /// <summary>Maps a box in model-input pixels to original-image pixels, clipped to the image.</summary>
    public Box ToImage(Box input)
    {
        var (x0, y0) = ToImage(input.X, input.Y);
        var (x1, y1) = ToImage(input.X + input.Width, input.Y + input.Height);
        x0 = Math.Clamp(x0, 0, ImageWidth);
        y0 = Math.Clamp(y0, 0, ImageHeight);
        x1 = Math.Clamp(x1, 0, ImageWidth);
        y1 = Math.Clamp(y1, 0, ImageHeight);
        return new Box(x0, y0, Math.Max(0, x1 - x0), Math.Max(0, y1 - y0));
    }
}

/// <summary>An axis-aligned box: top-left corner and size, y down.</summary>
public sealed record Box(double X, double Y, double Width, double Height)
{
    [JsonIgnore]
    public double Area => Width * Height;

    /// <summary>Area of the overlap of two boxes (0 when they do not touch).</summary>
    public double IntersectionArea(Box other)
    {
        var w = Math.Min(X + Width, other.X + other.Width) - Math.Max(X, other.X);
        var h = Math.Min(Y + Height, other.Y + other.Height) - Math.Max(Y, other.Y);
        return w > 0 && h > 0 ? w * h : 0;
    }

    /// <summary>Intersection over union; 0 for two empty boxes.</summary>
    public double IoU(Box other)
    {
        var inter = IntersectionArea(other);
        var union = Area + other.Area - inter;
        return union > 0 ? inter / union : 0;
    }
}

/// <summary>A point in original-image pixels.</summary>
public sealed record Point2(double X, double Y);

/// <summary>Reads float32 output tensors, with errors that name the tensor.</summary>
internal static class DecoderTensors
{
    public static ReadOnlySpan<float> Floats(HostTensor tensor)
    {
        if (tensor.ElementType != TensorProto.Types.DataType.Float)
        {
            throw new PipelineInputException($"Output '{tensor.Name}' is {tensor.Info.TypeName}, but the decoder reads float32 tensors; "
                + $"pick a decoder that matches the model.");
        }

        return MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan());
    }

    public static HostTensor Single(IReadOnlyList<HostTensor> outputs, string decoder)
    {
        if (outputs.Count != 1)
        {
            throw new PipelineInputException($"The '{decoder}' decoder expects one output tensor but the model gave {outputs.Count}; "
                + $"pick a decoder that matches the model.");
        }

        return outputs[0];
    }
}
