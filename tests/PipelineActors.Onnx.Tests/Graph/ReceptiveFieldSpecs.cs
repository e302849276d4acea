using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Zoo;
using PipelineActors.TestSupport;
using static PipelineActors.Onnx.Proto.TensorProto.Types;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Graph;

/// <summary>
/// Receptive fields checked against ONNX Runtime rather than against the formula: for a band of
/// rows of a target tensor, input rows outside the computed range must leave the band
/// bit-identical, and the range's first and last rows must each change it.
/// </summary>
public class ReceptiveFieldSpecs(ITestOutputHelper output)
{
    [Fact]
    public void A_chain_of_convolutions_and_poolings_with_stride_and_dilation_needs_exactly_the_computed_rows()
    {
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 3, 40, 40);
        var c1 = m.Unary("Relu", m.Conv("x", 3, 4, kernel: 3, stride: 1, pad: 1));
        var c2 = m.Conv(c1, 4, 6, kernel: 3, stride: 2, pad: 1);
        var pool = m.Pool("MaxPool", c2, kernel: 2, stride: 2);
        var dilated = m.Unary("Relu", m.Conv(pool, 6, 6, kernel: 5, stride: 1, pad: 2, dilation: 2));
        var average = m.Pool("AveragePool", dilated, kernel: 3, stride: 1, pad: 1);
        var last = m.Conv(average, 6, 4, kernel: 3, stride: 2);
        var model = m.Build(last);

