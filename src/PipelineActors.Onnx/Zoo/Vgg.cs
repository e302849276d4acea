namespace PipelineActors.Onnx.Zoo;

/// <summary>VGG-16 (configuration D) with torchvision's module names.</summary>
internal static class Vgg
{
    // Output channels of each 3x3 conv; 0 marks a 2x2 max pool.
    private static readonly int[] Configuration16 = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

    public static void Build16(ZooGraphBuilder g)
    {
        var x = g.Input("input", 1, 3, 224, 224);
        var index = 0;
        foreach (var channels in Configuration16)
        {
            if (channels == 0)
            {
                x = g.MaxPool($"features.{index++}", x, kernel: 2, stride: 2);
                continue;
            }

            x = g.Conv($"features.{index++}", x, channels, kernel: 3, pad: 1, bias: true);
            x = g.Relu($"features.{index++}", x);
        }

        // torchvision's AdaptiveAvgPool2d(7) is the identity on 7x7 maps and Dropout vanishes at inference.
        x = g.Flatten("flatten", x);
        x = g.Relu("classifier.1", g.Gemm("classifier.0", x, 4096));
        x = g.Relu("classifier.4", g.Gemm("classifier.3", x, 4096));
        g.Output(g.Gemm("classifier.6", x, 1000), "logits");
    }
}
