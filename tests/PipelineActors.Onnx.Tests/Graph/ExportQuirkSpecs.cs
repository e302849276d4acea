using Google.Protobuf;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;
using PipelineActors.TestSupport;
using static PipelineActors.Onnx.Proto.TensorProto.Types;

namespace PipelineActors.Onnx.Tests.Graph;

/// <summary>
/// What real exports contain, each in a small hand-written graph: every cut must still chain to
/// the whole model's outputs, and what cannot be supported is refused in one sentence.
/// </summary>
public class ExportQuirkSpecs
{
    private static void AssertEveryCutChains(ModelProto model, IReadOnlyDictionary<string, long[]>? sizes = null, double tolerance = 1e-6)
    {
        var analysis = ModelAnalysis.Analyze(ModelProto.Parser.ParseFrom(model.ToByteArray()), sizes);
        Assert.NotEmpty(analysis.Cuts);
        var verifier = new SplitVerifier(analysis);
        foreach (var cut in analysis.Cuts)
        {
            var difference = verifier.Check(StageExtractor.Extract(analysis, [cut.Position]));
            Assert.True(difference <= tolerance, $"cut {cut.Position} after {cut.AfterNode}: {difference:E2}");
        }

        if (analysis.Cuts.Count >= 2)
        {
            var all = StageExtractor.Extract(analysis, analysis.Cuts.Select(c => c.Position).ToList());
            Assert.True(verifier.Check(all) <= tolerance, "every cut at once");
        }
    }

    [Fact]
    public void Two_inputs_and_an_output_finished_early_are_carried_to_the_last_stage()
    {
        var g = new OnnxBuilder()
            .Input("image", DataType.Float, 1, 3, 8, 8)
            .Input("mask", DataType.Uint8, 1, 1, 8, 8);
        g.Conv("image", 3, 4, kernel: 3, pad: 1, output: "c1");
        g.Node("Relu", ["c1"], ["r1"]);
        g.Node("GlobalAveragePool", ["r1"], ["early"]); // a head finished early
        g.Conv("r1", 4, 4, kernel: 3, pad: 1, output: "c2");
        g.Node("Cast", ["mask"], ["maskf"], OnnxBuilder.Scalar("to", (long)DataType.Float)); // second input read late
        g.Node("Mul", ["c2", "maskf"], ["late"]);
        g.Output("early").Output("late");

        var analysis = ModelAnalysis.Analyze(g.Model);
        var afterEarly = analysis.Cuts.First(c => c.Cargo.Any(t => t.Name == "early"));
        Assert.Contains(afterEarly.Cargo, t => t.Name == "early");
        Assert.Contains(analysis.Cuts, c => c.Cargo.Any(t => t.Name == "mask" && t.ElementType == DataType.Uint8));
        var last = StageExtractor.Extract(analysis, [analysis.Cuts[^1].Position])[^1];
        Assert.Equal(["early", "late"], last.Emits.Select(t => t.Name).Order());
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void Int64_bool_and_float16_tensors_cross_cuts()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 2, 4, 4);
        g.Node("Shape", ["x"], ["shape"]); // int64 per-frame tensor (Shape -> ... -> Reshape)
        g.Node("Relu", ["x"], ["r"]);
        g.Node("Cast", ["r"], ["half"], OnnxBuilder.Scalar("to", (long)DataType.Float16));
        g.Node("Sigmoid", ["half"], ["half_s"]);
        g.Node("Cast", ["half_s"], ["back"], OnnxBuilder.Scalar("to", (long)DataType.Float));
        g.Graph.Initializer.Add(g.RandomTensor("threshold", [1], 0.1f));
        g.Node("Greater", ["back", "threshold"], ["flag"]); // bool per-frame tensor
        g.Node("Neg", ["back"], ["neg"]);
        g.Node("Where", ["flag", "back", "neg"], ["w"]);
        g.Node("Reshape", ["w", "shape"], ["y"]);
        g.Output("y");

        var analysis = ModelAnalysis.Analyze(g.Model);
        var carried = analysis.Cuts.SelectMany(c => c.Cargo).Select(t => t.ElementType).ToHashSet();
        Assert.Contains(DataType.Int64, carried);
        Assert.Contains(DataType.Bool, carried);
        Assert.Contains(DataType.Float16, carried);