        foreach (var target in new[] { c2, pool, dilated, average, last })
        {
            AssertBandsMatchRuntime(model, target);
        }
    }

    [Fact]
    public void A_residual_block_needs_the_union_of_both_paths()
    {
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 4, 24, 16);
        var main = m.Conv(m.Unary("Relu", m.Conv("x", 4, 4, kernel: 3, pad: 1)), 4, 4, kernel: 3, pad: 1);
        var shortcut = m.Conv("x", 4, 4, kernel: 1);
        var joined = m.Unary("Relu", m.Binary("Add", main, shortcut));
        var down = m.Conv(m.Unary("Relu", m.Conv(joined, 4, 8, kernel: 3, stride: 2, pad: 1)), 8, 8, kernel: 3, pad: 1);
        var downShortcut = m.Conv(joined, 4, 8, kernel: 1, stride: 2);
        var last = m.Binary("Add", down, downShortcut);
        var model = m.Build(last);

        AssertBandsMatchRuntime(model, joined);
        AssertBandsMatchRuntime(model, last);
    }

    [Fact]
    public void A_transposed_convolution_k4_s2_p1_needs_exactly_the_computed_rows()
    {
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 3, 12, 10);
        var features = m.Unary("Relu", m.Conv("x", 3, 4, kernel: 3, pad: 1));
        var up = m.ConvTranspose(features, 4, 3, kernel: 4, stride: 2, pad: 1);
        var last = m.Conv(up, 3, 3, kernel: 3, pad: 1);
        var model = m.Build(last);

        AssertBandsMatchRuntime(model, up);
        AssertBandsMatchRuntime(model, last);
    }

    [Theory]
    [InlineData("nearest", "half_pixel", "round_prefer_floor")]
    [InlineData("nearest", "asymmetric", "floor")]
    [InlineData("nearest", "align_corners", "round_prefer_ceil")]
    [InlineData("linear", "half_pixel", null)]
    [InlineData("linear", "align_corners", null)]
    public void A_resize_by_two_needs_exactly_the_rows_it_samples(string mode, string coordinates, string? nearestMode)
    {
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 3, 11, 9);
        var features = m.Unary("Relu", m.Conv("x", 3, 4, kernel: 3, pad: 1));
        var up = m.Resize(features, 2f, mode, coordinates, nearestMode);
        var last = m.Conv(up, 4, 3, kernel: 3, pad: 1);
        var model = m.Build(last);

        AssertBandsMatchRuntime(model, up);
        AssertBandsMatchRuntime(model, last);
    }

    [Fact]
    public void A_transpose_from_nhwc_at_the_input_maps_rows_to_the_inputs_height_axis()
    {
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 20, 16, 3);
        var nchw = m.Transpose("x", 0, 3, 1, 2);
        var c1 = m.Unary("Relu", m.Conv(nchw, 3, 4, kernel: 3, stride: 2, pad: 1));
        var last = m.Conv(c1, 4, 4, kernel: 3, pad: 1);
        var model = m.Build(last);

        var analysis = ModelAnalysis.Analyze(model);
        Assert.Equal(1, ReceptiveField.InputRows(analysis.Graph, analysis.Shapes, last, 3, 3, "x")!.Value.Axis);
        AssertBandsMatchRuntime(model, last);
    }

    [Fact]
    public void Auto_pad_same_upper_and_same_lower_put_the_odd_padding_row_where_onnx_runtime_does()
    {
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 3, 21, 17);
        var c1 = m.Unary("Relu", m.Conv("x", 3, 4, kernel: 3, stride: 2, autoPad: "SAME_UPPER"));
        var c2 = m.Conv(c1, 4, 4, kernel: 4, stride: 1, autoPad: "SAME_UPPER");
        var c3 = m.Conv(m.Unary("Relu", c2), 4, 4, kernel: 4, stride: 2, autoPad: "SAME_LOWER");
        var model = m.Build(c3);

        AssertBandsMatchRuntime(model, c1);
        AssertBandsMatchRuntime(model, c2);
        AssertBandsMatchRuntime(model, c3);
    }

    [Fact]
    public void Global_pooling_or_a_gemm_on_the_path_makes_the_answer_all_rows()
    {
        // squeeze-and-excitation: a global average pool's result scales every row
        var m = new OnnxBuilder(seed: 5).Input("x", DataType.Float, 1, 4, 16, 16);
        var features = m.Unary("Relu", m.Conv("x", 4, 4, kernel: 3, pad: 1));
        var squeezed = m.Unary("GlobalAveragePool", features);
        var excited = m.Binary("Mul", features, m.Unary("Sigmoid", m.Conv(squeezed, 4, 4, kernel: 1)));
        var after = m.Conv(excited, 4, 4, kernel: 3, pad: 1);

        // a fully connected layer whose result is reshaped back into a feature map
        var flat = m.Op("Flatten", [features], [OnnxBuilder.Scalar("axis", 1)]);
        var dense = m.Op("Gemm", [flat, m.Weight(256, 4 * 16 * 16)], [OnnxBuilder.Scalar("transB", 1)]);
        var map = m.Op("Reshape", [dense, m.Int64s(1, 1, 16, 16)], []);
        var mapConv = m.Conv(map, 1, 2, kernel: 3, pad: 1);
        var model = m.Build(after, mapConv);

        var analysis = ModelAnalysis.Analyze(model);
        Assert.NotNull(ReceptiveField.InputRows(analysis.Graph, analysis.Shapes, features, 5, 6, "x"));
        Assert.Null(ReceptiveField.InputRows(analysis.Graph, analysis.Shapes, after, 5, 6, "x"));
        Assert.Null(ReceptiveField.InputRows(analysis.Graph, analysis.Shapes, squeezed, 0, 0, "x"));
        Assert.Null(ReceptiveField.InputRows(analysis.Graph, analysis.Shapes, mapConv, 5, 6, "x"));
        Assert.Null(ReceptiveField.RowsOfInputPerRow(analysis.Graph, analysis.Shapes, dense));

        var tiny = ModelAnalysis.Analyze(ModelZoo.Build("tinynet"));
        Assert.Null(ReceptiveField.RowsOfInputPerRow(tiny.Graph, tiny.Shapes, "logits"));
        Assert.All(tiny.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4 && c.Cargo[0].Shape[2] == 1),
            c => Assert.Null(c.ReceptiveRows));
    }

    [Theory]
    [InlineData("resnet18")]
    [InlineData("mobilenetv2")]
    public void Zoo_cut_tensors_have_receptive_fields_that_onnx_runtime_confirms(string name)
    {
        var model = ModelZoo.Build(name);
        var analysis = ModelAnalysis.Analyze(model);
        var spatial = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4 && c.Cargo[0].Shape[2] > 1).ToList();
        Assert.NotEmpty(spatial);
        Assert.All(spatial, c => Assert.True(c.ReceptiveRows > 0, $"{name} cut {c.Position} ({c.Cargo[0]}) has receptive rows {c.ReceptiveRows}."));

        // a few cuts early, middle and late, where a band still leaves input rows outside its field
        var picked = new[] { 0, spatial.Count / 4, spatial.Count / 2, spatial.Count - 1 }.Select(i => spatial[i]).Distinct();
        foreach (var cut in picked)
        {
            output.WriteLine($"{name} cut {cut.Position}: {cut.Cargo[0]}, {cut.ReceptiveRows} input rows per row");
            AssertBandsMatchRuntime(model, cut.Cargo[0].Name, analysis);
        }
    }

    private void AssertBandsMatchRuntime(ModelProto model, string target, ModelAnalysis? analysis = null)
    {
        analysis ??= ModelAnalysis.Analyze(model);
        var input = analysis.Shapes.InputSizes[0];
        using var probe = new ReceptiveFieldProbe(model, input, target);
        var rows = probe.TargetRows;
        var middle = rows / 2;
        var bands = new (long First, long Last)[] { (0, 0), (0, 1), (1, 1), (middle, middle), (middle, middle + 1), (rows - 2, rows - 1),
            (rows - 1, rows - 1), (0, rows - 1) }
            .Select(b => (Math.Clamp(b.First, 0, rows - 1), Math.Clamp(b.Last, 0, rows - 1)))
            .Distinct();
        foreach (var (first, last) in bands)
        {
            var range = ReceptiveField.InputRows(analysis.Graph, analysis.Shapes, target, first, last, input.Name);
            Assert.True(range is not null, $"{target} rows {first}..{last}: no receptive field.");
            output.WriteLine($"{target} rows {first}..{last} of {rows} <- input rows {range.Value.First}..{range.Value.Last} of "
                + $"{probe.InputRows(range.Value.Axis)}");
            probe.AssertExact(range.Value, first, last);
        }
    }
}
