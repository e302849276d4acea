using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.TestSupport;
using StbImageSharp;

namespace PipelineActors.Transfer.Tests.Quantization;

/// <summary>Real pictures from Debian's opencv-doc preprocessed as a bundled model's profile says, and small models made on the spot.</summary>
internal static class QdqFixtures
{
    public const string Pictures = "/usr/share/doc/opencv-doc/examples/data";

    public static readonly string[] CalibrationPictures =
        ["messi5.jpg", "fruits.jpg", "baboon.jpg", "squirrel_cls.jpg", "home.jpg", "building.jpg", "board.jpg", "left01.jpg"];

    public static readonly string[] TestPictures = ["aero3.jpg", "butterfly.jpg", "HappyFish.jpg", "starry_night.jpg", "graf1.png"];

    /// <summary>BlazeFace's input: 256x256 RGB, NHWC, x / 127.5 - 1.</summary>
    public static Dictionary<string, HostTensor> BlazeFaceFrame(string file) =>
        Frame(file, "input:0", 256, 256, nhwc: true, bgr: false, v => (v / 127.5f) - 1f);

    /// <summary>The PaddleOCR text-direction classifier's input: 48x192 BGR, NCHW, (x / 255 - 0.5) / 0.5.</summary>
    public static Dictionary<string, HostTensor> ClassifierFrame(string file) =>
        Frame(file, "x", 192, 48, nhwc: false, bgr: true, v => ((v / 255f) - 0.5f) / 0.5f);

    private static Dictionary<string, HostTensor> Frame(
        string file, string input, int width, int height, bool nhwc, bool bgr, Func<float, float> scale)
    {
        var path = Path.Combine(Pictures, file);
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's opencv-doc (sudo apt-get install opencv-doc).");
        var image = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
        var values = new float[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var source = (((y * image.Height / height) * image.Width) + (x * image.Width / width)) * 3;
                for (var c = 0; c < 3; c++)
                {
                    var v = scale(image.Data[source + (bgr ? 2 - c : c)]);
                    values[nhwc ? (((y * width) + x) * 3) + c : (((c * height) + y) * width) + x] = v;
                }
            }
        }

