using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Graph;

/// <summary>A named tensor with its element type and concrete shape for one input size.</summary>
public sealed record TensorInfo(string Name, TensorProto.Types.DataType ElementType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * Math.Max(d, 0));

    /// <summary>Bytes per frame; sub-byte types round up, strings count as unknown (0).</summary>
    public long Bytes => (ElementCount * ElementTypes.BitsOf(ElementType) + 7) / 8;

    public string ShapeText => "[" + string.Join(",", Shape) + "]";

    public string TypeName => ElementTypes.NameOf(ElementType);

    public override string ToString() => $"{Name}:{TypeName}{ShapeText}";

    public bool Equals(TensorInfo? other) =>
        other is not null && Name == other.Name && ElementType == other.ElementType && Shape.SequenceEqual(other.Shape);

    public override int GetHashCode() => HashCode.Combine(Name, ElementType, Shape.Length);
}

/// <summary>Facts about ONNX element types (TensorProto.DataType, which ONNX Runtime numbers the same way).</summary>
public static class ElementTypes
{
    public static int BitsOf(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => 32,
        TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Bool => 8,
        TensorProto.Types.DataType.Uint16 or TensorProto.Types.DataType.Int16 => 16,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 => 16,
        TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 32,
        TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64 or TensorProto.Types.DataType.Double => 64,
        TensorProto.Types.DataType.Complex64 => 64,
        TensorProto.Types.DataType.Complex128 => 128,
        TensorProto.Types.DataType.Float8E4M3Fn or TensorProto.Types.DataType.Float8E4M3Fnuz
            or TensorProto.Types.DataType.Float8E5M2 or TensorProto.Types.DataType.Float8E5M2Fnuz => 8,
        TensorProto.Types.DataType.Uint4 or TensorProto.Types.DataType.Int4 or TensorProto.Types.DataType.Float4E2M1 => 4,
        _ => 0,
    };

    public static string NameOf(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => "float32",
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        TensorProto.Types.DataType.Double => "float64",
        TensorProto.Types.DataType.Uint8 => "uint8",
        TensorProto.Types.DataType.Int8 => "int8",
        TensorProto.Types.DataType.Uint16 => "uint16",
        TensorProto.Types.DataType.Int16 => "int16",
        TensorProto.Types.DataType.Int32 => "int32",
        TensorProto.Types.DataType.Uint32 => "uint32",
        TensorProto.Types.DataType.Int64 => "int64",
        TensorProto.Types.DataType.Uint64 => "uint64",
        TensorProto.Types.DataType.Bool => "bool",
        TensorProto.Types.DataType.String => "string",
        _ => type.ToString().ToLowerInvariant(),
    };

    /// <summary>Parses the names <see cref="NameOf"/> writes (used by manifests).</summary>
    public static TensorProto.Types.DataType Parse(string name)
    {
        foreach (var value in Enum.GetValues<TensorProto.Types.DataType>())
        {
            if (NameOf(value) == name)
            {
                return value;
            }
        }

        throw new PipelineInputException($"'{name}' is not an ONNX element type name.");
    }
}
