namespace PipelineActors.Onnx.Zoo;

/// <summary>GoogLeNet (Inception v1) in torchvision's layout: BatchNorm after every conv, no auxiliary heads.</summary>
/// <remarks>
/// Channel counts are the paper's Table 1. Like torchvision (whose 6.62M parameters this matches), the
/// "5x5" branch uses a 3x3 kernel; the paper's 5x5 would add 0.38M parameters.
/// </remarks>
internal static class GoogLeNet
{
    private const float BatchNormEpsilon = 1e-3f;

    public static void Build(ZooGraphBuilder g)
    {
        var x = g.Input("input", 1, 3, 224, 224);
        x = BasicConv(g, "conv1", x, 64, kernel: 7, stride: 2, pad: 3);
        x = g.MaxPool("maxpool1", x, kernel: 3, stride: 2, ceilMode: true);
        x = BasicConv(g, "conv2", x, 64, kernel: 1);
        x = BasicConv(g, "conv3", x, 192, kernel: 3, pad: 1);
        x = g.MaxPool("maxpool2", x, kernel: 3, stride: 2, ceilMode: true);

        x = Inception(g, "inception3a", x, 64, 96, 128, 16, 32, 32);
        x = Inception(g, "inception3b", x, 128, 128, 192, 32, 96, 64);
        x = g.MaxPool("maxpool3", x, kernel: 3, stride: 2, ceilMode: true);

        x = Inception(g, "inception4a", x, 192, 96, 208, 16, 48, 64);
        x = Inception(g, "inception4b", x, 160, 112, 224, 24, 64, 64);
        x = Inception(g, "inception4c", x, 128, 128, 256, 24, 64, 64);
        x = Inception(g, "inception4d", x, 112, 144, 288, 32, 64, 64);
        x = Inception(g, "inception4e", x, 256, 160, 320, 32, 128, 128);
        x = g.MaxPool("maxpool4", x, kernel: 2, stride: 2, ceilMode: true);

        x = Inception(g, "inception5a", x, 256, 160, 320, 32, 128, 128);
        x = Inception(g, "inception5b", x, 384, 192, 384, 48, 128, 128);

        x = g.GlobalAveragePool("avgpool", x);
        x = g.Flatten("flatten", x);
        g.Output(g.Gemm("fc", x, 1000), "logits");
    }

    private static ZooTensor Inception(ZooGraphBuilder g, string name, ZooTensor x, int ch1x1, int ch3x3Reduce, int ch3x3, int ch5x5Reduce,
        int ch5x5, int poolProjection)
    {
        var branch1 = BasicConv(g, $"{name}.branch1", x, ch1x1, kernel: 1);
        var branch2 = BasicConv(g, $"{name}.branch2.1", BasicConv(g, $"{name}.branch2.0", x, ch3x3Reduce, kernel: 1), ch3x3, kernel: 3, pad: 1);
        var branch3 = BasicConv(g, $"{name}.branch3.1", BasicConv(g, $"{name}.branch3.0", x, ch5x5Reduce, kernel: 1), ch5x5, kernel: 3, pad: 1);
        var pooled = g.MaxPool($"{name}.branch4.0", x, kernel: 3, stride: 1, pad: 1, ceilMode: true);
        var branch4 = BasicConv(g, $"{name}.branch4.1", pooled, poolProjection, kernel: 1);
        return g.Concat($"{name}.concat", branch1, branch2, branch3, branch4);
    }

    private static ZooTensor BasicConv(ZooGraphBuilder g, string name, ZooTensor x, int channels, int kernel, int stride = 1, int pad = 0)
    {
        var y = g.Conv($"{name}.conv", x, channels, kernel, stride, pad);
        return g.Relu($"{name}.relu", g.BatchNorm($"{name}.bn", y, epsilon: BatchNormEpsilon));
    }
}
