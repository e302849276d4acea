using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using Spectre.Console;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Cli.Commands;

/// <summary><c>pipeline inspect</c>: what a model is, what it costs, and where it can be cut.</summary>
internal static class InspectCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var input = CommonOptions.Input();
        var singleOnly = new Option<bool>("--single-tensor") { Description = "List only cuts that carry one tensor." };
        var json = new Option<bool>("--json") { Description = "Print the summary and cuts as one JSON object." };
        var command = new Command("inspect", "Summarise a model and list every place it can be cut, with what each cut carries per frame.")
        {
            model, input, singleOnly, json,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var clock = Stopwatch.StartNew();
            var file = OnnxModelFile.Load(parse.GetValue(model)!);
            var analysis = ModelAnalysis.Analyze(file, InputSizes.ParseOverrides(parse.GetValue(input) ?? []));
            var cuts = analysis.Cuts.Where(c => !parse.GetValue(singleOnly) || c.IsSingleTensor).ToList();
            if (parse.GetValue(json))
            {
                context.Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(ToJson(file, analysis, cuts), Json));
                return 0;
            }

            Render(context.Console, file, analysis, cuts, clock.Elapsed);
            return 0;
        }));
        return command;
    }

    private static void Render(IAnsiConsole console, OnnxModelFile file, ModelAnalysis analysis, List<Onnx.Cuts.Cut> cuts, TimeSpan elapsed)
    {
        var model = file.Model;
        console.MarkupLine($"[bold]{Markup.Escape(Path.GetFileName(file.Path))}[/]  {Format.Bytes(file.SizeBytes)}  sha256 {file.Sha256[..16]}…");
        console.MarkupLine($"producer {Markup.Escape(Producer(model))}, IR {model.IrVersion}, opsets {Markup.Escape(Opsets(model))}");
        var weights = model.MetadataProps.FirstOrDefault(m => m.Key == "pipelineactors.weights")?.Value;
        if (weights is not null)
        {
            console.MarkupLine($"[yellow]weights: {Markup.Escape(weights)}: fine for throughput work, meaningless for accuracy[/]");
        }

        var io = new Table().Border(TableBorder.Rounded).AddColumns("", "name", "dtype", "declared", "analysed at");
        foreach (var i in analysis.Graph.Inputs)
        {
            var info = analysis.Shapes[i.Name];
            io.AddRow("input", Markup.Escape(i.Name), info.TypeName, Markup.Escape(InputSizes.Describe(i)), Markup.Escape(info.ShapeText));
        }

        foreach (var o in model.Graph.Output)
        {
            var info = analysis.Shapes.TryGet(o.Name, out var t) ? t : null;
            io.AddRow("output", Markup.Escape(o.Name), info?.TypeName ?? "?", Markup.Escape(InputSizes.Describe(o)),
                Markup.Escape(info?.ShapeText ?? "?"));
        }

        console.Write(io);

        var ops = analysis.Graph.Order.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}");
        var constants = analysis.Graph.ConstantNodes.SelectMany(n => n.Attribute).Where(a => a.T is not null).Select(a => a.T);
        var parameters = model.Graph.Initializer.Concat(constants).ToList();
        var parameterCount = parameters.Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d));
        console.MarkupLine(
            $"per-frame nodes {analysis.NodeCount} ({Markup.Escape(string.Join(", ", ops))}); constant nodes {analysis.Graph.ConstantNodes.Count}");
        console.MarkupLine($"parameters {Format.Count(parameterCount)} ({Format.Bytes(Onnx.Cost.CostModel.ParameterBytes(parameters))}); "
            + $"per frame {Format.Count(analysis.TotalFlops)}FLOPs, {Format.Count(analysis.TotalMacs)}MACs");

        var table = new Table().Border(TableBorder.Simple)
            .AddColumn("cut", c => c.RightAligned())
            .AddColumn("after node")
            .AddColumn("tensors carried")
            .AddColumn("bytes/frame", c => c.RightAligned())
            .AddColumn("on the wire", c => c.RightAligned())
            .AddColumn("FLOPs before", c => c.RightAligned())
            .AddColumn("input rows/row", c => c.RightAligned());
        foreach (var cut in cuts)
        {
            table.AddRow(
                cut.Position.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Markup.Escape(cut.AfterNode),
                Format.Tensors(cut.Cargo),
                Format.Bytes(cut.Bytes),
                cut.WireBytes < cut.Bytes ? Format.Bytes(cut.WireBytes) : "raw",
                Format.Percent(cut.FlopsShare),
                cut.ReceptiveRows?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-");
        }

        console.Write(table);
        console.MarkupLine($"{cuts.Count} cuts listed ({analysis.Cuts.Count(c => c.IsSingleTensor)} of {analysis.Cuts.Count} carry one "
            + $"tensor); 'on the wire': zero-suppressed size, estimated from the zeros in one calibration run on a synthetic input; "
            + $"'input rows/row': model-input rows one row of the carried tensor depends on. Analysed in {elapsed.TotalSeconds:0.0} s.");
    }

    private static object ToJson(OnnxModelFile file, ModelAnalysis analysis, List<Onnx.Cuts.Cut> cuts) => new
    {
        file = file.Path,
        sha256 = file.Sha256,
        producer = Producer(file.Model),
        irVersion = file.Model.IrVersion,
        opsets = file.Model.OpsetImport.ToDictionary(o => string.IsNullOrEmpty(o.Domain) ? "ai.onnx" : o.Domain, o => o.Version),
        weights = file.Model.MetadataProps.FirstOrDefault(m => m.Key == "pipelineactors.weights")?.Value,
        inputs = analysis.Shapes.InputSizes.Select(Tensor),
        outputs = analysis.Graph.OutputNames.Select(o => analysis.Shapes.TryGet(o, out var t) ? Tensor(t)
            : new { name = o, dtype = "?", shape = Array.Empty<long>(), bytes = 0L }),
        nodes = analysis.NodeCount,
        constantNodes = analysis.Graph.ConstantNodes.Count,
        opCounts = analysis.Graph.Order.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count()),
        flops = analysis.TotalFlops,
        macs = analysis.TotalMacs,
        cuts = cuts.Select(c => new
        {
            position = c.Position,
            afterNode = c.AfterNode,
            tensors = c.Cargo.Select(Tensor),
            bytes = c.Bytes,
            wireBytes = c.WireBytes,
            flopsBefore = c.FlopsBefore,
            flopsShare = Math.Round(c.FlopsShare, 5),
            inputRowsPerRow = c.ReceptiveRows,
        }),
    };

    private static object Tensor(TensorInfo t)
        => new { name = t.Name, dtype = t.TypeName, shape = t.Shape, bytes = t.Bytes, zeroShare = Math.Round(t.ZeroShare, 4) };

    private static string Producer(ModelProto model) =>
        string.IsNullOrEmpty(model.ProducerName) ? "(unnamed)" : $"{model.ProducerName} {model.ProducerVersion}".Trim();

    private static string Opsets(ModelProto model) =>
        string.Join(", ", model.OpsetImport.Select(o => $"{(string.IsNullOrEmpty(o.Domain) ? "ai.onnx" : o.Domain)} {o.Version}"));
}
