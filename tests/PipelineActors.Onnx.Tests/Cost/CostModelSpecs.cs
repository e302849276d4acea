using PipelineActors.Onnx.Cost;
using PipelineActors.TestSupport;
using static PipelineActors.Onnx.Proto.TensorProto.Types;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Cost;

public class CostModelSpecs(ITestOutputHelper output)
{
    /// <summary>
    /// torchvision's published "GFLOPS" at 224x224 (the model docs' table: resnet50 4.09, resnet18 1.81,
    /// vgg16 15.47, mobilenet_v2 0.30, squeezenet1_1 0.35, googlenet 1.50). Despite the name they count
    /// multiply-accumulates of convolutions and linear layers (one per MAC), not BatchNorm, ReLU, pooling
    /// or Add, which is what TotalMacs counts (Conv, ConvTranspose, Gemm, MatMul). Counters that also add
    /// BatchNorm and activations (ptflops, mmcls) print about 1% more, e.g. 4.12 for ResNet-50.
    /// </summary>
    public static TheoryData<string, double> PublishedGigaMacs => new()
    {
        { "resnet50", 4.09 },
        { "resnet18", 1.82 },
        { "vgg16", 15.47 },
        { "mobilenetv2", 0.30 },
        { "squeezenet", 0.35 },
        { "googlenet", 1.50 },
    };

    [Theory]
    [MemberData(nameof(PublishedGigaMacs))]
    public void Total_macs_of_a_zoo_model_match_the_published_figure_within_three_percent(string name, double published)
    {
        var analysis = ModelAnalysis.Analyze(ModelZoo.Build(name));
        var giga = analysis.TotalMacs / 1e9;
        output.WriteLine($"{name}: {giga:F3} GMACs (published {published}), {analysis.TotalFlops / 1e9:F3} GFLOPs");
        Assert.InRange(giga, published * 0.97, published * 1.03);
    }

    [Fact]
    public void Grouped_depthwise_transposed_gemm_matmul_and_pooling_nodes_cost_what_their_shapes_say()
    {
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 8, 10, 12);
        var grouped = m.Conv("x", 8, 16, kernel: 3, pad: 1, group: 4);              // [1,16,10,12]
        var depthwise = m.Conv(grouped, 16, 16, kernel: 3, stride: 2, pad: 1, group: 16); // [1,16,5,6]
        var transposed = m.ConvTranspose(depthwise, 16, 4, kernel: 4, stride: 2, pad: 1); // [1,4,10,12]
        var pooled = m.Pool("MaxPool", depthwise, kernel: 2, stride: 2);                  // [1,16,2,3]
        var global = m.Unary("GlobalAveragePool", grouped);                               // [1,16,1,1]
        var flat = m.Op("Flatten", [global], [OnnxBuilder.Scalar("axis", 1)]);       // [1,16]
        var columns = m.Transpose(flat, 1, 0);                                            // [16,1]
        var gemm = m.Op("Gemm", [columns, m.Weight(16, 5)], [OnnxBuilder.Scalar("transA", 1)]); // [1,5]
        var matmul = m.Binary("MatMul", grouped, m.Weight(12, 7));                        // [1,16,10,7]
        var batched = m.Binary("MatMul", grouped, m.Transpose(grouped, 0, 1, 3, 2));      // [1,16,10,10]
        var analysis = ModelAnalysis.Analyze(m.Build(transposed, pooled, gemm, matmul, batched));

        NodeCost Of(string tensor) => CostModel.Of(analysis.Graph.Order.Single(n => n.Outputs.Contains(tensor)).Proto, analysis.Shapes);

        // out elements x in channels per group x kernel; plus one add per output for the bias
        Assert.Equal(new NodeCost((2 * 1920 * 2 * 9) + 1920, 1920 * 2 * 9), Of(grouped));
        Assert.Equal(new NodeCost((2 * 480 * 9) + 480, 480 * 9), Of(depthwise));

        // every input element scatters into out channels x kernel outputs
        Assert.Equal(new NodeCost(2 * 480 * 4 * 16, 480 * 4 * 16), Of(transposed));

        // transA: K is A's first dimension (16), not its second (1)
        Assert.Equal(new NodeCost(2 * 5 * 16, 5 * 16), Of(gemm));

        // out elements x the shared dimension, batch dimensions included
        Assert.Equal(new NodeCost(2 * 1120 * 12, 1120 * 12), Of(matmul));
        Assert.Equal(new NodeCost(2 * 1600 * 12, 1600 * 12), Of(batched));

        // pooling: one operation per window element; global pooling one per input element; no MACs
        Assert.Equal(new NodeCost(96 * 4, 0), Of(pooled));
        Assert.Equal(new NodeCost(1920, 0), Of(global));
        Assert.Equal(default, Of(flat));
        Assert.Equal(default, Of(columns));
    }
}
