using System.Security.Cryptography;
using Google.Protobuf;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Onnx;

/// <summary>An ONNX model read from disk, with the SHA-256 of its bytes (stage manifests cite it).</summary>
public sealed record OnnxModelFile(string Path, ModelProto Model, string Sha256, long SizeBytes)
{
    /// <summary>Reads and checks a model file; every failure a user can cause is a <see cref="PipelineInputException"/>.</summary>
    public static OnnxModelFile Load(string path)
    {
        if (Directory.Exists(path))
        {
            throw new PipelineInputException($"'{path}' is a folder, not an ONNX model file.");
        }

        if (!File.Exists(path))
        {
            throw new PipelineInputException($"No such model file: '{path}'.");
        }

        var bytes = File.ReadAllBytes(path);
        var model = Parse(bytes, path);
        return new OnnxModelFile(System.IO.Path.GetFullPath(path), model, Sha256Hex(bytes), bytes.LongLength);
    }

    /// <summary>Parses model bytes; <paramref name="what"/> names them in error messages.</summary>
    public static ModelProto Parse(byte[] bytes, string what)
    {
        if (bytes.Length == 0)
        {
            throw new PipelineInputException($"'{what}' is empty, not an ONNX model.");
        }

        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            throw new PipelineInputException($"'{what}' is not an ONNX model (it does not parse as ONNX protobuf; the file may be "
                + $"truncated or of another format).");
        }

        if (model.Graph is null || model.Graph.Node.Count == 0 || model.IrVersion <= 0)
        {
            throw new PipelineInputException($"'{what}' is not an ONNX model (it has no IR version or no graph nodes).");
        }

        if (model.OpsetImport.Count == 0)
        {
            // What a file cut short after its graph looks like; ONNX Runtime refuses it too.
            throw new PipelineInputException($"'{what}' is not a complete ONNX model (it imports no operator set; the file may be truncated).");
        }

        RefuseExternalData(model, what);
        return model;
    }

    /// <summary>Writes a model through a temporary file so that a failed write never leaves half a model behind.</summary>
    public static string Save(ModelProto model, string path)
    {
        var bytes = model.ToByteArray();
        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, full, overwrite: true);
        return Sha256Hex(bytes);
    }

    public static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static void RefuseExternalData(ModelProto model, string what)
    {
        // Weights in side files would have to travel with every stage; we refuse them plainly
        // rather than write stages that cannot load.
        var external = model.Graph.Initializer.FirstOrDefault(t => t.DataLocation == TensorProto.Types.DataLocation.External)
            ?? model.Graph.Node.SelectMany(n => n.Attribute).Select(a => a.T)
                .FirstOrDefault(t => t is not null && t.DataLocation == TensorProto.Types.DataLocation.External);
        if (external is not null)
        {
            throw new PipelineInputException(
                $"'{what}' keeps weights in external data files (tensor '{external.Name}'), which PipelineActors does not support; save "
                    + $"the model with all weights inside the .onnx file.");
        }
    }
}
