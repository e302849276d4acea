using System.Globalization;
using System.Text.Json;
using PipelineActors.Onnx;

namespace PipelineActors.Planning;

/// <summary>
/// Reads the what-if table of issue 9 (blocks, devices, links, optional defaultLink and sink) into a
/// <see cref="PlanProblem"/>. Every mistake is one sentence naming the thing and the fix, thrown as a
/// <see cref="PipelineInputException"/>. A block's <c>ms</c> must list every device type in use; types
/// no device has are allowed, so a device can be dropped from a table without editing every block.
/// Every device must be reachable from the source over links, and with a sink every device must reach
/// the sink: a device the frame cannot reach is a missing link, not a what-if.
/// </summary>
public static class PlanTable
{
    private static readonly string[] TopFields = ["model", "inputBytes", "blocks", "devices", "links", "defaultLink", "sink", "fidelity"];
    private static readonly string[] BlockFields = ["name", "outputBytes", "ms", "weightBytes", "activationBytes", "codecs"];
    private static readonly string[] CodecFields = ["name", "outputBytes", "encodeMs", "decodeMs", "fidelity"];
    private static readonly string[] DeviceFields = ["name", "type", "source", "memoryMiB"];
    private static readonly string[] LinkFields = ["from", "to", "mbps", "latencyMs"];
    private static readonly string[] DefaultLinkFields = ["mbps", "latencyMs"];

