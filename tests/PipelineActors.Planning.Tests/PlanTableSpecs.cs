using PipelineActors.Onnx;

namespace PipelineActors.Planning.Tests;

/// <summary>The table format: what it reads, and one sentence for each mistake.</summary>
public sealed class PlanTableSpecs
{
    public const string Example = """
        { "model": "name", "inputBytes": 150528,
          "blocks":  [ { "name": "b0", "outputBytes": 802816, "ms": { "pi4": 41.5, "edge": 3.1 }, "weightBytes": 9408 },
                       { "name": "b1", "outputBytes": 4000, "ms": { "pi4": 20, "edge": 1.5 } } ],
          "devices": [ { "name": "cam", "type": "pi4", "source": true, "memoryMiB": 2048 }, { "name": "edge1", "type": "edge" } ],
          "links":   [ { "from": "cam", "to": "edge1", "mbps": 20, "latencyMs": 10 } ],
          "defaultLink": { "mbps": 1000, "latencyMs": 0.2 },
          "sink": "cam" }
        """;

    [Fact]
    public void The_example_of_issue_9_reads_into_a_problem()
    {
        var problem = PlanTable.Parse(Example, "t.json");
        Assert.Equal("name", problem.Model);
        Assert.Equal(150_528, problem.InputBytes);
        Assert.Equal(2, problem.BlockCount);
        Assert.Equal(0, problem.SourceIndex);
        Assert.Equal(0, problem.SinkIndex);
        Assert.Equal(9408, problem.Blocks[0].WeightBytes);
        Assert.Equal(2048, problem.Devices[0].MemoryMiB);
        Assert.Null(problem.Devices[1].MemoryMiB);
        Assert.Equal(new LinkFigures(20, 10), problem.Link(0, 1));

        // edge1 -> cam is not listed: the default link carries it.
        Assert.Equal(new LinkFigures(1000, 0.2), problem.Link(1, 0));
        Assert.Equal(61.5, problem.WholeModelMs(0), 9);
    }

    public static TheoryData<string, string, string[]> Mistakes() => new()
    {
        { "bad JSON", Example.Replace("\"blocks\":", "\"blocks\"", StringComparison.Ordinal), ["not valid JSON", "line 2"] },
        { "a device type no block times", Example.Replace("\"type\": \"edge\"", "\"type\": \"edgetpu\"", StringComparison.Ordinal),
            ["edge1", "'edgetpu'", "block b0's ms does not list", "'pi4', 'edge'"] },
        { "a missing link and no default", Without(Example, "\"defaultLink\": { \"mbps\": 1000, \"latencyMs\": 0.2 },"),
            ["no link that takes results from edge1 to the sink cam", "defaultLink"] },
        { "an unreachable device", Without(Example, "\"defaultLink\": { \"mbps\": 1000, \"latencyMs\": 0.2 },")
            .Replace("\"to\": \"edge1\"", "\"to\": \"cam2\"", StringComparison.Ordinal)
            .Replace("{ \"name\": \"edge1\", \"type\": \"edge\" }",
                "{ \"name\": \"edge1\", \"type\": \"edge\" }, { \"name\": \"cam2\", \"type\": \"pi4\" }", StringComparison.Ordinal),
            ["from the source cam to edge1"] },
        { "a negative time", Example.Replace("41.5", "-41.5", StringComparison.Ordinal), ["block 0 (b0)'s ms for pi4 -41.5", "at least 0"] },
        { "NaN as a string", Example.Replace("41.5", "\"NaN\"", StringComparison.Ordinal), ["ms for pi4 as the string \"NaN\"", "a number"] },
        { "a negative bandwidth", Example.Replace("\"mbps\": 20", "\"mbps\": -20", StringComparison.Ordinal), ["cam -> edge1", "mbps -20"] },
        { "zero bandwidth", Example.Replace("\"mbps\": 20", "\"mbps\": 0", StringComparison.Ordinal), ["mbps 0", "above 0"] },
        { "negative bytes", Example.Replace("\"outputBytes\": 4000", "\"outputBytes\": -4", StringComparison.Ordinal),
            ["block 1 (b1)'s outputBytes -4"] },
        { "fractional bytes", Example.Replace("150528", "150528.5", StringComparison.Ordinal), ["inputBytes 150528.5", "whole number"] },
        { "no source", Example.Replace("\"source\": true, ", "", StringComparison.Ordinal), ["no source device", "\"source\": true"] },
        { "two sources", Example.Replace("\"type\": \"edge\"", "\"type\": \"edge\", \"source\": true", StringComparison.Ordinal),
            ["both cam and edge1", "mark one"] },
        { "no blocks", """{ "inputBytes": 1, "blocks": [], "devices": [ { "name": "cam", "type": "pi4", "source": true } ] }""", ["has no blocks"] },
        { "a link to an unknown device", Example.Replace("\"to\": \"edge1\"", "\"to\": \"edge9\"", StringComparison.Ordinal),
            ["cam -> edge9", "edge9 is not among the devices"] },
        { "a misspelt field", Example.Replace("memoryMiB", "memoryMib", StringComparison.Ordinal), ["unknown field 'memoryMib'", "device cam"] },
        { "an unknown sink", Example.Replace("\"sink\": \"cam\"", "\"sink\": \"phone\"", StringComparison.Ordinal), ["sink 'phone'"] },
        { "two devices of one name", Example.Replace("\"name\": \"edge1\"", "\"name\": \"cam\"", StringComparison.Ordinal), ["device cam twice"] },
        { "a fidelity above one", WithCodecs.Replace("\"fidelity\": 0.99", "\"fidelity\": 1.5", StringComparison.Ordinal),
            ["fidelity 1.5", "at most 1"] },
        { "a codec's negative bytes", WithCodecs.Replace("\"outputBytes\": 90000", "\"outputBytes\": -1", StringComparison.Ordinal),
            ["block 0 (b0)'s codec int8's outputBytes -1"] },
        { "a codec without bytes", WithCodecs.Replace("\"outputBytes\": 90000, ", "", StringComparison.Ordinal), ["codec int8 no outputBytes"] },
        { "a misspelt codec field", WithCodecs.Replace("encodeMs", "encodeMS", StringComparison.Ordinal), ["unknown field 'encodeMS'", "codec 0"] },
    };

