using Google.Protobuf;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.TestSupport;
using static PipelineActors.Onnx.Proto.TensorProto.Types;

namespace PipelineActors.Onnx.Tests.Graph;

/// <summary>
/// Tensors whose size follows the data (after NonMaxSuppression, NonZero, a TopK with a computed k): found, declared
/// symbolic in stage models and the manifest, and carried across cuts for every size, none included.
/// </summary>
public class DataDependentSizeSpecs
{
    [Fact]
    public void Sizes_after_NonMaxSuppression_and_the_Gathers_it_feeds_depend_on_the_data_and_the_backbone_does_not()
    {
        var shapes = ModelAnalysis.Analyze(BoxCountDetector.Build()).Shapes;
        foreach (var name in (string[])[BoxCountDetector.Selected, BoxCountDetector.Kept, BoxCountDetector.KeptBoxes, BoxCountDetector.Boxes])
        {
            Assert.Equal([0], shapes[name].DataDependentAxes);
        }

        Assert.Equal([0], shapes[BoxCountDetector.Scores].DataDependentAxes);
        Assert.False(shapes[BoxCountDetector.Features].HasDataDependentSize);
        Assert.False(shapes["nms_boxes"].HasDataDependentSize);
        Assert.False(shapes["nms_scores"].HasDataDependentSize);
    }

    [Fact]
    public void NonZero_a_TopK_with_a_computed_k_and_what_follows_depend_on_the_data_and_a_Shape_Reshape_chain_does_not()
    {
        var model = NonZeroAndTopK();
        var shapes = ModelAnalysis.Analyze(model).Shapes;
        Assert.Equal([1], shapes["nonzero"].DataDependentAxes);
        Assert.Equal([0], shapes["positions"].DataDependentAxes);
        Assert.Equal([0], shapes["top_values"].DataDependentAxes);
        Assert.Equal([0], shapes["top_indices"].DataDependentAxes);
        Assert.False(shapes["k"].HasDataDependentSize);
        Assert.False(shapes["rows"].HasDataDependentSize);
        Assert.False(shapes["flat"].HasDataDependentSize);
    }

    [Fact]
    public void Stage_models_declare_data_dependent_dimensions_symbolic_and_the_others_as_numbers()
    {
        var analysis = ModelAnalysis.Analyze(BoxCountDetector.Build());
        var stages = StageExtractor.Extract(analysis, BoxCountDetector.CutPositions(analysis.Graph));
        Assert.Equal(4, stages.Count);

        var selected = Declared(stages[1].Model.Graph.Output, BoxCountDetector.Selected);
        Assert.Equal(StageExtractor.DataDependentDimension(BoxCountDetector.Selected, 0), selected[0].DimParam);
        Assert.Equal(3, selected[1].DimValue);
        Assert.Equal(selected, Declared(stages[2].Model.Graph.Input, BoxCountDetector.Selected));
        var kept = Declared(stages[3].Model.Graph.Input, BoxCountDetector.KeptBoxes);
        Assert.True(kept[0].HasDimParam);
        Assert.Equal(4, kept[1].DimValue);
        Assert.All(Declared(stages[1].Model.Graph.Input, BoxCountDetector.Features), d => Assert.True(d.HasDimValue));
    }

