using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Stages;

namespace PipelineActors.Onnx.Tests.Stages;

/// <summary>
/// A stage file of a model with dynamic sizes declares its inputs dynamic or without a shape, so it also records the shape
/// the split was made for, which the stage warms up on; a model with static sizes needs and gets no such record.
/// </summary>
public class StageInputShapeSpecs
{
    [Theory]
    [InlineData("paddleocr-text-det.onnx", "x=1,3,160,160")]
    [InlineData("paddleocr-textdir-cls.onnx", "x=1,3,48,192")]
    public void Every_input_a_stage_of_a_dynamic_model_declares_without_a_fixed_shape_records_the_prepared_shape(string file, string sizes)
    {
        var analysis = ModelAnalysis.Analyze(OnnxModelFile.Load(Path.Combine(TestModels.ModelsFolder, file)), TestModels.Sizes(sizes));
        var stages = StageExtractor.Extract(analysis, Balancer.Balance(analysis, 3));

        var recorded = 0;
        foreach (var stage in stages)
        {
            var metadata = stage.Model.MetadataProps.ToDictionary(m => m.Key, m => m.Value);
            foreach (var input in stage.Model.Graph.Input.Where(i => stage.Inputs.Any(t => t.Name == i.Name)))
            {
                var dims = input.Type.TensorType.Shape?.Dim;
                var fixedShape = dims is not null && dims.All(d => d.HasDimValue && d.DimValue > 0);
                var key = StageExtractor.InputShapeKeyPrefix + input.Name;
                Assert.Equal(!fixedShape, metadata.ContainsKey(key));
                if (!fixedShape)
                {
                    Assert.Equal(string.Join(",", analysis.Shapes[input.Name].Shape), metadata[key]);
                    recorded++;
                }
            }
        }

        Assert.True(recorded >= stages.Count, $"{recorded} recorded shapes for {stages.Count} stages"); // every stage has one
    }

    [Fact]
    public void A_model_with_static_sizes_records_no_prepared_shape()
    {
        var analysis = ModelAnalysis.Analyze(OnnxModelFile.Load(Path.Combine(TestModels.ModelsFolder, "blazeface-back-256.onnx")));
        var stages = StageExtractor.Extract(analysis, Balancer.Balance(analysis, 3));

        Assert.All(stages, s => Assert.DoesNotContain(
            s.Model.MetadataProps, m => m.Key.StartsWith(StageExtractor.InputShapeKeyPrefix, StringComparison.Ordinal)));
    }
}
