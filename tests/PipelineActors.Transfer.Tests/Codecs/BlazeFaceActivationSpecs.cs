using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;
using StbImageSharp;
using Xunit.Abstractions;
using PipelineActors.Onnx.Inference;
using PipelineActors.TestSupport;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>
/// The codecs on a trained network: the bundled BlazeFace (pretrained, NHWC input) cut at its single-tensor cut nearest
/// half its FLOPs, with real photographs from Debian's opencv-doc, calibrated on six and tested on three others.
/// Fidelity is the relative L2 error of its four outputs (the decoder's boxes are not compared here).
/// </summary>
public sealed class BlazeFaceActivationSpecs(ITestOutputHelper output)
{
    private const string Pictures = "/usr/share/doc/opencv-doc/examples/data";

    private static readonly string[] Calibration = ["messi5.jpg", "fruits.jpg", "baboon.jpg", "squirrel_cls.jpg", "home.jpg", "building.jpg"];
    private static readonly string[] Tests = ["aero3.jpg", "butterfly.jpg", "HappyFish.jpg"];

    [Fact]
    public void On_a_pretrained_model_and_real_pictures_the_codecs_meet_their_nature_and_the_figures_are_printed()
    {
        var model = OnnxModelFile.Load(RepositoryFiles.Model("blazeface-back-256.onnx"));
        var analysis = ModelAnalysis.Analyze(model);
        var cut = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4)
            .OrderBy(c => Math.Abs(c.FlopsShare - 0.5)).First();
        var cargo = cut.Cargo[0];
        var stages = StageExtractor.Extract(analysis, [cut.Position]);
        using var up = new OrtSession(stages[0].Model.ToByteArray());
        using var down = new OrtSession(stages[1].Model.ToByteArray());

        var statistics = new TensorStatistics(cargo.Name, 1, (int)cargo.Shape[1]);
        foreach (var file in Calibration)
        {
            statistics.Add(Activation(up, file, cargo.Name), cargo.Shape);
        }

        var tests = Tests.Select(f => Activation(up, f, cargo.Name)).ToArray();
        var raw = cargo.Bytes;
        var zeros = tests.Average(t => t.Count(v => v == 0) / (double)t.Length);
        output.WriteLine($"BlazeFace cut {cut.Position} after {cut.AfterNode} ({cut.FlopsShare:P0} of the FLOPs): {cargo}, {raw} bytes as float32, "
            + $"{zeros:P1} exact zeros over {Tests.Length} pictures; calibrated on {Calibration.Length}");
        output.WriteLine("codec | bytes (mean) | ratio vs float32 | worst cut rel. L2 | worst outputs rel. L2");

