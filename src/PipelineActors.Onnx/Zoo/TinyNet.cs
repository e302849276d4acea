namespace PipelineActors.Onnx.Zoo;

/// <summary>A tiny conv net (about 0.8 MFLOP on 32x32) with one residual Add and one Concat, for fast tests.</summary>
internal static class TinyNet
{
    public static void Build(ZooGraphBuilder g)
    {
        var x = g.Input("input", 1, 3, 32, 32);
        var stem = g.Relu("stem.relu", g.BatchNorm("stem.bn", g.Conv("stem.conv", x, 8, kernel: 3, stride: 2, pad: 1)));
        var y = g.Relu("block.relu1", g.Conv("block.conv1", stem, 8, kernel: 3, pad: 1, bias: true));
        y = g.Conv("block.conv2", y, 8, kernel: 3, pad: 1, bias: true);
        y = g.Relu("block.relu2", g.Add("block.add", stem, y));
        y = g.MaxPool("pool", y, kernel: 2, stride: 2);
        var narrow = g.Conv("mix.branch1x1", y, 8, kernel: 1, bias: true);
        var wide = g.Conv("mix.branch3x3", y, 8, kernel: 3, pad: 1, bias: true);
        y = g.Relu("mix.relu", g.Concat("mix.concat", narrow, wide));
        y = g.Flatten("flatten", g.GlobalAveragePool("avgpool", y));
        g.Output(g.Gemm("fc", y, 1000), "logits");
    }
}
