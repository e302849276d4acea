using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Zoo;

/// <summary>Builds each zoo model once (seed 1) and keeps it, with its bytes, for every test in the class.</summary>
public sealed class ZooModelCache
{
    private readonly ConcurrentDictionary<string, Lazy<BuiltModel>> _models = new(StringComparer.Ordinal);

    public BuiltModel Get(string name) => _models.GetOrAdd(name, n => new Lazy<BuiltModel>(() =>
    {
        var watch = Stopwatch.StartNew();
        var model = ModelZoo.Build(n);
        var buildTime = watch.Elapsed;
        return new BuiltModel(model, model.ToByteArray(), buildTime);
    })).Value;
}

public sealed record BuiltModel(ModelProto Model, byte[] Bytes, TimeSpan BuildTime);

public class ModelZooSpecs(ZooModelCache cache, ITestOutputHelper output) : IClassFixture<ZooModelCache>
{
    public static TheoryData<string> AllNames => [.. ModelZoo.Names];

    // torchvision's parameter counts (trainable parameters: BatchNorm running statistics excluded).
    public static TheoryData<string, long> KnownParameterCounts => new()
    {
        { "vgg16", 138_357_544 },
        { "resnet18", 11_689_512 },
        { "resnet50", 25_557_032 },
        { "mobilenetv2", 3_504_872 },
        { "googlenet", 6_624_904 },
        { "squeezenet", 1_235_496 },
    };

    [Fact]
    public void Names_are_the_eight_documented_models()
    {
        Assert.Equal(["vgg16", "resnet18", "resnet50", "mobilenetv2", "googlenet", "squeezenet", "fpn-detector", "tinynet"], ModelZoo.Names);
        Assert.All(ModelZoo.Names, n => Assert.False(string.IsNullOrWhiteSpace(ModelZoo.Describe(n))));
    }

    [Fact]
    public void An_unknown_name_is_rejected_with_a_sentence_listing_the_valid_names()
    {
        var error = Assert.Throws<ArgumentException>(() => ModelZoo.Build("resnet51"));
        Assert.Contains("'resnet51'", error.Message, StringComparison.Ordinal);
        Assert.All(ModelZoo.Names, n => Assert.Contains(n, error.Message, StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => ModelZoo.Describe("nope"));
    }

    [Theory]
    [MemberData(nameof(AllNames))]
    public void Each_model_runs_in_onnx_runtime_with_finite_outputs_that_depend_on_the_input(string name)
    {
        var built = cache.Get(name);
        output.WriteLine($"{name}: built in {built.BuildTime.TotalMilliseconds:F0} ms, {built.Bytes.Length / 1e6:F1} MB, "
            + $"{ParameterCount(built.Model) / 1e6:F3}M parameters");

        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpNumThreads = 1,
            InterOpNumThreads = 1 };
        using var session = new InferenceSession(built.Bytes, options);
        var watch = Stopwatch.StartNew();
        var first = Run(session, built.Model, inputSeed: 11);
        output.WriteLine($"{name}: one inference in {watch.Elapsed.TotalMilliseconds:F0} ms");
        var second = Run(session, built.Model, inputSeed: 12);

        foreach (var (outputName, values) in first)
        {
            var maxAbs = values.Max(MathF.Abs);
            output.WriteLine($"{name}: {outputName} max |y| = {maxAbs:G4}");
            Assert.All(values, v => Assert.True(float.IsFinite(v), $"{name}: {outputName} has a non-finite value."));
            Assert.True(maxAbs > 1e-3f, $"{name}: {outputName} is all but zero (max |y| = {maxAbs}).");
            Assert.True(maxAbs < 1e4f, $"{name}: {outputName} is huge (max |y| = {maxAbs}).");
            var change = values.Zip(second[outputName], (a, b) => MathF.Abs(a - b)).Max();
            Assert.True(change > 1e-4f * maxAbs, $"{name}: {outputName} does not change with the input.");
        }
    }

