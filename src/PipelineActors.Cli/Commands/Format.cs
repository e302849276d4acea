using System.Globalization;
using PipelineActors.Onnx.Graph;
using Spectre.Console;

namespace PipelineActors.Cli.Commands;

/// <summary>Human-readable numbers for tables.</summary>
internal static class Format
{
    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.00} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };

    public static string Count(double value) => value switch
    {
        >= 1e9 => $"{value / 1e9:0.00} G",
        >= 1e6 => $"{value / 1e6:0.00} M",
        >= 1e3 => $"{value / 1e3:0.0} k",
        _ => value.ToString("0", CultureInfo.InvariantCulture),
    };

    public static string Percent(double share) => $"{share * 100:0.0} %";

    /// <summary>Tensors as name:dtype[shape], escaped for Spectre markup (shapes contain brackets).</summary>
    public static string Tensors(IEnumerable<TensorInfo> tensors, int max = 3)
    {
        var list = tensors.ToList();
        var shown = string.Join("\n", list.Take(max).Select(t => $"{t.Name} {t.TypeName}{t.ShapeText}"));
        if (list.Count > max)
        {
            shown += $"\n(+{list.Count - max} more)";
        }

        return Markup.Escape(shown);
    }
}
