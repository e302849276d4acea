using System.Globalization;
using System.Text.Json;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Ingest;

namespace PipelineActors.Runtime.DataPath.Preprocessing;

/// <summary>Order of a model's image tensor: planes (NCHW) or interleaved pixels (NHWC).</summary>
public enum TensorLayout
{
    Nchw,
    Nhwc,
}

/// <summary>Which colour a model expects in channel 0: red (RGB) or blue (BGR, as OpenCV loads images).</summary>
public enum ChannelOrder
{
    Rgb,
    Bgr,
}

/// <summary>
/// How to turn a camera picture into a model's image input, read from <c>NAME.profile.json</c>
/// next to <c>NAME.onnx</c>. Each value is <c>(pixel * Scale - Mean[c]) / Std[c]</c>, where
/// <c>c</c> is the model's channel index (after <see cref="Channels"/> has put them in order).
/// </summary>
public sealed record ModelProfile(
    string Input,
    int Height,
    int Width,
    TensorLayout Layout,
    ChannelOrder Channels,
    float Scale,
    float[] Mean,
    float[] Std,
    string? Decoder = null,
    int SizeMultiple = 1)
{
    /// <summary>The file name suffix that marks a profile: <c>NAME.profile.json</c> beside <c>NAME.onnx</c>.</summary>
    public const string Suffix = ".profile.json";

    /// <summary>True when the model's input is plain <c>pixel / 255</c> on every channel (the default pixel conversion).</summary>
    public bool AcceptsUint8Pixels =>
        MathF.Abs(Scale - (1f / 255f)) < 1e-7f && Mean.All(m => m == 0f) && Std.All(s => s == 1f);

    /// <summary>The input tensor's shape with a batch of 1: [1,3,H,W] or [1,H,W,3].</summary>
    public long[] Shape => Layout == TensorLayout.Nchw ? [1, 3, Height, Width] : [1, Height, Width, 3];

    /// <summary>The tensor a source produces: float32 values, or uint8 pixels when <paramref name="uint8Pixels"/>.</summary>
    public TensorInfo InputInfo(bool uint8Pixels = false) =>
        new(Input, uint8Pixels ? TensorProto.Types.DataType.Uint8 : TensorProto.Types.DataType.Float, Shape);

    /// <summary>The same profile for another input size (models with dynamic H,W, such as the text detector).</summary>
    public ModelProfile WithSize(int width, int height)
    {
        var resized = this with { Width = width, Height = height };
        resized.Validate($"profile for '{Input}'");
        return resized;
    }

    /// <summary>The profile of a model file: <c>NAME.profile.json</c> beside <c>NAME.onnx</c>.</summary>
    /// <summary>The profile's normalisation as the first stage applies it to uint8 pixels: pixel * scale/std - mean/std.</summary>
    public Onnx.Stages.PixelNormalisation FirstStageNormalisation() => new(
        Std.Select(s => Scale / s).ToArray(),
        Mean.Select((m, c) => -m / Std[c]).ToArray(),
        Layout == TensorLayout.Nchw ? 1 : 3);

    public static ModelProfile ForModel(string modelPath)
    {
        var path = PathFor(modelPath);
        if (!File.Exists(path))
        {
            throw new PipelineInputException($"Model '{modelPath}' has no profile; write '{path}' saying its input name, size, layout, "
                + $"channel order and normalisation.");
        }

        return Load(path);
    }

    /// <summary>Where the profile of <paramref name="modelPath"/> lives.</summary>
    public static string PathFor(string modelPath)
    {
        var directory = Path.GetDirectoryName(modelPath) ?? string.Empty;
        return Path.Combine(directory, Path.GetFileNameWithoutExtension(modelPath) + Suffix);
    }

    public static ModelProfile Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (IOException e)
        {
            throw new PipelineInputException($"Cannot read model profile '{path}': {e.Message}", e);
        }

        return Parse(text, path);
    }

    /// <summary>Reads a profile's JSON; <paramref name="origin"/> names it in error messages.</summary>
    public static ModelProfile Parse(string json, string origin = "model profile")
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new PipelineInputException($"'{origin}' is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new PipelineInputException($"'{origin}' must be a JSON object.");
            }

            var size = Property(root, "size", origin);
            if (size.ValueKind != JsonValueKind.Array || size.GetArrayLength() != 2)
            {
                throw new PipelineInputException($"'{origin}': \"size\" must be [height, width].");
            }

            var profile = new ModelProfile(
                Input: Text(root, "input", origin),
                Height: WholeNumber(size[0], "size", origin),
                Width: WholeNumber(size[1], "size", origin),
                Layout: Text(root, "layout", origin).ToUpperInvariant() switch
                {
                    "NCHW" => TensorLayout.Nchw,
                    "NHWC" => TensorLayout.Nhwc,
                    var other => throw new PipelineInputException($"'{origin}': \"layout\" must be \"NCHW\" or \"NHWC\", not \"{other}\"."),
                },
                Channels: Text(root, "channels", origin).ToUpperInvariant() switch
                {
                    "RGB" => ChannelOrder.Rgb,
                    "BGR" => ChannelOrder.Bgr,
                    var other => throw new PipelineInputException($"'{origin}': \"channels\" must be \"RGB\" or \"BGR\", not \"{other}\"."),
                },
                Scale: Number(Property(root, "scale", origin), "scale", origin),
                Mean: Triple(root, "mean", origin),
                Std: Triple(root, "std", origin),
                Decoder: root.TryGetProperty("decoder", out var decoder) && decoder.ValueKind == JsonValueKind.String ? decoder.GetString() : null,
                SizeMultiple: root.TryGetProperty("sizeMultiple", out var multiple) ? WholeNumber(multiple, "sizeMultiple", origin) : 1);
            profile.Validate(origin);
            return profile;
        }
    }

    /// <summary>The profile as the JSON <see cref="Parse"/> reads.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("input", Input);
            json.WriteStartArray("size");
            json.WriteNumberValue(Height);
            json.WriteNumberValue(Width);
            json.WriteEndArray();
            json.WriteString("layout", Layout.ToString().ToUpperInvariant());
            json.WriteString("channels", Channels.ToString().ToUpperInvariant());
            json.WriteNumber("scale", Scale);
            json.WriteStartArray("mean");
            Array.ForEach(Mean, json.WriteNumberValue);
            json.WriteEndArray();
            json.WriteStartArray("std");
            Array.ForEach(Std, json.WriteNumberValue);
            json.WriteEndArray();
            if (SizeMultiple != 1)
            {
                json.WriteNumber("sizeMultiple", SizeMultiple);
            }

            if (Decoder is not null)
            {
                json.WriteString("decoder", Decoder);
            }

            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    public bool Equals(ModelProfile? other) =>
        other is not null && Input == other.Input && Height == other.Height && Width == other.Width && Layout == other.Layout
        && Channels == other.Channels && Scale == other.Scale && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std)
        && Decoder == other.Decoder && SizeMultiple == other.SizeMultiple;

    public override int GetHashCode() => HashCode.Combine(Input, Height, Width, Layout, Channels, Decoder);

    private void Validate(string origin)
    {
        if (Height < 1 || Width < 1 || Height > 16384 || Width > 16384)
        {
            throw new PipelineInputException($"'{origin}': size must be between 1 and 16384 pixels per side, not {Height}x{Width}.");
        }

        if (SizeMultiple < 1 || Height % SizeMultiple != 0 || Width % SizeMultiple != 0)
        {
            throw new PipelineInputException($"'{origin}': this model needs height and width that are multiples of {SizeMultiple}, not "
                + $"{Height}x{Width}.");
        }

        if (Std.Any(s => s == 0f || !float.IsFinite(s)) || Mean.Any(m => !float.IsFinite(m)) || !float.IsFinite(Scale) || Scale == 0f)
        {
            throw new PipelineInputException($"'{origin}': scale and std must be finite and non-zero, and mean finite.");
        }
    }

    private static JsonElement Property(JsonElement root, string name, string origin) =>
        root.TryGetProperty(name, out var value) ? value : throw new PipelineInputException($"'{origin}' has no \"{name}\".");

    private static string Text(JsonElement root, string name, string origin)
    {
        var value = Property(root, name, origin);
        return value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new PipelineInputException($"'{origin}': \"{name}\" must be a non-empty string.");
    }

    private static float Number(JsonElement value, string name, string origin) =>
        value.ValueKind == JsonValueKind.Number
            ? value.GetSingle()
            : throw new PipelineInputException($"'{origin}': \"{name}\" must be a number, not {value.GetRawText()}.");

    private static int WholeNumber(JsonElement value, string name, string origin) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n)
            ? n
            : throw new PipelineInputException($"'{origin}': \"{name}\" must hold whole numbers, not {value.GetRawText()}.");

    private static float[] Triple(JsonElement root, string name, string origin)
    {
        var value = Property(root, name, origin);
        if (value.ValueKind == JsonValueKind.Number)
        {
            var one = value.GetSingle();
            return [one, one, one];
        }

        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 3)
        {
            throw new PipelineInputException($"'{origin}': \"{name}\" must be a number or three numbers (one per channel, in the model's "
                + $"channel order).");
        }

        return value.EnumerateArray().Select(v => Number(v, name, origin)).ToArray();
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Input} {Layout} {Channels} {Height}x{Width} (x*{Scale}-[{string.Join(",", Mean)}])/[{string.Join(",", Std)}]");
}