    [Theory]
    [MemberData(nameof(KnownParameterCounts))]
    public void Parameter_count_matches_the_published_architecture(string name, long expected)
    {
        var count = ParameterCount(cache.Get(name).Model);
        output.WriteLine($"{name}: {count} parameters, torchvision {expected}, difference {count - expected}");
        Assert.InRange(count, expected * 0.98, expected * 1.02);
    }

    [Theory]
    [MemberData(nameof(AllNames))]
    public void The_graph_is_well_formed_with_unique_names_and_zoo_metadata(string name)
    {
        var model = cache.Get(name).Model;
        Assert.Equal(8, model.IrVersion);
        Assert.Equal("pipelineactors-zoo", model.ProducerName);
        Assert.Equal(13, Assert.Single(model.OpsetImport, o => o.Domain.Length == 0).Version);
        Assert.Contains(model.MetadataProps, p => p.Key == "pipelineactors.zoo" && p.Value == name);
        Assert.Contains(model.MetadataProps, p => p.Key == "pipelineactors.weights" && p.Value == "random (seeded, not trained)");

        var graph = model.Graph;
        var input = Assert.Single(graph.Input);
        Assert.Equal("input", input.Name);
        long side = name switch { "tinynet" => 32, "fpn-detector" => 256, _ => 224 };
        Assert.Equal([1L, 3, side, side], input.Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        if (name != "fpn-detector")
        {
            var logits = Assert.Single(graph.Output);
            Assert.Equal("logits", logits.Name);
            Assert.Equal([1L, 1000], logits.Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        }

        var nodeNames = graph.Node.Select(n => n.Name).ToList();
        Assert.Equal(nodeNames.Count, nodeNames.Distinct().Count());
        Assert.All(nodeNames, n => Assert.False(string.IsNullOrEmpty(n)));
        var produced = graph.Node.SelectMany(n => n.Output).Concat(graph.Initializer.Select(i => i.Name)).Concat(graph.Input.Select(i => i.Name))
            .ToList();
        Assert.Equal(produced.Count, produced.Distinct().Count());
        var known = produced.ToHashSet();
        Assert.All(graph.Node.SelectMany(n => n.Input).Where(i => i.Length > 0), i => Assert.Contains(i, known));
    }

    [Theory]
    [InlineData("tinynet")]
    [InlineData("resnet18")]
    [InlineData("mobilenetv2")]
    [InlineData("fpn-detector")]
    [InlineData("vgg16")]
    public void The_same_seed_gives_a_byte_identical_model_and_another_seed_other_weights(string name)
    {
        var built = cache.Get(name);
        var again = ModelZoo.Build(name, seed: 1).ToByteArray();
        Assert.True(built.Bytes.AsSpan().SequenceEqual(again), $"{name}: two builds with seed 1 differ.");
        again = null;

        var other = ModelZoo.Build(name, seed: 2);
        var weights = built.Model.Graph.Initializer.Where(i => !i.RawData.IsEmpty).ToDictionary(i => i.Name);
        var otherWeights = other.Graph.Initializer.Where(i => !i.RawData.IsEmpty).ToList();
        Assert.Equal(weights.Count, otherWeights.Count);
        Assert.All(otherWeights, w => Assert.False(w.RawData.Span.SequenceEqual(weights[w.Name].RawData.Span),
            $"{name}: {w.Name} is the same under seeds 1 and 2."));
    }

    [Theory]
    [InlineData("resnet50")]
    [InlineData("mobilenetv2")]
    public void Torch_exported_models_flatten_through_shape_arithmetic_and_route_a_weight_through_identity(string name)
    {
        var graph = cache.Get(name).Model.Graph;
        var producer = graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        var reshape = Assert.Single(graph.Node, n => n.OpType == "Reshape");
        var concat = producer[reshape.Input[1]];
        Assert.Equal("Concat", concat.OpType);
        var unsqueeze = producer[concat.Input[0]];
        Assert.Equal("Unsqueeze", unsqueeze.OpType);
        var gather = producer[unsqueeze.Input[0]];
        Assert.Equal("Gather", gather.OpType);
        Assert.Equal("Shape", producer[gather.Input[0]].OpType);

        var initializers = graph.Initializer.Select(i => i.Name).ToHashSet();
        Assert.Contains(graph.Node, n => n.OpType == "Identity" && initializers.Contains(n.Input[0]));
    }

    [Fact]
    public void Mobilenetv2_depthwise_convs_have_one_group_per_channel()
    {
        var graph = cache.Get("mobilenetv2").Model.Graph;
        var shapes = graph.ValueInfo.Concat(graph.Input).Where(v => v.Type.TensorType.Shape.Dim.Count == 4).ToDictionary(v => v.Name,
            v => v.Type.TensorType.Shape.Dim[1].DimValue);
        var depthwise = graph.Node.Where(n => n.OpType == "Conv" && n.Attribute.Single(a => a.Name == "group").I > 1).ToList();
        Assert.Equal(17, depthwise.Count);
        Assert.All(depthwise, n => Assert.Equal(shapes[n.Input[0]], n.Attribute.Single(a => a.Name == "group").I));
    }

    [Fact]
    public void Fpn_detector_finishes_boxes_coarse_before_the_top_down_path_reaches_the_heatmap()
    {
        var graph = cache.Get("fpn-detector").Model.Graph;
        Assert.Equal(["boxes_coarse", "heatmap"], graph.Output.Select(o => o.Name));
        var coarse = Ancestors(graph, "boxes_coarse");
        var heatmap = Ancestors(graph, "heatmap");
        Assert.DoesNotContain(coarse, n => n.OpType == "ConvTranspose");
        Assert.Contains(coarse, n => n.OpType == "Resize");
        Assert.Contains(heatmap, n => n.OpType == "ConvTranspose");
        Assert.Equal(2, heatmap.Count(n => n.OpType == "Resize"));
        Assert.True(heatmap.Count > coarse.Count + 5);
    }

    private static HashSet<NodeProto> Ancestors(GraphProto graph, string tensor)
    {
        var producer = graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        var found = new HashSet<NodeProto>();
        var pending = new Stack<string>([tensor]);
        while (pending.TryPop(out var name))
        {
            if (producer.TryGetValue(name, out var node) && found.Add(node))
            {
                foreach (var input in node.Input)
                {
                    pending.Push(input);
                }
            }
        }

        return found;
    }

    /// <summary>Elements of float initializers that are learned: BatchNorm running statistics and op constants (Clip bounds, Resize scales)
    /// are not.</summary>
    private static long ParameterCount(ModelProto model)
    {
        var graph = model.Graph;
        var notLearned = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            if (node.OpType == "BatchNormalization")
            {
                notLearned.Add(node.Input[3]);
                notLearned.Add(node.Input[4]);
            }
            else if (node.OpType is "Clip" or "Resize")
            {
                notLearned.UnionWith(node.Input.Skip(1));
            }
        }

        return graph.Initializer
            .Where(i => i.DataType == (int)TensorProto.Types.DataType.Float && !notLearned.Contains(i.Name))
            .Sum(i => i.Dims.Aggregate(1L, (a, b) => a * b));
    }

    private static Dictionary<string, float[]> Run(InferenceSession session, ModelProto model, int inputSeed)
    {
        var shape = model.Graph.Input[0].Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
        var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
        var random = new Random(inputSeed);
        for (var i = 0; i < data.Length; i++)
        {
            // Box-Muller: standard normal pixels, like a normalised image.
            data[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        }

        var outputNames = model.Graph.Output.Select(o => o.Name).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["input"], [input], outputNames);
        var outputs = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (var i = 0; i < outputNames.Length; i++)
        {
            var declared = model.Graph.Output[i].Type.TensorType.Shape.Dim.Select(d => d.DimValue);
            Assert.Equal(declared, results[i].GetTensorTypeAndShape().Shape);
            outputs[outputNames[i]] = results[i].GetTensorDataAsSpan<float>().ToArray();
        }

        return outputs;
    }
}
