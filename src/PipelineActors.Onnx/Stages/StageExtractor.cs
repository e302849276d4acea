using System.Globalization;
using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Stages;

/// <summary>
/// Writes one standalone ONNX model per stage for a list of cut positions. Boundary tensors keep
/// the source model's names; constants (weights and what is computed from them alone) are
/// copied, or recomputed by copies of their Constant nodes, into every stage that uses them.
/// </summary>
public static class StageExtractor
{
    public const string StageIndexKey = "pipelineactors.stage";
    public const string SourceShaKey = "pipelineactors.source_sha256";

    /// <summary>
    /// Metadata key prefix (then the input's name) for the concrete shape the split was made for, written for every
    /// stage input the file declares with a dynamic or no shape: a stage warms up on it before its first frame.
    /// </summary>
    public const string InputShapeKeyPrefix = "pipelineactors.input_shape:";

    public static IReadOnlyList<StageModel> Extract(ModelAnalysis analysis, IReadOnlyList<int> cutPositions)
    {
        var positions = cutPositions.ToList();
        for (var i = 0; i < positions.Count; i++)
        {
            analysis.CutAt(positions[i]);
            if (i > 0 && positions[i] <= positions[i - 1])
            {
                throw new PipelineInputException($"Cut positions must increase; {positions[i]} follows {positions[i - 1]}.");
            }
        }

        var bounds = new List<int> { 0 };
        bounds.AddRange(positions);
        bounds.Add(analysis.NodeCount);
        var stages = new List<StageModel>();
        for (var s = 0; s + 1 < bounds.Count; s++)
        {
            stages.Add(ExtractStage(analysis, s, bounds[s], bounds[s + 1], bounds.Count - 1));
        }

        return stages;
    }

    /// <summary>One standalone model for the per-frame nodes [from, to), for profiling a segment.</summary>
    public static StageModel ExtractRange(ModelAnalysis analysis, int from, int to) => ExtractStage(analysis, 0, from, to, 1);

    private static StageModel ExtractStage(ModelAnalysis analysis, int index, int from, int to, int stageCount)
    {
        var graph = analysis.Graph;
        var source = graph.Model;
        var nodes = graph.Order.Skip(from).Take(to - from).ToList();
        var produced = nodes.SelectMany(n => n.Outputs).ToHashSet(StringComparer.Ordinal);
        var graphOutputs = graph.OutputNames.ToHashSet(StringComparer.Ordinal);

        var arriving = from == 0 ? graph.Inputs.Select(i => i.Name).ToList() : analysis.CargoNames(from).ToList();
        var leaving = to == analysis.NodeCount ? graph.OutputNames.ToList() : analysis.CargoNames(to).ToList();

        var consumed = nodes.SelectMany(n => n.Inputs)
            .Where(t => !graph.ConstantTensors.Contains(t) && !produced.Contains(t))
            .ToHashSet(StringComparer.Ordinal);
        var inputs = arriving.Where(consumed.Contains).ToList();
        var outputs = leaving.Where(produced.Contains).ToList();
        var forwarded = leaving.Where(t => !produced.Contains(t)).ToList();

        var missing = consumed.Where(t => !arriving.Contains(t)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"Stage {index} reads {string.Join(", ", missing)}, which no earlier stage carries.");
        }

        var stageGraph = new GraphProto
        {
            Name = $"{(string.IsNullOrEmpty(source.Graph.Name) ? "model" : source.Graph.Name)}_stage{index:D2}",
            DocString = $"Stage {index} of {stageCount}: per-frame nodes {from}..{to - 1} of the source model.",
        };

        var (constantNodes, initializers, sparse) = ConstantClosure(graph, nodes);
        stageGraph.Node.AddRange(constantNodes.Select(n => n.Clone()));
        stageGraph.Node.AddRange(nodes.Select(n => n.Proto.Clone()));
        stageGraph.Initializer.AddRange(initializers);
        stageGraph.SparseInitializer.AddRange(sparse);

        var staticShapes = graph.Inputs.All(i => i.Type?.TensorType?.Shape?.Dim.All(d => d.HasDimValue && d.DimValue > 0) == true);
        foreach (var name in inputs)
        {
            stageGraph.Input.Add(graph.Model.Graph.Input.FirstOrDefault(i => i.Name == name)?.Clone()
                ?? ValueInfo(analysis.Shapes[name], staticShapes));
        }

        if (source.IrVersion < 4)
        {
            // IR < 4 requires every initializer to be listed as a graph input as well.
            foreach (var init in initializers)
            {
                stageGraph.Input.Add(source.Graph.Input.FirstOrDefault(i => i.Name == init.Name)?.Clone()
                    ?? ValueInfo(new TensorInfo(init.Name, (TensorProto.Types.DataType)init.DataType, init.Dims.ToArray()), true));
            }
        }

