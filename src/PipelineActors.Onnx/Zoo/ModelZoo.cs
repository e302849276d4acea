using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Zoo;

/// <summary>Architecture-faithful ONNX CNNs with seeded random weights, for testing cuts without downloading models.</summary>
public static class ModelZoo
{
    private sealed record Entry(string Description, Action<ZooGraphBuilder> Build);

    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal)
    {
        ["vgg16"] = new("VGG-16: 13 3x3 convs with ReLU and 5 max pools, then the 25088-4096-4096-1000 FC head; 138.36M parameters.", Vgg.Build16),
        ["resnet18"] = new("ResNet-18: basic residual blocks [2,2,2,2] with BatchNorm and 1x1 downsample shortcuts; 11.69M parameters.",
            g => ResNet.Build(g, ResNet.Depth.Eighteen)),
        ["resnet50"] = new("ResNet-50 (v1.5): bottleneck blocks [3,4,6,3], BatchNorm, torch-style view flatten before the FC; 25.56M "
            + "parameters.", g => ResNet.Build(g, ResNet.Depth.Fifty)),
        ["mobilenetv2"] = new("MobileNetV2: inverted residuals with depthwise convs (group = channels), ReLU6 as Clip, torch-style view "
            + "flatten; 3.50M parameters.", MobileNetV2.Build),
        ["googlenet"] = new("GoogLeNet (Inception v1, torchvision layout with BatchNorm, no aux heads): nine 4-branch inception modules "
            + "joined by Concat; 6.62M parameters.", GoogLeNet.Build),
        ["squeezenet"] = new("SqueezeNet 1.1: fire modules (1x1 squeeze, 1x1 and 3x3 expand joined by Concat), conv classifier then "
            + "global pool; 1.24M parameters.", SqueezeNet.Build),
        ["fpn-detector"] = new("Small FPN detector on 256x256: conv backbone at strides 4-32, top-down path with Resize and "
            + "ConvTranspose, outputs boxes_coarse (stride 16) and heatmap (stride 4).", FpnDetector.Build),
        ["tinynet"] = new("Tiny conv net on 32x32 (under 1 MFLOP) with one residual Add and one Concat, for fast tests.", TinyNet.Build),
    };

    /// <summary>Lower-case names of the models the zoo can build.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Entries.Keys];

    /// <summary>One line on the model's architecture.</summary>
    public static string Describe(string name) => Find(name).Description;

    /// <summary>Builds the named model with weights drawn from <paramref name="seed"/>; the same seed gives a byte-identical model.</summary>
    public static ModelProto Build(string name, int seed = 1)
    {
        var entry = Find(name);
        var builder = new ZooGraphBuilder(name, seed);
        entry.Build(builder);
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "pipelineactors-zoo",
            Graph = builder.Graph,
            DocString = entry.Description,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "pipelineactors.zoo", Value = name });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "pipelineactors.weights", Value = "random (seeded, not trained)" });
        return model;
    }

    private static Entry Find(string name) =>
        name is not null && Entries.TryGetValue(name, out var entry)
            ? entry
            : throw new ArgumentException($"There is no zoo model named '{name}'; use one of: {string.Join(", ", Entries.Keys)}.", nameof(name));
}
