namespace PipelineActors.Onnx.Zoo;

/// <summary>SqueezeNet 1.1 with torchvision's module names.</summary>
/// <remarks>Faithful to the architecture, its classifier is a 1x1 conv to 1000 channels then a global pool, not a Gemm.</remarks>
internal static class SqueezeNet
{
    public static void Build(ZooGraphBuilder g)
    {
        var x = g.Input("input", 1, 3, 224, 224);
        x = g.Relu("features.1", g.Conv("features.0", x, 64, kernel: 3, stride: 2, bias: true));
        x = g.MaxPool("features.2", x, kernel: 3, stride: 2, ceilMode: true);
        x = Fire(g, "features.3", x, 16, 64);
        x = Fire(g, "features.4", x, 16, 64);
        x = g.MaxPool("features.5", x, kernel: 3, stride: 2, ceilMode: true);
        x = Fire(g, "features.6", x, 32, 128);
        x = Fire(g, "features.7", x, 32, 128);
        x = g.MaxPool("features.8", x, kernel: 3, stride: 2, ceilMode: true);
        x = Fire(g, "features.9", x, 48, 192);
        x = Fire(g, "features.10", x, 48, 192);
        x = Fire(g, "features.11", x, 64, 256);
        x = Fire(g, "features.12", x, 64, 256);

        x = g.Relu("classifier.2", g.Conv("classifier.1", x, 1000, kernel: 1, bias: true));
        x = g.GlobalAveragePool("classifier.3", x);
        g.Output(g.Flatten("flatten", x), "logits");
    }

    private static ZooTensor Fire(ZooGraphBuilder g, string name, ZooTensor x, int squeeze, int expand)
    {
        var s = g.Relu($"{name}.squeeze_activation", g.Conv($"{name}.squeeze", x, squeeze, kernel: 1, bias: true));
        var e1 = g.Relu($"{name}.expand1x1_activation", g.Conv($"{name}.expand1x1", s, expand, kernel: 1, bias: true));
        var e3 = g.Relu($"{name}.expand3x3_activation", g.Conv($"{name}.expand3x3", s, expand, kernel: 3, pad: 1, bias: true));
        return g.Concat($"{name}.concat", e1, e3);
    }
}
