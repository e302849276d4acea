using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;
using PipelineActors.Transfer.Projection;
using Xunit.Abstractions;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Transfer.Tests.Projection;

/// <summary>
/// pca:K and pool2 as ONNX rewrites of the zoo ResNet-18's two stages (random weights): the rewritten models load in
/// ONNX Runtime and chain, and the reconstruction error at the cut and at the logits is measured and printed.
/// </summary>
public sealed class CutRewriteSpecs(ResNetCut cut, ITestOutputHelper output) : IClassFixture<ResNetCut>
{
    [Fact]
    public void A_projection_of_data_with_k_dimensional_structure_keeps_it_all_with_orthonormal_rows()
    {
        // 16 channels that are mixtures of 4 hidden ones plus an offset: pca:4 loses nothing.
        var random = new Random(5);
        var mixing = Enumerable.Range(0, 16 * 4).Select(_ => TestTensors.Gaussian(random)).ToArray();
        long[] shape = [2, 16, 10, 10];
        var values = new float[TestTensors.Count(shape)];
        for (var n = 0; n < 2; n++)
        {
            for (var p = 0; p < 100; p++)
            {
                var hidden = Enumerable.Range(0, 4).Select(_ => TestTensors.Gaussian(random)).ToArray();
                for (var c = 0; c < 16; c++)
                {
                    values[(n * 1600) + (c * 100) + p] = (float)(c + Enumerable.Range(0, 4).Sum(h => mixing[(c * 4) + h] * hidden[h]));
                }
            }
        }

        var covariance = new ChannelCovariance(16);
        covariance.Add(values, shape);
        var pca = covariance.Fit(4);

        Assert.Equal(1.0, pca.ExplainedVariance, 1e-6);
        for (var a = 0; a < 4; a++)
        {
            for (var b = 0; b < 4; b++)
            {
                var dot = Enumerable.Range(0, 16).Sum(c => (double)pca.Projection[(a * 16) + c] * pca.Projection[(b * 16) + c]);
                Assert.Equal(a == b ? 1 : 0, dot, 1e-5);
            }
        }

        var back = pca.Reconstruct(pca.Project(values, shape), [2, 4, 10, 10]);
        Assert.All(Enumerable.Range(0, values.Length), i => Assert.Equal(values[i], back[i], 1e-3));
    }

    [Theory]
    [InlineData(256)]
    [InlineData(128)]
    [InlineData(64)]
    [InlineData(32)]
    public void The_pca_rewrite_loads_in_onnx_runtime_chains_and_its_error_is_measured(int components)
    {
        var covariance = new ChannelCovariance((int)cut.Cargo.Shape[1]);
        foreach (var activation in cut.CalibrationActivations)
        {
            covariance.Add(activation, cut.Cargo.Shape);
        }

        var pca = covariance.Fit(components);
        var (upstream, downstream) = CutRewrites.Pca(cut.Stages[0].Model, cut.Stages[1].Model, cut.Cargo.Name, pca);
        using var up = new OrtSession(upstream.ToByteArray());
        using var down = new OrtSession(downstream.ToByteArray());
        long[] wireShape = [1, components, 14, 14];

        Assert.Equal([$"{cut.Cargo.Name}.pca{components}"], up.OutputNames);
        Assert.Equal(up.OutputNames, down.InputNames);
        // The wire tensors of the calibration pictures calibrate int8 on top of the projection.
        var wireStatistics = new TensorStatistics("wire", 1, components);
        foreach (var seed in Enumerable.Range(1, 8))
        {
            wireStatistics.Add(ResNetCut.Run(up, "input", [1, 3, 224, 224], ResNetCut.Picture(seed)), wireShape);
        }

        var int8 = QuantizedCodec.EightBit(wireStatistics);
        double activationError = 0, logitsError = 0, int8LogitsError = 0;
        var agree = 0;
        var int8Bytes = 0;
        for (var t = 0; t < cut.TestActivations.Count; t++)
        {
            var exact = cut.TestActivations[t];
            var wire = ResNetCut.Run(up, "input", [1, 3, 224, 224], ResNetCut.Picture(100 + t));
            // ORT's projection is the C# one, so the rewrite is the matrix it was given.
            var expectedWire = pca.Project(exact, cut.Cargo.Shape);
            Assert.True(RelativeL2(expectedWire, wire) < 1e-4, $"ORT's projection differs from P (x - mean) by {RelativeL2(expectedWire, wire):E2}");
            activationError = Math.Max(activationError, RelativeL2(exact, pca.Reconstruct(wire, wireShape)));

            var logits = ResNetCut.Run(down, down.InputNames[0], wireShape, wire);
            var exactLogits = cut.Logits(exact);
            logitsError = Math.Max(logitsError, RelativeL2(exactLogits, logits));
            agree += ArgMax(exactLogits) == ArgMax(logits) ? 1 : 0;

            var encoded = int8.Encode(wire, wireShape);
            int8Bytes = encoded.Length;
            var viaInt8 = ResNetCut.Run(down, down.InputNames[0], wireShape, int8.Decode(encoded, DecodeLimits.For(wireShape)).Values);
            int8LogitsError = Math.Max(int8LogitsError, RelativeL2(exactLogits, viaInt8));
        }

        var raw = cut.Cargo.Shape.Aggregate(4L, (a, d) => a * d);
        var wireBytes = components * 196 * 4;
        output.WriteLine($"pca:{components} on {cut.Cargo}: explained variance {pca.ExplainedVariance:P2}; float32 wire {wireBytes} bytes "
            + $"({(double)raw / wireBytes:F1}x), +int8 {int8Bytes} bytes ({(double)raw / int8Bytes:F1}x); "
            + $"worst activation rel. L2 {activationError:E2}, "
            + $"logits rel. L2 {logitsError:E2} (+int8 {int8LogitsError:E2}), top-1 agreement {agree}/{cut.TestActivations.Count}");
        if (components == cut.Cargo.Shape[1])
        {
            Assert.True(activationError < 1e-4, $"a full-rank projection should be lossless, but lost {activationError:E2}");
        }

        Assert.True(double.IsFinite(logitsError) && logitsError < 1, $"logits error {logitsError:E2}");
    }