        ITensorCodec[] codecs = [new Lz4Codec(), new Fp16Codec(), QuantizedCodec.EightBit(statistics), QuantizedCodec.FourBit(statistics)];
        foreach (var codec in codecs)
        {
            double bytes = 0, cutError = 0, outputError = 0;
            foreach (var activation in tests)
            {
                var encoded = codec.Encode(activation, cargo.Shape);
                var decoded = codec.Decode(encoded, DecodeLimits.For(cargo.Shape)).Values;
                TestTensors.AssertKeepsPromise(codec, activation, cargo.Shape, decoded);
                bytes += encoded.Length / (double)tests.Length;
                cutError = Math.Max(cutError, RelativeL2(activation, decoded));
                outputError = Math.Max(outputError, OutputsError(down, cargo, activation, decoded));
            }

            output.WriteLine($"{codec.Name} | {bytes:F0} | {raw / bytes:F2}x | {cutError:E2} | {outputError:E2}");
            var ratio = raw / bytes;
            Assert.True(codec.Name switch { "lz4" => ratio >= 0.99, "fp16" => ratio >= 1.99, "int8" => ratio >= 3.9, _ => ratio >= 7.8 },
                $"{codec.Name}: {ratio:F2}x");
        }
    }

    [Fact]
    public void On_a_pretrained_model_the_default_clip_gives_a_lower_output_error_than_the_other_clips()
    {
        var (cargo, statistics, tests, downstream) = Prepare();
        using var down = new OrtSession(downstream.ToByteArray());
        foreach (var bits in new[] { 8, 4 })
        {
            var cutErrors = new Dictionary<ClipMethod, double>();
            var outputErrors = new Dictionary<ClipMethod, double>();
            foreach (var method in Enum.GetValues<ClipMethod>())
            {
                var codec = QuantizedCodec.Calibrated(bits, statistics, method);
                var decoded = tests.Select(a => codec.Decode(codec.Encode(a, cargo.Shape), DecodeLimits.For(cargo.Shape)).Values).ToArray();
                cutErrors[method] = tests.Select((a, i) => RelativeL2(a, decoded[i])).Average();
                outputErrors[method] = tests.Select((a, i) => OutputsError(down, cargo, a, decoded[i])).Average();
            }

            output.WriteLine($"BlazeFace int{bits}: mean cut rel. L2 " + string.Join(", ", cutErrors.Select(e => $"{e.Key} {e.Value:E3}")));
            output.WriteLine($"BlazeFace int{bits}: mean outputs rel. L2 " + string.Join(", ", outputErrors.Select(e => $"{e.Key} {e.Value:E3}")));
            Assert.True(outputErrors[Clipping.Default] < outputErrors[ClipMethod.Percentile]);
            Assert.True(outputErrors[Clipping.Default] < outputErrors[ClipMethod.AciqGauss]);
        }
    }

    private static (TensorInfo Cargo, TensorStatistics Statistics, float[][] Tests, ModelProto Downstream) Prepare()
    {
        var model = OnnxModelFile.Load(RepositoryFiles.Model("blazeface-back-256.onnx"));
        var analysis = ModelAnalysis.Analyze(model);
        var cut = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4)
            .OrderBy(c => Math.Abs(c.FlopsShare - 0.5)).First();
        var cargo = cut.Cargo[0];
        var stages = StageExtractor.Extract(analysis, [cut.Position]);
        using var up = new OrtSession(stages[0].Model.ToByteArray());
        var statistics = new TensorStatistics(cargo.Name, 1, (int)cargo.Shape[1]);
        foreach (var file in Calibration)
        {
            statistics.Add(Activation(up, file, cargo.Name), cargo.Shape);
        }

        return (cargo, statistics, [.. Tests.Select(f => Activation(up, f, cargo.Name))], stages[1].Model);
    }

    private static float[] Activation(OrtSession up, string file, string cargo)
    {
        var path = Path.Combine(Pictures, file);
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's opencv-doc (sudo apt-get install opencv-doc).");
        var image = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
        // Nearest-neighbour resize to 256x256, NHWC, x / 127.5 - 1 as the model expects.
        var input = new float[256 * 256 * 3];
        for (var y = 0; y < 256; y++)
        {
            for (var x = 0; x < 256; x++)
            {
                var source = (((y * image.Height / 256) * image.Width) + (x * image.Width / 256)) * 3;
                for (var c = 0; c < 3; c++)
                {
                    input[(((y * 256) + x) * 3) + c] = (image.Data[source + c] / 127.5f) - 1f;
                }
            }
        }

        var info = new TensorInfo(up.InputNames[0], TensorProto.Types.DataType.Float, [1, 256, 256, 3]);
        var outputs = up.Run(new Dictionary<string, HostTensor> { [info.Name] = new(info, MemoryMarshal.AsBytes(input.AsSpan()).ToArray()) });
        return MemoryMarshal.Cast<byte, float>(outputs[cargo].Data).ToArray();
    }

    /// <summary>The worst relative L2 error over the downstream stage's outputs, decoded cut tensor against exact.</summary>
    private static double OutputsError(OrtSession down, TensorInfo cargo, float[] exact, float[] decoded)
    {
        var a = down.Run(new Dictionary<string, HostTensor> { [cargo.Name] = new(cargo, MemoryMarshal.AsBytes(exact.AsSpan()).ToArray()) });
        var b = down.Run(new Dictionary<string, HostTensor> { [cargo.Name] = new(cargo, MemoryMarshal.AsBytes(decoded.AsSpan()).ToArray()) });
        static float[] Floats(HostTensor t) => MemoryMarshal.Cast<byte, float>(t.Data).ToArray();
        return a.Keys.Max(k => RelativeL2(Floats(a[k]), Floats(b[k])));
    }

    private static double RelativeL2(float[] expected, float[] actual)
    {
        double diff = 0, norm = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            diff += (expected[i] - (double)actual[i]) * (expected[i] - (double)actual[i]);
            norm += expected[i] * (double)expected[i];
        }

        return Math.Sqrt(diff / Math.Max(norm, double.Epsilon));
    }
}
