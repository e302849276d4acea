using System.Runtime.InteropServices;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using StbImageSharp;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Sink.Decoders;

/// <summary>
/// Real pictures from Debian's opencv-doc and the bundled models, with just enough test-side
/// preprocessing (crop, rotate, bilinear resize, pad, normalise) to feed them.
/// </summary>
internal static class TestPictures
{
    public const string OpenCvExamples = "/usr/share/doc/opencv-doc/examples";

    public static string ModelsFolder { get; } = RepositoryFiles.ModelsFolder;

    public static RgbImage Load(string relativePath)
    {
        var path = Path.Combine(OpenCvExamples, relativePath);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Test picture {path} is missing; install Debian's opencv-doc (apt-get install -y "
                + $"opencv-doc), as .ci/run does.", path);
        }

        var decoded = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
        return new RgbImage(decoded.Width, decoded.Height, Array.ConvertAll(decoded.Data, b => (float)b));
    }

    /// <summary>Runs a bundled model on one float32 input and returns its outputs as frame tensors, in the model's output order.</summary>
    public static IReadOnlyList<HostTensor> Run(string model, string inputName, long[] shape, float[] input)
    {
        using var runner = new OrtSession(File.ReadAllBytes(Path.Combine(ModelsFolder, model)), intraOpThreads: 2);
        var info = new TensorInfo(inputName, TensorProto.Types.DataType.Float, shape);
        var outputs = runner.Run(new Dictionary<string, HostTensor> { [inputName] = new(info, MemoryMarshal.AsBytes(input.AsSpan()).ToArray()) });
        return runner.OutputNames.Select(n => new HostTensor(n, outputs[n].Info.ElementType, outputs[n].Info.Shape, outputs[n].Data)).ToList();
    }

}

/// <summary>An RGB picture, interleaved, values 0..255 as floats, y down.</summary>
internal sealed class RgbImage(int width, int height, float[] pixels)
{
    public int Width => width;

    public int Height => height;

    public float this[int x, int y, int c] => pixels[(((y * width) + x) * 3) + c];

    public RgbImage Crop(int x0, int y0, int w, int h)
    {
        var result = new float[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            Array.Copy(pixels, (((y0 + y) * width) + x0) * 3, result, y * w * 3, w * 3);
        }

        return new RgbImage(w, h, result);
    }

    public RgbImage Rotate180()
    {
        var result = new float[pixels.Length];
        for (var p = 0; p < width * height; p++)
        {
            Array.Copy(pixels, p * 3, result, ((width * height) - 1 - p) * 3, 3);
        }

        return new RgbImage(width, height, result);
    }

    /// <summary>Bilinear resize with pixel centres aligned as OpenCV's INTER_LINEAR does.</summary>
    public RgbImage Resize(int w, int h)
    {
        var result = new float[w * h * 3];
        var sx = (double)width / w;
        var sy = (double)height / h;
        for (var y = 0; y < h; y++)
        {
            var fy = Math.Clamp(((y + 0.5) * sy) - 0.5, 0, height - 1);
            var y0 = (int)fy;
            var y1 = Math.Min(y0 + 1, height - 1);
            var ty = fy - y0;
            for (var x = 0; x < w; x++)
            {
                var fx = Math.Clamp(((x + 0.5) * sx) - 0.5, 0, width - 1);
                var x0 = (int)fx;
                var x1 = Math.Min(x0 + 1, width - 1);
                var tx = fx - x0;
                for (var c = 0; c < 3; c++)
                {
                    var top = (this[x0, y0, c] * (1 - tx)) + (this[x1, y0, c] * tx);
                    var bottom = (this[x0, y1, c] * (1 - tx)) + (this[x1, y1, c] * tx);
                    result[(((y * w) + x) * 3) + c] = (float)((top * (1 - ty)) + (bottom * ty));
                }
            }
        }

        return new RgbImage(w, h, result);
    }

    /// <summary>Places the picture at (<paramref name="x0"/>, <paramref name="y0"/>) on a black canvas.</summary>
    public RgbImage Pad(int w, int h, int x0, int y0)
    {
        var result = new float[w * h * 3];
        for (var y = 0; y < height; y++)
        {
            Array.Copy(pixels, y * width * 3, result, (((y0 + y) * w) + x0) * 3, width * 3);
        }

        return new RgbImage(w, h, result);
    }

    /// <summary>NHWC floats, RGB, each value through <paramref name="normalise"/>(value, channel).</summary>
    public float[] ToNhwc(Func<float, int, float> normalise)
    {
        var result = new float[pixels.Length];
        for (var i = 0; i < pixels.Length; i++)
        {
            result[i] = normalise(pixels[i], i % 3);
        }

        return result;
    }

    /// <summary>NCHW floats, planes in BGR order (as OpenCV loads images), each value through <paramref name="normalise"/>(value, plane).</summary>
    public float[] ToNchwBgr(Func<float, int, float> normalise)
    {
        var plane = width * height;
        var result = new float[plane * 3];
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                result[(c * plane) + p] = normalise(pixels[(p * 3) + 2 - c], c);
            }
        }

        return result;
    }
}