    [Fact]
    public void A_split_manifest_records_which_axes_depend_on_the_data()
    {
        var analysis = ModelAnalysis.Analyze(BoxCountDetector.Build());
        var stages = StageExtractor.Extract(analysis, BoxCountDetector.CutPositions(analysis.Graph));
        var folder = Directory.CreateTempSubdirectory("pa-manifest-").FullName;
        try
        {
            SplitWriter.Write(analysis, stages, folder, "detector.onnx", "flops");
            var manifest = SplitManifest.Load(folder);
            var tensors = manifest.Boundaries.SelectMany(b => b.Tensors).ToList();
            Assert.Equal([0], tensors.First(t => t.Name == BoxCountDetector.Selected).DataDependentAxes!);
            Assert.Null(tensors.First(t => t.Name == BoxCountDetector.Features).DataDependentAxes);
            Assert.Equal([0], manifest.Stages[3].Inputs.Single(t => t.Name == BoxCountDetector.KeptBoxes).ToInfo().DataDependentAxes);
            var json = File.ReadAllText(Path.Combine(folder, SplitManifest.FileName));
            Assert.DoesNotContain("dataDependentAxes\": null", json, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_detector_split_in_four_gives_the_whole_models_boxes_exactly_for_every_box_count_none_included()
    {
        var model = BoxCountDetector.Build();
        var analysis = ModelAnalysis.Analyze(model);
        var stages = StageExtractor.Extract(analysis, BoxCountDetector.CutPositions(analysis.Graph));
        var counts = AssertChainsExactly(model, stages, BoxCountDetector.Pictures()).Select(r => r[BoxCountDetector.Boxes].Info.Shape[0]).ToList();
        Assert.Contains(0, counts);
        Assert.True(counts.Distinct().Count() >= 4, $"box counts {string.Join(", ", counts)} hardly vary.");
    }

    [Fact]
    public void Every_cut_of_a_NonZero_and_TopK_graph_chains_exactly_on_inputs_with_different_counts()
    {
        var model = NonZeroAndTopK();
        var analysis = ModelAnalysis.Analyze(model);
        var inputs = new[] { 0f, 0.6f, 1f, 2f }.Select((scale, i) => Scaled(analysis.Shapes.InputSizes[0], scale, i)).ToList();
        var counts = AssertChainsExactly(model, StageExtractor.Extract(analysis, analysis.Cuts.Select(c => c.Position).ToList()), inputs)
            .Select(r => r["positions"].Info.Shape[0])
            .ToList();
        Assert.Contains(0, counts);
        Assert.True(counts.Distinct().Count() >= 3, $"counts {string.Join(", ", counts)} hardly vary.");
        foreach (var cut in analysis.Cuts)
        {
            AssertChainsExactly(model, StageExtractor.Extract(analysis, [cut.Position]), inputs);
        }
    }

    /// <summary>Runs the chain and the whole model on each input; returns the whole model's outputs.</summary>
    private static List<Dictionary<string, HostTensor>> AssertChainsExactly(
        ModelProto model, IReadOnlyList<StageModel> stages, IEnumerable<HostTensor> inputs)
    {
        using var whole = new OrtSession(model.ToByteArray());
        using var chain = new StageChain(stages);
        var results = new List<Dictionary<string, HostTensor>>();
        foreach (var input in inputs)
        {
            var feed = new Dictionary<string, HostTensor> { [input.Info.Name] = input };
            var expected = whole.Run(feed);
            var actual = chain.Run(feed);
            foreach (var (name, tensor) in expected)
            {
                Assert.Equal(tensor.Info.Shape, actual[name].Info.Shape);
                Assert.Equal(tensor.Data, actual[name].Data);
            }

            results.Add(expected);
        }

        return results;
    }

    private static TensorShapeProto.Types.Dimension[] Declared(IEnumerable<ValueInfoProto> values, string name) =>
        values.Single(v => v.Name == name).Type.TensorType.Shape.Dim.ToArray();

    private static HostTensor Scaled(Onnx.Graph.TensorInfo info, float scale, int seed)
    {
        var random = new Random(seed);
        var values = Enumerable.Range(0, (int)info.ElementCount).Select(_ => scale * random.NextSingle()).ToArray();
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return new HostTensor(info, bytes);
    }

    /// <summary>
    /// x -> NonZero of (x > 0.7) -> Transpose (positions, [count, 4]); a TopK of x whose k is the number of values over
    /// 0.7; and a Reshape whose shape comes from Shape -> Gather -> Concat, fixed for a fixed input size.
    /// </summary>
    private static ModelProto NonZeroAndTopK()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 2, 4, 4);
        g.Node("Relu", ["x"], ["r"]);
        g.Node("Greater", ["r", g.FloatScalar(0.7f)], ["mask"]);
        g.Node("NonZero", ["mask"], ["nonzero"]);
        g.Node("Transpose", ["nonzero"], ["positions"], OnnxBuilder.Ints("perm", 1, 0));
        g.Node("Cast", ["mask"], ["mask_i"], OnnxBuilder.Scalar("to", (long)DataType.Int64));
        g.Node("ReduceSum", ["mask_i"], ["count"], OnnxBuilder.Scalar("keepdims", 0));
        g.Node("Reshape", ["count", g.Int64s(1)], ["k"]);
        g.Node("Reshape", ["r", g.Int64s(32)], ["values"]);
        g.Node("TopK", ["values", "k"], ["top_values", "top_indices"]);
        g.Node("Shape", ["r"], ["shape"]);
        g.Node("Gather", ["shape", g.Int64s(0)], ["batch"], OnnxBuilder.Scalar("axis", 0));
        g.Node("Concat", ["batch", g.Int64s(-1)], ["rows"], OnnxBuilder.Scalar("axis", 0));
        g.Node("Reshape", ["r", "rows"], ["flat"]);
        g.Output("positions", DataType.Int64).Output("top_values").Output("top_indices", DataType.Int64).Output("flat");
        return g.Model;
    }
}
