namespace PipelineActors.Onnx.Zoo;

/// <summary>MobileNetV2 (width 1.0) with torchvision's module names.</summary>
internal static class MobileNetV2
{
    // (expansion t, output channels c, repeats n, first stride s) from the paper's Table 2.
    private static readonly (int T, int C, int N, int S)[] InvertedResidualSettings =
    [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ];

    // As in ResNet: frozen BN statistics cannot renormalise residual sums, so the projection is damped.
    private const float ResidualGamma = 0.3f;

    public static void Build(ZooGraphBuilder g)
    {
        var x = g.Input("input", 1, 3, 224, 224);
        x = ConvBnRelu6(g, "features.0", x, 32, kernel: 3, stride: 2, group: 1);
        var index = 1;
        foreach (var (t, c, n, s) in InvertedResidualSettings)
        {
            for (var repeat = 0; repeat < n; repeat++)
            {
                x = InvertedResidual(g, $"features.{index++}", x, c, repeat == 0 ? s : 1, t);
            }
        }

        x = ConvBnRelu6(g, $"features.{index}", x, 1280, kernel: 1, stride: 1, group: 1);
        x = g.GlobalAveragePool("avgpool", x);
        x = g.TorchViewFlatten("flatten", x);
        g.Output(g.Gemm("classifier.1", x, 1000), "logits");
    }

    private static ZooTensor InvertedResidual(ZooGraphBuilder g, string name, ZooTensor x, int outChannels, int stride, int expansion)
    {
        var hidden = x.Channels * expansion;
        var y = x;
        var layer = 0;
        if (expansion != 1)
        {
            y = ConvBnRelu6(g, $"{name}.conv.{layer++}", y, hidden, kernel: 1, stride: 1, group: 1);
        }

        // Depthwise: one 3x3 filter per channel.
        y = ConvBnRelu6(g, $"{name}.conv.{layer++}", y, hidden, kernel: 3, stride: stride, group: hidden);
        var residual = stride == 1 && x.Channels == outChannels;
        // Linear bottleneck: the projection has BatchNorm but no activation. The first block's weight goes
        // through Identity, as exporters emit for shared or re-traced weights.
        y = g.Conv($"{name}.conv.{layer}", y, outChannels, kernel: 1, weightViaIdentity: name == "features.1");
        y = g.BatchNorm($"{name}.conv.{layer + 1}", y, residual ? ResidualGamma : 1f);
        return residual ? g.Add($"{name}.add", x, y) : y;
    }

    private static ZooTensor ConvBnRelu6(ZooGraphBuilder g, string name, ZooTensor x, int channels, int kernel, int stride, int group)
    {
        var y = g.Conv($"{name}.0", x, channels, kernel, stride, pad: (kernel - 1) / 2, group: group);
        return g.Relu6($"{name}.2", g.BatchNorm($"{name}.1", y));
    }
}
