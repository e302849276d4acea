using System.Globalization;
using PipelineActors.Onnx;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer;

/// <summary>
/// What the first hop (the ingest to the stages that read the source's pictures) carries, as <c>--first-hop</c> spells it:
/// <c>raw</c> uint8 pixels, or <c>jpeg:Q</c>, a JPEG the ingest encodes at quality Q and the reading stage decodes.
/// </summary>
/// <param name="JpegQuality">The JPEG quality, 1..100; null for raw pixels.</param>
public sealed record FirstHop(int? JpegQuality)
{
    /// <summary>The text of raw pixels on the first hop (the default).</summary>
    public const string Raw = "raw";

    public const string Choices = "raw, jpeg or jpeg:Q (Q a quality from 1 to 100; jpeg means jpeg:90)";

    /// <summary>Raw uint8 pixels, as before JPEG.</summary>
    public static FirstHop RawPixels { get; } = new((int?)null);

    public bool IsRaw => JpegQuality is null;

    /// <summary>The canonical text: <c>raw</c> or <c>jpeg:Q</c> (what plans and reports carry).</summary>
    public string Text => JpegQuality is { } q ? string.Create(CultureInfo.InvariantCulture, $"{JpegCodec.Prefix}:{q}") : Raw;

    /// <summary>Reads <c>raw</c>, <c>jpeg</c> or <c>jpeg:Q</c>; anything else is a <see cref="PipelineInputException"/> naming the choices.</summary>
    public static FirstHop Parse(string? text)
    {
        var spec = (text ?? string.Empty).Trim();
        if (spec == Raw)
        {
            return RawPixels;
        }

        if (!JpegCodec.Names(spec))
        {
            throw new PipelineInputException($"'{spec}' is not a first hop; give one of {Choices}.");
        }

        return new FirstHop(JpegCodec.Parse(spec).Quality);
    }
}