    public static PlanProblem Read(string path)
    {
        if (Directory.Exists(path))
        {
            throw new PipelineInputException($"{path} is a folder; give --table the path of a JSON table file.");
        }

        if (!File.Exists(path))
        {
            throw new PipelineInputException($"No such table file {path}; check the path given to --table.");
        }

        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses a table's JSON text; <paramref name="name"/> names it in error sentences.</summary>
    public static PlanProblem Parse(string json, string name)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new PipelineInputException(
                $"{name} is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}); fix the syntax there.", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Error(name, "must be one JSON object with blocks, devices and links");
            }

            Fields(root, TopFields, name, "the table");
            var model = root.TryGetProperty("model", out var m) ? Text(m, name, "model") : null;
            var inputBytes = Bytes(Required(root, "inputBytes", name, "the table"), name, "inputBytes");
            var blocks = Array(root, "blocks", name).Select((b, i) => Block(b, i, name)).ToList();
            if (blocks.Count == 0)
            {
                throw Error(name, "has no blocks; list the model's blocks in order, each with outputBytes and ms");
            }

            var devices = Array(root, "devices", name).Select((d, i) => Device(d, i, name)).ToList();
            CheckDevices(devices, blocks, name);
            var links = root.TryGetProperty("links", out _) ? Array(root, "links", name).Select((x, i) => Link(x, i, name)).ToList() : [];
            CheckLinks(links, devices, name);
            LinkFigures? defaultLink = null;
            if (root.TryGetProperty("defaultLink", out var dl))
            {
                defaultLink = LinkBody(dl, name, "defaultLink", DefaultLinkFields);
            }

            string? sink = null;
            if (root.TryGetProperty("sink", out var s))
            {
                sink = Text(s, name, "sink");
                if (devices.All(d => d.Name != sink))
                {
                    throw Error(name, $"names sink '{sink}', which is not among the devices; name a listed device or drop sink");
                }
            }

            double? fidelity = null;
            if (root.TryGetProperty("fidelity", out var f))
            {
                fidelity = Share(f, name, "fidelity");
            }

            var problem = new PlanProblem(inputBytes, blocks, devices, links, defaultLink, sink, model, fidelity);
            CheckReach(problem, name);
            return problem;
        }
    }

    private static PlanBlock Block(JsonElement e, int index, string name)
    {
        var where = $"block {index}";
        Object(e, name, where);
        var blockName = e.TryGetProperty("name", out var n) ? Text(n, name, $"{where}'s name") : $"b{index}";
        where = $"block {index} ({blockName})";
        Fields(e, BlockFields, name, where);
        var outputBytes = Bytes(Required(e, "outputBytes", name, where), name, $"{where}'s outputBytes");
        var msElement = Required(e, "ms", name, where);
        Object(msElement, name, $"{where}'s ms");
        var ms = new Dictionary<string, double>();
        foreach (var p in msElement.EnumerateObject())
        {
            ms[p.Name] = Number(p.Value, name, $"{where}'s ms for {p.Name}");
        }

        var weights = e.TryGetProperty("weightBytes", out var w) ? Bytes(w, name, $"{where}'s weightBytes") : 0;
        long? activations = e.TryGetProperty("activationBytes", out var a) ? Bytes(a, name, $"{where}'s activationBytes") : null;
        List<PlanCodec>? codecs = null;
        if (e.TryGetProperty("codecs", out var c))
        {
            if (c.ValueKind != JsonValueKind.Array)
            {
                throw Error(name, $"gives {where} codecs that are not a list; give a list of {{ name, outputBytes, encodeMs, decodeMs, fidelity }}");
            }

            codecs = [.. c.EnumerateArray().Select((x, i) => Codec(x, i, name, where))];
        }

        return new PlanBlock(blockName, outputBytes, ms, weights, activations, codecs);
    }

    private static PlanCodec Codec(JsonElement e, int index, string name, string block)
    {
        var where = $"{block}'s codec {index}";
        Object(e, name, where);
        Fields(e, CodecFields, name, where);
        var codecName = Text(Required(e, "name", name, where), name, $"{where}'s name");
        where = $"{block}'s codec {codecName}";
        var bytes = Bytes(Required(e, "outputBytes", name, where), name, $"{where}'s outputBytes");
        var encode = e.TryGetProperty("encodeMs", out var en) ? Number(en, name, $"{where}'s encodeMs") : 0;
        var decode = e.TryGetProperty("decodeMs", out var de) ? Number(de, name, $"{where}'s decodeMs") : 0;
        var fidelity = e.TryGetProperty("fidelity", out var fi) ? Share(fi, name, $"{where}'s fidelity") : 1;
        return new PlanCodec(codecName, bytes, encode, decode, fidelity);
    }

    /// <summary>A number above 0 and at most 1 (a fidelity).</summary>
    private static double Share(JsonElement e, string name, string what)
    {
        var value = Number(e, name, what);
        return value is > 0 and <= 1 ? value : throw Error(name, $"gives {what} {Show(value)}; it must be above 0 and at most 1");
    }

    private static PlanDevice Device(JsonElement e, int index, string name)
    {
        var where = $"device {index}";
        Object(e, name, where);
        var deviceName = Text(Required(e, "name", name, where), name, $"{where}'s name");
        where = $"device {deviceName}";
        Fields(e, DeviceFields, name, where);
        var type = Text(Required(e, "type", name, where), name, $"{where}'s type");
        var source = false;
        if (e.TryGetProperty("source", out var s))
        {
            source = s.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(name, $"gives {where} a source of {s.GetRawText()}; it must be true or false"),
            };
        }

        double? memory = null;
        if (e.TryGetProperty("memoryMiB", out var mem))
        {
            memory = Number(mem, name, $"{where}'s memoryMiB");
            if (memory <= 0)
            {
                throw Error(name, $"gives {where} memoryMiB {Show(memory.Value)}; it must be above 0 (or left out for no limit)");
            }
        }

        return new PlanDevice(deviceName, type, source, memory);
    }

    private static PlanLink Link(JsonElement e, int index, string name)
    {
        var where = $"link {index}";
        Object(e, name, where);
        Fields(e, LinkFields, name, where);
        var from = Text(Required(e, "from", name, where), name, $"{where}'s from");
        var to = Text(Required(e, "to", name, where), name, $"{where}'s to");
        var figures = LinkBody(e, name, $"link {index} ({from} -> {to})", LinkFields);
        return new PlanLink(from, to, figures.Mbps, figures.LatencyMs);
    }

    private static LinkFigures LinkBody(JsonElement e, string name, string where, string[] fields)
    {
        Object(e, name, where);
        Fields(e, fields, name, where);
        var mbps = Number(Required(e, "mbps", name, where), name, $"{where}'s mbps");
        if (mbps <= 0)
        {
            throw Error(name, $"gives {where} mbps {Show(mbps)}; bandwidth must be above 0 (leave the link out if there is none)");
        }

        var latency = Number(Required(e, "latencyMs", name, where), name, $"{where}'s latencyMs");
        return new LinkFigures(mbps, latency);
    }

    private static void CheckDevices(List<PlanDevice> devices, List<PlanBlock> blocks, string name)
    {
        if (devices.Count == 0)
        {
            throw Error(name, "has no devices; list at least the source device");
        }

        var twice = devices.GroupBy(d => d.Name).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null)
        {
            throw Error(name, $"lists device {twice.Key} twice; give every device its own name");
        }

        var sources = devices.Where(d => d.IsSource).ToList();
        if (sources.Count == 0)
        {
            throw Error(name, "has no source device; mark the device the frames start on with \"source\": true");
        }

        if (sources.Count > 1)
        {
            throw Error(name, $"marks both {sources[0].Name} and {sources[1].Name} as the source; frames start on one device, so mark one");
        }

        foreach (var device in devices)
        {
            var block = blocks.FirstOrDefault(b => !b.Ms.ContainsKey(device.Type));
            if (block is not null)
            {
                throw Error(name, $"gives device {device.Name} the type '{device.Type}', which block {block.Name}'s ms does not list " +
                    $"(it lists {string.Join(", ", block.Ms.Keys.Select(k => $"'{k}'"))}); add its time or fix the type");
            }
        }
    }

    private static void CheckLinks(List<PlanLink> links, List<PlanDevice> devices, string name)
    {
        var names = devices.Select(d => d.Name).ToHashSet();
        var seen = new HashSet<(string, string)>();
        foreach (var link in links)
        {
            foreach (var end in new[] { link.From, link.To }.Where(e => !names.Contains(e)))
            {
                throw Error(name, $"has a link {link.From} -> {link.To}, but {end} is not among the devices; fix the name or add the device");
            }

            if (link.From == link.To)
            {
                throw Error(name, $"has a link from {link.From} to itself; a device needs no link to itself");
            }

            if (!seen.Add((link.From, link.To)))
            {
                throw Error(name, $"lists the link {link.From} -> {link.To} twice; keep one (links are one-way: list the way back separately)");
            }
        }
    }

    /// <summary>Devices that must talk: the source to every device, and with a sink every device to the sink.</summary>
    private static void CheckReach(PlanProblem problem, string name)
    {
        var fromSource = Reachable(problem, problem.SourceIndex, forward: true);
        for (var d = 0; d < problem.DeviceCount; d++)
        {
            if (!fromSource[d])
            {
                throw Error(name, $"has no link that takes frames from the source {problem.Devices[problem.SourceIndex].Name} to " +
                    $"{problem.Devices[d].Name} (directly or through other devices) and no defaultLink; add a link or a defaultLink");
            }
        }

        if (problem.SinkIndex < 0)
        {
            return;
        }

        var toSink = Reachable(problem, problem.SinkIndex, forward: false);
        for (var d = 0; d < problem.DeviceCount; d++)
        {
            if (!toSink[d])
            {
                throw Error(name, $"has no link that takes results from {problem.Devices[d].Name} to the sink {problem.Sink} " +
                    "(directly or through other devices) and no defaultLink; add a link or a defaultLink");
            }
        }
    }

    private static bool[] Reachable(PlanProblem problem, int start, bool forward)
    {
        var seen = new bool[problem.DeviceCount];
        var queue = new Queue<int>([start]);
        seen[start] = true;
        while (queue.TryDequeue(out var d))
        {
            for (var e = 0; e < problem.DeviceCount; e++)
            {
                if (!seen[e] && (forward ? problem.Link(d, e) : problem.Link(e, d)) is not null)
                {
                    seen[e] = true;
                    queue.Enqueue(e);
                }
            }
        }

        return seen;
    }

    private static List<JsonElement> Array(JsonElement root, string field, string name)
    {
        var e = Required(root, field, name, "the table");
        if (e.ValueKind != JsonValueKind.Array)
        {
            throw Error(name, $"has {field} as {Kind(e)}; it must be a JSON array");
        }

        return e.EnumerateArray().ToList();
    }

    private static JsonElement Required(JsonElement e, string field, string name, string where) =>
        e.TryGetProperty(field, out var v) ? v : throw Error(name, $"gives {where} no {field}; add it");

    private static void Object(JsonElement e, string name, string where)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw Error(name, $"has {where} as {Kind(e)}; it must be a JSON object");
        }
    }

    private static void Fields(JsonElement e, string[] known, string name, string where)
    {
        foreach (var p in e.EnumerateObject().Where(p => !known.Contains(p.Name)))
        {
            throw Error(name, $"gives {where} an unknown field '{p.Name}'; the fields are {string.Join(", ", known)}");
        }
    }

    private static string Text(JsonElement e, string name, string what) =>
        e.ValueKind == JsonValueKind.String && e.GetString() is { Length: > 0 } s
            ? s
            : throw Error(name, $"has {what} as {Kind(e)}; it must be a non-empty string");

    /// <summary>A finite figure of at least zero; NaN and infinities can only arrive as strings, and are refused.</summary>
    private static double Number(JsonElement e, string name, string what)
    {
        if (e.ValueKind != JsonValueKind.Number)
        {
            throw Error(name, $"has {what} as {Kind(e)}; it must be a number of at least 0");
        }

        if (!e.TryGetDouble(out var value) || !double.IsFinite(value) || value < 0)
        {
            throw Error(name, $"has {what} {e.GetRawText()}; it must be a finite number of at least 0");
        }

        return value;
    }

    private static long Bytes(JsonElement e, string name, string what)
    {
        var value = Number(e, name, what);
        if (value != Math.Floor(value) || value > long.MaxValue / 16)
        {
            throw Error(name, $"has {what} {Show(value)}; it must be a whole number of bytes");
        }

        return (long)value;
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string {e.GetRawText()}",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => e.GetRawText(),
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "an array",
        _ => "an object",
    };

    private static string Show(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    private static PipelineInputException Error(string name, string sentence) => new($"{name} {sentence}.");
}