        long[] shape = nhwc ? [1, height, width, 3] : [1, 3, height, width];
        var info = new TensorInfo(input, TensorProto.Types.DataType.Float, shape);
        return new Dictionary<string, HostTensor>(StringComparer.Ordinal) { [input] = new(info, MemoryMarshal.AsBytes(values.AsSpan()).ToArray()) };
    }

    /// <summary>A smooth random picture-like input (a sum of a few waves plus noise), NCHW.</summary>
    public static Dictionary<string, HostTensor> Smooth(string input, long[] shape, int seed)
    {
        var random = new Random(seed);
        var count = (int)shape.Aggregate(1L, (a, d) => a * d);
        var values = new float[count];
        var (fx, fy, phase) = (random.NextDouble() * 0.5, random.NextDouble() * 0.5, random.NextDouble() * 6);
        var (h, w) = ((int)shape[2], (int)shape[3]);
        for (var i = 0; i < count; i++)
        {
            var (y, x) = (i / w % h, i % w);
            values[i] = (float)(Math.Sin((fx * x) + (fy * y) + phase + (i / (h * w))) + (0.1 * random.NextDouble()));
        }

        var info = new TensorInfo(input, TensorProto.Types.DataType.Float, shape);
        return new Dictionary<string, HostTensor>(StringComparer.Ordinal) { [input] = new(info, MemoryMarshal.AsBytes(values.AsSpan()).ToArray()) };
    }

    /// <summary>
    /// x[1,3,16,16] -> Conv 8 3x3 -> Relu -> Conv 16 3x3 stride 2 -> Relu -> GlobalAveragePool -> Flatten -> Gemm 16->10 (transB) -> y,
    /// with seeded random weights and biases.
    /// </summary>
    public static ModelProto ConvGemm(int seed = 3, long opset = 13)
    {
        var random = new Random(seed);
        var model = new ModelProto { IrVersion = 8, ProducerName = "test", Graph = new GraphProto { Name = "conv-gemm" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        var graph = model.Graph;
        graph.Input.Add(OnnxBuilder.ValueInfo("x", TensorProto.Types.DataType.Float, 1, 3, 16, 16));
        graph.Output.Add(OnnxBuilder.ValueInfo("y", TensorProto.Types.DataType.Float, 1, 10));
        Add(graph, Tensor("w1", [8, 3, 3, 3], random), Tensor("b1", [8], random), Tensor("w2", [16, 8, 3, 3], random), Tensor("b2", [16], random),
            Tensor("w3", [10, 16], random), Tensor("b3", [10], random));
        graph.Node.Add(Conv("x", "w1", "b1", "c1", 1));
        graph.Node.Add(new NodeProto { Name = "relu1", OpType = "Relu", Input = { "c1" }, Output = { "r1" } });
        graph.Node.Add(Conv("r1", "w2", "b2", "c2", 2));
        graph.Node.Add(new NodeProto { Name = "relu2", OpType = "Relu", Input = { "c2" }, Output = { "r2" } });
        graph.Node.Add(new NodeProto { Name = "pool", OpType = "GlobalAveragePool", Input = { "r2" }, Output = { "p" } });
        graph.Node.Add(new NodeProto { Name = "flatten", OpType = "Flatten", Input = { "p" }, Output = { "f" } });
        var gemm = new NodeProto { Name = "gemm", OpType = "Gemm", Input = { "f", "w3", "b3" }, Output = { "y" } };
        gemm.Attribute.Add(new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        graph.Node.Add(gemm);
        return model;
    }

    public static void Add(GraphProto graph, params TensorProto[] tensors) => graph.Initializer.AddRange(tensors);

    public static NodeProto Conv(string x, string w, string? b, string y, int stride)
    {
        var node = new NodeProto { Name = $"{y}.conv", OpType = "Conv", Input = { x, w }, Output = { y } };
        if (b is not null)
        {
            node.Input.Add(b);
        }

        node.Attribute.Add(OnnxBuilder.Ints("strides", stride, stride));
        node.Attribute.Add(OnnxBuilder.Pads(1));
        return node;
    }

    public static TensorProto Tensor(string name, long[] dims, Random random)
    {
        var fanIn = dims.Length > 1 ? dims.Skip(1).Aggregate(1L, (a, d) => a * d) : 4;
        var values = Enumerable.Range(0, (int)dims.Aggregate(1L, (a, d) => a * d))
            .Select(_ => (float)((random.NextDouble() * 2) - 1) / MathF.Sqrt(fanIn)).ToArray();
        return Floats(name, dims, values);
    }

    /// <summary>Values in float_data, not raw_data as <see cref="OnnxBuilder.FloatTensor"/> writes: the rewrite reads both.</summary>
    public static TensorProto Floats(string name, long[] dims, float[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(dims);
        tensor.FloatData.AddRange(values);
        return tensor;
    }

    /// <summary>sqrt(sum (a - b)^2 / sum a^2) over the named outputs.</summary>
    public static double RelativeL2(
        IReadOnlyDictionary<string, HostTensor> expected, IReadOnlyDictionary<string, HostTensor> actual, IEnumerable<string> names)
    {
        double difference = 0, norm = 0;
        foreach (var name in names)
        {
            var a = expected[name].ToDoubles();
            var b = actual[name].ToDoubles();
            Assert.Equal(a.Length, b.Length);
            for (var i = 0; i < a.Length; i++)
            {
                difference += (a[i] - b[i]) * (a[i] - b[i]);
                norm += a[i] * a[i];
            }
        }

        return Math.Sqrt(difference / Math.Max(norm, double.Epsilon));
    }

    public static byte[] Bytes(ModelProto model) => model.ToByteArray();
}