        // ONNX Runtime has no float16 Sigmoid on CPU: in the whole model it computes it in float32
        // and drops the Cast pair around it, skipping a rounding to float16 that a stage receiving a
        // float16 tensor must do. So a cut there differs by float16 rounding (~5e-5), not more.
        AssertEveryCutChains(g.Model, tolerance: 1e-3);
    }

    [Fact]
    public void Weights_in_Constant_nodes_and_Identity_Cast_chains_on_weights_are_constants_copied_into_each_stage()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 3, 6, 6);
        var w = g.RandomTensor("w_value", [3, 3, 3, 3]);
        g.Node("Constant", [], ["w_const"], OnnxBuilder.Tensor("value", w)); // Paddle style
        g.Node("Identity", ["w_const"], ["w_id"]); // exporter noise on a weight
        g.Node("Cast", ["w_id"], ["w"], OnnxBuilder.Scalar("to", (long)DataType.Float));
        g.Node("Conv", ["x", "w"], ["c1"], OnnxBuilder.Ints("pads", 1, 1, 1, 1));
        g.Node("Relu", ["c1"], ["r1"]);
        g.Node("Conv", ["r1", "w"], ["c2"], OnnxBuilder.Ints("pads", 1, 1, 1, 1)); // the same weight in a later stage
        g.Output("c2");

        var analysis = ModelAnalysis.Analyze(g.Model);
        Assert.Equal(3, analysis.NodeCount); // Constant, Identity and Cast on weights are not per-frame work
        Assert.Equal(3, analysis.Graph.ConstantNodes.Count);
        var stages = StageExtractor.Extract(analysis, [2]);
        Assert.All(stages, s => Assert.Contains(s.Model.Graph.Node, n => n.OpType == "Constant"));
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void Initializers_listed_as_graph_inputs_in_IR_3_are_weights_and_stages_stay_loadable()
    {
        var g = new OnnxBuilder(opset: 8).Input("x", DataType.Float, 1, 3, 6, 6);
        g.Model.IrVersion = 3;
        g.Conv("x", 3, 3, kernel: 3, pad: 1, output: "c1");
        g.Node("Relu", ["c1"], ["r1"]);
        g.Conv("r1", 3, 3, kernel: 3, pad: 1, output: "c2");
        foreach (var init in g.Graph.Initializer)
        {
            g.Graph.Input.Add(OnnxBuilder.ValueInfo(init.Name, DataType.Float, init.Dims.ToArray()));
        }

        g.Output("c2");
        var analysis = ModelAnalysis.Analyze(g.Model);
        Assert.Single(analysis.Graph.Inputs);
        Assert.Equal("x", analysis.Graph.Inputs[0].Name);
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void Empty_optional_inputs_and_opset_13_attribute_inputs_are_handled()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 2, 4, 4);
        g.Graph.Initializer.Add(g.RandomTensor("hi", [], 0.2f));
        g.Node("Clip", ["x", "", "hi"], ["clipped"]); // no min: an empty optional input
        g.Graph.Initializer.Add(g.RandomTensor("scales_value", [4]));
        g.Graph.Initializer[^1].ClearRawData();
        g.Graph.Initializer[^1].FloatData.AddRange([1f, 1f, 2f, 2f]);
        g.Node("Resize", ["clipped", "", "scales_value"], ["up"],
            new AttributeProto { Name = "mode", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8("nearest") });
        g.Graph.Initializer.Add(OnnxBuilder.Int64Tensor("axes", [2, 3], 2));
        g.Node("ReduceSum", ["up", "axes"], ["y"]); // opset 13 moved axes to an input
        g.Output("y");
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void Operators_from_the_com_microsoft_domain_are_kept_with_their_opset_import()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 4, 4, 4);
        g.Model.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });
        g.Conv("x", 4, 4, kernel: 3, pad: 1, output: "c1");
        g.Node("Gelu", ["c1"], ["gelu"]).Domain = "com.microsoft";
        g.Conv("gelu", 4, 4, kernel: 3, pad: 1, output: "c2");
        g.Output("c2");
        var analysis = ModelAnalysis.Analyze(g.Model);
        var stages = StageExtractor.Extract(analysis, [1, 2]);
        Assert.Contains(stages[1].Model.OpsetImport, o => o.Domain == "com.microsoft");
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void A_node_with_a_subgraph_that_reads_outer_tensors_is_never_cut_inside_and_moves_with_its_inputs()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 2, 4, 4);
        g.Conv("x", 2, 2, kernel: 3, pad: 1, output: "c1");
        g.Node("Relu", ["c1"], ["outer"]);
        g.Node("ReduceMean", ["outer"], ["mean"], OnnxBuilder.Scalar("keepdims", 0));
        g.Graph.Initializer.Add(g.RandomTensor("zero", [], 0f));
        g.Node("Greater", ["mean", "zero"], ["cond"]);
        var thenBranch = new GraphProto { Name = "then" };
        thenBranch.Node.Add(new NodeProto { OpType = "Sigmoid", Input = { "outer" }, Output = { "then_out" } }); // reads an outer tensor
        thenBranch.Output.Add(new ValueInfoProto { Name = "then_out",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        var elseBranch = new GraphProto { Name = "else" };
        elseBranch.Node.Add(new NodeProto { OpType = "Neg", Input = { "outer" }, Output = { "else_out" } });
        elseBranch.Output.Add(new ValueInfoProto { Name = "else_out",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        g.Node("If", ["cond"], ["branch"], OnnxBuilder.Subgraph("then_branch", thenBranch), OnnxBuilder.Subgraph("else_branch", elseBranch));
        g.Conv("branch", 2, 2, kernel: 3, pad: 1, output: "y");
        g.Output("y");

        var analysis = ModelAnalysis.Analyze(g.Model);
        var ifNode = analysis.Graph.Order.Single(n => n.OpType == "If");
        Assert.Contains("outer", ifNode.Inputs);
        var beforeIf = analysis.CutAt(analysis.Graph.Order.ToList().IndexOf(ifNode));
        Assert.Contains(beforeIf.Cargo, t => t.Name == "outer"); // the outer-scope read crosses the cut
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void Model_local_functions_travel_with_every_stage()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 2, 4, 4);
        g.Model.OpsetImport.Add(new OperatorSetIdProto { Domain = "local", Version = 1 });
        var function = new FunctionProto { Name = "DoubleRelu", Domain = "local", Input = { "a" }, Output = { "b" } };
        function.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 13 });
        function.Node.Add(new NodeProto { OpType = "Relu", Input = { "a" }, Output = { "t" } });
        function.Node.Add(new NodeProto { OpType = "Add", Input = { "t", "t" }, Output = { "b" } });
        g.Model.Functions.Add(function);
        g.Conv("x", 2, 2, kernel: 3, pad: 1, output: "c1");
        g.Node("DoubleRelu", ["c1"], ["f1"]).Domain = "local";
        g.Conv("f1", 2, 2, kernel: 3, pad: 1, output: "c2");
        g.Node("DoubleRelu", ["c2"], ["y"]).Domain = "local";
        g.Output("y");
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void Nodes_listed_out_of_topological_order_are_sorted()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 2, 4, 4);
        g.Conv("x", 2, 2, kernel: 3, pad: 1, output: "c1");
        g.Node("Relu", ["c1"], ["r1"]);
        g.Conv("r1", 2, 2, kernel: 3, pad: 1, output: "y");
        g.Output("y");
        var reversed = g.Graph.Node.Reverse().ToList();
        g.Graph.Node.Clear();
        g.Graph.Node.AddRange(reversed);
        AssertEveryCutChains(g.Model);
    }

    [Fact]
    public void Weights_in_external_data_files_are_refused_in_one_sentence()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, 1, 2, 4, 4);
        g.Conv("x", 2, 2, kernel: 3, pad: 1, output: "y");
        g.Output("y");
        var weight = g.Graph.Initializer[0];
        weight.ClearRawData();
        weight.DataLocation = DataLocation.External;
        weight.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
        var error = Assert.Throws<PipelineInputException>(() => OnnxModelFile.Parse(g.Model.ToByteArray(), "m.onnx"));
        Assert.Contains("external data", error.Message);
    }

    [Fact]
    public void A_dynamic_input_without_a_size_asks_for_one_and_a_given_size_is_used()
    {
        var g = new OnnxBuilder().Input("x", DataType.Float, -1, 3, -1, -1);
        g.Conv("x", 3, 3, kernel: 3, pad: 1, output: "c1");
        g.Node("Relu", ["c1"], ["y"]);
        g.Output("y");
        var error = Assert.Throws<PipelineInputException>(() => ModelAnalysis.Analyze(g.Model));
        Assert.Contains("--input x=", error.Message);
        var sizes = Onnx.Graph.InputSizes.ParseOverrides(["x=1,3,20,12"]);
        var analysis = ModelAnalysis.Analyze(g.Model, sizes);
        Assert.Equal([1L, 3, 20, 12], analysis.Shapes["y"].Shape);
        AssertEveryCutChains(g.Model, sizes);
    }
}