        foreach (var name in outputs)
        {
            stageGraph.Output.Add(graphOutputs.Contains(name)
                ? source.Graph.Output.First(o => o.Name == name).Clone()
                : ValueInfo(analysis.Shapes[name], staticShapes));
        }

        var inStage = produced.Except(outputs).ToHashSet(StringComparer.Ordinal);
        stageGraph.ValueInfo.AddRange(source.Graph.ValueInfo.Where(v => inStage.Contains(v.Name)).Select(v => v.Clone()));
        stageGraph.QuantizationAnnotation.AddRange(source.Graph.QuantizationAnnotation
            .Where(q => produced.Contains(q.TensorName) || inputs.Contains(q.TensorName) || initializers.Any(i => i.Name == q.TensorName))
            .Select(q => q.Clone()));

        var model = new ModelProto
        {
            IrVersion = source.IrVersion,
            ProducerName = string.IsNullOrEmpty(source.ProducerName) ? "pipelineactors" : source.ProducerName,
            ProducerVersion = source.ProducerVersion,
            Domain = source.Domain,
            ModelVersion = source.ModelVersion,
            DocString = source.DocString,
            Graph = stageGraph,
        };
        model.OpsetImport.AddRange(source.OpsetImport.Select(o => o.Clone()));
        model.Functions.AddRange(source.Functions.Select(f => f.Clone()));
        model.MetadataProps.AddRange(source.MetadataProps.Select(m => m.Clone()));
        model.MetadataProps.Add(new StringStringEntryProto { Key = StageIndexKey, Value = $"{index}/{stageCount}" });
        if (analysis.SourceSha256 is not null)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = SourceShaKey, Value = analysis.SourceSha256 });
        }

        foreach (var input in stageGraph.Input.Where(i => inputs.Contains(i.Name) && !IsStatic(i)))
        {
            var shape = string.Join(",", analysis.Shapes[input.Name].Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
            model.MetadataProps.Add(new StringStringEntryProto { Key = InputShapeKeyPrefix + input.Name, Value = shape });
        }

        var parameterBytes = CostModel.ParameterBytes(initializers)
            + CostModel.ParameterBytes(constantNodes.SelectMany(n => n.Attribute).Where(a => a.T is not null).Select(a => a.T));
        return new StageModel(
            index,
            from,
            to,
            model,
            inputs.Select(n => analysis.Shapes[n]).ToList(),
            outputs.Select(n => analysis.Shapes[n]).ToList(),
            forwarded.Select(n => analysis.Shapes[n]).ToList(),
            analysis.FlopsBetween(from, to),
            parameterBytes);
    }

    /// <summary>The Constant-derived nodes and initializers a set of per-frame nodes needs, in topological order.</summary>
    private static (List<NodeProto> Nodes, List<TensorProto> Initializers, List<SparseTensorProto> Sparse) ConstantClosure(
        ModelGraph graph, List<ComputeNode> nodes)
    {
        var neededNodes = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var neededTensors = new HashSet<string>(StringComparer.Ordinal);
        var work = new Stack<string>(nodes.SelectMany(n => n.Inputs).Where(graph.ConstantTensors.Contains));
        while (work.Count > 0)
        {
            var tensor = work.Pop();
            if (!neededTensors.Add(tensor))
            {
                continue;
            }

            if (graph.ConstantProducer(tensor) is { } producer && neededNodes.Add(producer))
            {
                foreach (var input in ModelGraph.EffectiveInputs(producer))
                {
                    work.Push(input);
                }
            }
        }

        var source = graph.Model.Graph;
        return (
            graph.ConstantNodes.Where(neededNodes.Contains).ToList(),
            source.Initializer.Where(i => neededTensors.Contains(i.Name)).Select(i => i.Clone()).ToList(),
            source.SparseInitializer.Where(s => s.Values is not null && neededTensors.Contains(s.Values.Name)).Select(s => s.Clone()).ToList());
    }

    /// <summary>
    /// The symbolic name a stage model gives a data-dependent axis: one per tensor and axis, since ONNX Runtime takes
    /// equal names to mean equal sizes.
    /// </summary>
    public static string DataDependentDimension(string tensor, int axis) => $"{tensor}.{axis}";

    private static bool IsStatic(ValueInfoProto input) =>
        input.Type?.TensorType?.Shape is { } shape && shape.Dim.All(d => d.HasDimValue && d.DimValue > 0);

    private static ValueInfoProto ValueInfo(TensorInfo info, bool withShape)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = (int)info.ElementType };
        if (withShape)
        {
            tensorType.Shape = new TensorShapeProto();
            tensorType.Shape.Dim.AddRange(info.Shape.Select((d, axis) => info.DataDependentAxes.Contains(axis)
                ? new TensorShapeProto.Types.Dimension { DimParam = DataDependentDimension(info.Name, axis) }
                : new TensorShapeProto.Types.Dimension { DimValue = d }));
        }

        return new ValueInfoProto { Name = info.Name, Type = new TypeProto { TensorType = tensorType } };
    }
}