    /// <summary>The example with a codec on b0's output and a fidelity budget.</summary>
    public static readonly string WithCodecs = Example
        .Replace("\"weightBytes\": 9408 }",
            "\"weightBytes\": 9408, \"codecs\": [ { \"name\": \"int8\", \"outputBytes\": 90000, \"encodeMs\": 2, \"decodeMs\": 1, "
            + "\"fidelity\": 0.995 } ] }",
            StringComparison.Ordinal)
        .Replace("\"sink\": \"cam\" }", "\"sink\": \"cam\", \"fidelity\": 0.99 }", StringComparison.Ordinal);

    [Fact]
    public void A_blocks_codecs_and_the_fidelity_budget_read_into_the_problem()
    {
        var problem = PlanTable.Parse(WithCodecs, "t.json");

        Assert.Equal(0.99, problem.FidelityBudget);
        Assert.Equal(new PlanCodec("int8", 90_000, 2, 1, 0.995), Assert.Single(problem.Blocks[0].Codecs!));
        Assert.Null(problem.Blocks[1].Codecs);
        // cam -> edge1 at 20 Mbit/s: 90,000 B take 36 ms + 3 ms of codec against 802,816 B's 321 ms.
        Assert.Equal("int8", problem.Hop(0, 1, 1)!.Value.Codec);
        Assert.Equal("exact", problem.WithFidelity(null).Hop(0, 1, 1)!.Value.Codec);
    }

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void Each_mistake_is_one_sentence_that_names_it(string mistake, string json, string[] naming)
    {
        var error = Assert.Throws<PipelineInputException>(() => PlanTable.Parse(json, "t.json"));
        Assert.StartsWith("t.json ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith(".", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Single(error.Message.Split(". ", StringSplitOptions.RemoveEmptyEntries));
        foreach (var thing in naming)
        {
            Assert.True(error.Message.Contains(thing, StringComparison.Ordinal), $"{mistake}: '{error.Message}' does not name '{thing}'");
        }
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var path = Path.Combine(Path.GetTempPath(), $"pa-no-such-table-{Guid.NewGuid():N}.json");
        var error = Assert.Throws<PipelineInputException>(() => PlanTable.Read(path));
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    private static string Without(string text, string part) => text.Replace(part, "", StringComparison.Ordinal);
}
