using System.Globalization;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Graph;

/// <summary>
/// The concrete shape of every graph input for one analysis: the model's own static dimensions,
/// with dynamic ones filled from the user's <c>NAME=1,3,224,224</c> overrides (a dynamic batch
/// defaults to 1).
/// </summary>
public static class InputSizes
{
    /// <summary>Parses overrides such as <c>x=1,3,640,640</c>.</summary>
    public static IReadOnlyDictionary<string, long[]> ParseOverrides(IEnumerable<string> specs)
    {
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            var eq = spec.LastIndexOf('=');
            if (eq <= 0 || eq == spec.Length - 1)
            {
                throw new PipelineInputException($"Input size '{spec}' is not of the form NAME=1,3,224,224.");
            }

            var dims = spec[(eq + 1)..].Split(',', 'x');
            var shape = new long[dims.Length];
            for (var i = 0; i < dims.Length; i++)
            {
                if (!long.TryParse(dims[i].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]) || shape[i] <= 0)
                {
                    throw new PipelineInputException($"Input size '{spec}' has '{dims[i]}' where a positive whole number belongs.");
                }
            }

            result[spec[..eq]] = shape;
        }

        return result;
    }

    /// <summary>Resolves every graph input's shape; a size that does not fit the model is one clear error.</summary>
    public static IReadOnlyList<TensorInfo> Resolve(ModelGraph graph, IReadOnlyDictionary<string, long[]>? overrides = null)
    {
        overrides ??= new Dictionary<string, long[]>();
        foreach (var name in overrides.Keys)
        {
            if (!graph.IsInput(name))
            {
                throw new PipelineInputException(
                    $"The model has no input named '{name}'; its inputs are {string.Join(", ", graph.Inputs.Select(i => Describe(i)))}.");
            }
        }

        var result = new List<TensorInfo>();
        foreach (var input in graph.Inputs)
        {
            var tensorType = input.Type?.TensorType
                ?? throw new PipelineInputException($"Model input '{input.Name}' is not a tensor; PipelineActors streams tensors only.");
            var elementType = (TensorProto.Types.DataType)tensorType.ElemType;
            var declared = tensorType.Shape?.Dim.ToList();
            if (overrides.TryGetValue(input.Name, out var given))
            {
                if (declared is not null && declared.Count != given.Length)
                {
                    throw new PipelineInputException(
                        $"Input size {input.Name}={string.Join(",", given)} does not fit the model, whose input is {Describe(input)}.");
                }

                for (var i = 0; declared is not null && i < declared.Count; i++)
                {
                    if (declared[i].HasDimValue && declared[i].DimValue > 0 && declared[i].DimValue != given[i])
                    {
                        throw new PipelineInputException(
                            $"Input size {input.Name}={string.Join(",", given)} does not fit the model, whose input is {Describe(input)}.");
                    }
                }

                result.Add(new TensorInfo(input.Name, elementType, given));
                continue;
            }

            if (declared is null)
            {
                throw new PipelineInputException($"Model input '{input.Name}' has no declared shape; give one with --input "
                    + $"{input.Name}=1,3,224,224.");
            }

            var shape = new long[declared.Count];
            for (var i = 0; i < declared.Count; i++)
            {
                if (declared[i].HasDimValue && declared[i].DimValue > 0)
                {
                    shape[i] = declared[i].DimValue;
                }
                else if (i == 0)
                {
                    shape[i] = 1; // a dynamic batch: one frame at a time
                }
                else
                {
                    throw new PipelineInputException(
                        $"Model input {Describe(input)} has a dynamic dimension; give its size with --input {input.Name}={SuggestSize(declared)}.");
                }
            }

            result.Add(new TensorInfo(input.Name, elementType, shape));
        }

        return result;
    }

    public static string Describe(ValueInfoProto input)
    {
        var dims = input.Type?.TensorType?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString(CultureInfo.InvariantCulture)
            : (d.HasDimParam ? d.DimParam : "?"));
        return dims is null ? input.Name : $"{input.Name}[{string.Join(",", dims)}]";
    }

    private static string SuggestSize(List<TensorShapeProto.Types.Dimension> declared) =>
        string.Join(",", declared.Select((d, i) => d.HasDimValue && d.DimValue > 0 ? d.DimValue
            : (i == 0 ? 1 : (declared.Count == 4 && i == 1 ? 3 : 640))));
}