    [Theory]
    [InlineData(ResNetCut.CutAfter, 14)]
    [InlineData("layer4.0.relu2", 7)]
    public void The_pool2_rewrite_loads_chains_sends_a_quarter_of_the_bytes_and_its_error_is_measured(string afterNode, int size)
    {
        var analysis = cut.Analysis;
        var position = analysis.Cuts.Single(c => c.AfterNode == afterNode);
        var cargo = Assert.Single(position.Cargo);
        var stages = StageExtractor.Extract(analysis, [position.Position]);
        var (upstream, downstream) = CutRewrites.Pool2(stages[0].Model, stages[1].Model, cargo.Name);
        using var exactUp = new OrtSession(stages[0].Model.ToByteArray());
        using var exactDown = new OrtSession(stages[1].Model.ToByteArray());
        using var up = new OrtSession(upstream.ToByteArray());
        using var down = new OrtSession(downstream.ToByteArray());
        var half = (size + 1) / 2;
        long[] wireShape = [1, cargo.Shape[1], half, half];

        double logitsError = 0, cutError = 0;
        var agree = 0;
        foreach (var seed in Enumerable.Range(100, 4))
        {
            var picture = ResNetCut.Picture(seed);
            var exact = ResNetCut.Run(exactUp, "input", [1, 3, 224, 224], picture);
            var wire = ResNetCut.Run(up, "input", [1, 3, 224, 224], picture);
            Assert.Equal(MaxPool2(exact, (int)cargo.Shape[1], size), wire);
            cutError = Math.Max(cutError, RelativeL2(exact, NearestUp2(wire, (int)cargo.Shape[1], size)));
            var logits = ResNetCut.Run(down, down.InputNames[0], wireShape, wire);
            var exactLogits = ResNetCut.Run(exactDown, cargo.Name, cargo.Shape, exact);
            logitsError = Math.Max(logitsError, RelativeL2(exactLogits, logits));
            agree += ArgMax(exactLogits) == ArgMax(logits) ? 1 : 0;
        }

        Assert.Contains(upstream.MetadataProps, m => m.Key == CutRewrites.TransferKey && m.Value.StartsWith("pool2", StringComparison.Ordinal));
        output.WriteLine($"pool2 on {cargo}: wire [1,{cargo.Shape[1]},{half},{half}], {(double)(size * size) / (half * half):F2}x fewer bytes; "
            + $"worst cut tensor rel. L2 {cutError:E2} (nearest upsampling), worst logits rel. L2 {logitsError:E2}, top-1 agreement {agree}/4");
    }

    [Fact]
    public void A_rewrite_of_a_tensor_that_is_not_the_cut_is_a_clear_input_error()
    {
        var pca = new ChannelProjection(256, 1, new float[256], new float[256], 0);
        var error = Assert.Throws<PipelineInputException>(() => CutRewrites.Pca(cut.Stages[0].Model, cut.Stages[1].Model, "nope", pca));
        Assert.Contains("no output named 'nope'", error.Message);
        var narrow = new ChannelProjection(64, 1, new float[64], new float[64], 0);
        Assert.Throws<PipelineInputException>(() => CutRewrites.Pca(cut.Stages[0].Model, cut.Stages[1].Model, cut.Cargo.Name, narrow));
        var logits = cut.Stages[1].Model.Graph.Output[0].Name;
        Assert.Throws<PipelineInputException>(() => CutRewrites.Pool2(cut.Stages[1].Model, cut.Stages[0].Model, logits));
    }

    private static float[] MaxPool2(float[] x, int channels, int size)
    {
        var half = (size + 1) / 2;
        var result = new float[channels * half * half];
        for (var c = 0; c < channels; c++)
        {
            for (var y = 0; y < half; y++)
            {
                for (var xx = 0; xx < half; xx++)
                {
                    var m = float.NegativeInfinity;
                    for (var dy = 0; dy < 2 && (2 * y) + dy < size; dy++)
                    {
                        for (var dx = 0; dx < 2 && (2 * xx) + dx < size; dx++)
                        {
                            m = Math.Max(m, x[(c * size * size) + (((2 * y) + dy) * size) + (2 * xx) + dx]);
                        }
                    }

                    result[(c * half * half) + (y * half) + xx] = m;
                }
            }
        }

        return result;
    }

    /// <summary>What the downstream Resize does: each pixel takes its 2x2 window's value.</summary>
    private static float[] NearestUp2(float[] wire, int channels, int size)
    {
        var half = (size + 1) / 2;
        var result = new float[channels * size * size];
        for (var c = 0; c < channels; c++)
        {
            for (var y = 0; y < size; y++)
            {
                for (var x = 0; x < size; x++)
                {
                    result[(c * size * size) + (y * size) + x] = wire[(c * half * half) + (y / 2 * half) + (x / 2)];
                }
            }
        }

        return result;
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

    private static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());
}
