namespace PipelineActors.Onnx.Zoo;

/// <summary>A small FPN detector whose two outputs finish at different depths of the graph.</summary>
/// <remarks>
/// The top-down path upsamples once with Resize and once with ConvTranspose so that cut finders meet
/// both. <c>boxes_coarse</c> is computed from the stride-16 level before the path descends further,
/// so one graph output is complete while <c>heatmap</c> (stride 4) still needs most of the work.
/// </remarks>
internal static class FpnDetector
{
    private const int PyramidChannels = 64;
    private const int HeatmapClasses = 8;

    public static void Build(ZooGraphBuilder g)
    {
        var x = g.Input("input", 1, 3, 256, 256);
        x = ConvBnRelu(g, "backbone.stem", x, 32, stride: 2);
        var c2 = ConvBnRelu(g, "backbone.c2", x, 32, stride: 2);
        var c3 = ConvBnRelu(g, "backbone.c3.1", ConvBnRelu(g, "backbone.c3.0", c2, 64, stride: 2), 64, stride: 1);
        var c4 = ConvBnRelu(g, "backbone.c4.1", ConvBnRelu(g, "backbone.c4.0", c3, 128, stride: 2), 128, stride: 1);
        var c5 = ConvBnRelu(g, "backbone.c5.1", ConvBnRelu(g, "backbone.c5.0", c4, 256, stride: 2), 256, stride: 1);

        var p5 = g.Conv("fpn.lateral5", c5, PyramidChannels, kernel: 1, bias: true);
        var p4 = g.Add("fpn.p4", g.Conv("fpn.lateral4", c4, PyramidChannels, kernel: 1, bias: true), g.ResizeNearest("fpn.up5", p5, 2));
        g.Output(Head(g, "head_coarse", p4, 4), "boxes_coarse");

        var p3 = g.Add("fpn.p3", g.Conv("fpn.lateral3", c3, PyramidChannels, kernel: 1, bias: true),
            g.ConvTranspose("fpn.up4", p4, PyramidChannels, kernel: 2, stride: 2));
        var p2 = g.Add("fpn.p2", g.Conv("fpn.lateral2", c2, PyramidChannels, kernel: 1, bias: true), g.ResizeNearest("fpn.up3", p3, 2));
        g.Output(Head(g, "head_heatmap", p2, HeatmapClasses), "heatmap");
    }

    private static ZooTensor Head(ZooGraphBuilder g, string name, ZooTensor x, int outChannels)
    {
        var y = g.Relu($"{name}.relu", g.Conv($"{name}.conv", x, PyramidChannels, kernel: 3, pad: 1, bias: true));
        return g.Conv($"{name}.predict", y, outChannels, kernel: 1, bias: true);
    }

    private static ZooTensor ConvBnRelu(ZooGraphBuilder g, string name, ZooTensor x, int channels, int stride) =>
        g.Relu($"{name}.relu", g.BatchNorm($"{name}.bn", g.Conv($"{name}.conv", x, channels, kernel: 3, stride: stride, pad: 1)));
}
