namespace PipelineActors.Onnx.Zoo;

/// <summary>ResNet-18 and ResNet-50 (v1.5, stride in the 3x3 conv) with torchvision's module names.</summary>
internal static class ResNet
{
    /// <summary>The two depths the zoo builds.</summary>
    public enum Depth
    {
        Eighteen,
        Fifty,
    }

    // BatchNorm statistics are frozen near identity, so nothing renormalises the residual sums:
    // damping each branch's last gamma keeps activations within a few units across all blocks.
    private const float ResidualGamma = 0.3f;

    public static void Build(ZooGraphBuilder g, Depth depth)
    {
        var bottleneck = depth == Depth.Fifty;
        int[] blocks = bottleneck ? [3, 4, 6, 3] : [2, 2, 2, 2];

        var x = g.Input("input", 1, 3, 224, 224);
        // Exporters route a weight through Identity when a module is shared or traced twice; ResNet-50 carries two such weights.
        x = g.Conv("conv1", x, 64, kernel: 7, stride: 2, pad: 3, weightViaIdentity: bottleneck);
        x = g.Relu("relu", g.BatchNorm("bn1", x));
        x = g.MaxPool("maxpool", x, kernel: 3, stride: 2, pad: 1);

        for (var stage = 0; stage < blocks.Length; stage++)
        {
            var width = 64 << stage;
            for (var block = 0; block < blocks[stage]; block++)
            {
                var stride = stage > 0 && block == 0 ? 2 : 1;
                var name = $"layer{stage + 1}.{block}";
                x = bottleneck ? Bottleneck(g, name, x, width, stride) : Basic(g, name, x, width, stride);
            }
        }

        x = g.GlobalAveragePool("avgpool", x);
        x = bottleneck ? g.TorchViewFlatten("flatten", x) : g.Flatten("flatten", x);
        g.Output(g.Gemm("fc", x, 1000, weightViaIdentity: bottleneck), "logits");
    }

    private static ZooTensor Basic(ZooGraphBuilder g, string name, ZooTensor x, int width, int stride)
    {
        var y = g.Relu($"{name}.relu1", g.BatchNorm($"{name}.bn1", g.Conv($"{name}.conv1", x, width, kernel: 3, stride: stride, pad: 1)));
        y = g.BatchNorm($"{name}.bn2", g.Conv($"{name}.conv2", y, width, kernel: 3, pad: 1), ResidualGamma);
        return g.Relu($"{name}.relu2", g.Add($"{name}.add", y, Shortcut(g, name, x, width, stride)));
    }

    private static ZooTensor Bottleneck(ZooGraphBuilder g, string name, ZooTensor x, int width, int stride)
    {
        var y = g.Relu($"{name}.relu1", g.BatchNorm($"{name}.bn1", g.Conv($"{name}.conv1", x, width, kernel: 1)));
        y = g.Relu($"{name}.relu2", g.BatchNorm($"{name}.bn2", g.Conv($"{name}.conv2", y, width, kernel: 3, stride: stride, pad: 1)));
        y = g.BatchNorm($"{name}.bn3", g.Conv($"{name}.conv3", y, width * 4, kernel: 1), ResidualGamma);
        return g.Relu($"{name}.relu3", g.Add($"{name}.add", y, Shortcut(g, name, x, width * 4, stride)));
    }

    private static ZooTensor Shortcut(ZooGraphBuilder g, string name, ZooTensor x, int channels, int stride) =>
        stride == 1 && x.Channels == channels
            ? x
            : g.BatchNorm($"{name}.downsample.1", g.Conv($"{name}.downsample.0", x, channels, kernel: 1, stride: stride));
}
