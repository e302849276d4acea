using System.Text.Json;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary><c>pipeline plan --table</c>: a what-if table on disk in, the plan as a table or JSON out, user errors as one sentence.</summary>
public sealed class PlanCommandSpecs : IDisposable
{
    // cam (a pi4, the source), pi-b (a pi4) and edge1. cam -> edge1 is a 20 Mbit/s link; every other pair takes
    // the 1000 Mbit/s, 0.2 ms default. Sending the frame to edge1 costs 150,528 * 8 / 20,000 = 60.2 ms of link a
    // frame, so the best chain relays through pi-b, which must run a block: b0 (41.5 ms, the bottleneck).
    private const string Table = """
        { "model": "what-if", "inputBytes": 150528,
          "blocks":  [ { "name": "b0", "outputBytes": 802816, "ms": { "pi4": 41.5, "edge": 3.1 }, "weightBytes": 9408 },
                       { "name": "b1", "outputBytes": 322560, "ms": { "pi4": 30, "edge": 2.2 } },
                       { "name": "b2", "outputBytes": 4000, "ms": { "pi4": 20, "edge": 1.5 } } ],
          "devices": [ { "name": "cam", "type": "pi4", "source": true, "memoryMiB": 2048 },
                       { "name": "pi-b", "type": "pi4" }, { "name": "edge1", "type": "edge" } ],
          "links":   [ { "from": "cam", "to": "edge1", "mbps": 20, "latencyMs": 10 } ],
          "defaultLink": { "mbps": 1000, "latencyMs": 0.2 },
          "sink": "cam" }
        """;

    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Write(string name, string text)
    {
        var path = _temp[name];
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void The_table_shows_each_stage_its_hop_and_the_figures()
    {
        var result = Cli.Run("plan", "--table", Write("t.json", Table));

        Assert.True(result.ExitCode == 0, result.Error);
        foreach (var column in new[] { "stage", "device(s)", "blocks", "compute ms", "replicas", "hop bytes", "hop ms", "link busy ms" })
        {
            Assert.Contains(column, result.Output, StringComparison.Ordinal);
        }

        Assert.Contains("none (sends the frame)", result.Output, StringComparison.Ordinal);
        Assert.Contains("b1..b2 (1-2)", result.Output, StringComparison.Ordinal);
        Assert.Contains("sink cam", result.Output, StringComparison.Ordinal);
        Assert.Contains("period 41.5 ms (24.1 frames/s)", result.Output, StringComparison.Ordinal);
        Assert.Contains("bottleneck: stage 1 on pi-b", result.Output, StringComparison.Ordinal);
        Assert.Contains("bound:", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_has_the_period_latency_rate_and_every_stage()
    {
        var result = Cli.Run("plan", "--table", Write("t.json", Table), "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        Assert.Equal(41.5, root.GetProperty("periodMs").GetDouble(), 9);
        Assert.Equal(1000 / 41.5, root.GetProperty("framesPerSecond").GetDouble(), 9);

        // Hops: 0.2 + 150,528 * 8 / 1e6 = 1.404224; 0.2 + 802,816 * 8 / 1e6 = 6.622528; back to cam 0.2 + 0.032.
        // Latency = 1.404224 + 41.5 + 6.622528 + (2.2 + 1.5) + 0.232 = 53.458752 ms.
        Assert.Equal(53.458752, root.GetProperty("latencyMs").GetDouble(), 9);
        Assert.True(root.GetProperty("sourceSendsFrame").GetBoolean());
        var stages = root.GetProperty("stages").EnumerateArray().ToList();
        Assert.Equal(["pi-b", "edge1"], stages.Select(s => s.GetProperty("device").GetString()));
        Assert.Equal([0, 1], stages.Select(s => s.GetProperty("firstBlock").GetInt32()));
        Assert.Equal([0, 2], stages.Select(s => s.GetProperty("lastBlock").GetInt32()));
        Assert.Equal([41.5, 3.7], stages.Select(s => Math.Round(s.GetProperty("computeMs").GetDouble(), 9)));
        Assert.All(stages, s => Assert.Equal(1, s.GetProperty("replicas").GetInt32()));
        Assert.Equal(3, root.GetProperty("hops").GetArrayLength());
    }

    [Fact]
    public void Json_lists_the_devices_of_a_replicated_stage()
    {
        // One block, 100 ms on cam and 10 ms on each edge box: one box gives a 10 ms period, two by demand
        // 1 / (1/10 + 1/10) = 5 ms, each link carrying half the frames.
        var table = """
            { "inputBytes": 1000,
              "blocks": [ { "name": "net", "outputBytes": 100, "ms": { "pi4": 100, "edge": 10 } } ],
              "devices": [ { "name": "cam", "type": "pi4", "source": true }, { "name": "e1", "type": "edge" }, { "name": "e2", "type": "edge" } ],
              "links": [], "defaultLink": { "mbps": 1000, "latencyMs": 0.1 } }
            """;
        var path = Write("r.json", table);
        using var single = JsonDocument.Parse(Cli.Run("plan", "--table", path, "--json").Output);
        Assert.Equal(10, single.RootElement.GetProperty("periodMs").GetDouble(), 9);

        var result = Cli.Run("plan", "--table", path, "--max-replicas", "2", "--json");
        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        Assert.Equal(5, json.RootElement.GetProperty("periodMs").GetDouble(), 9);
        var stage = Assert.Single(json.RootElement.GetProperty("stages").EnumerateArray());
        Assert.Equal(2, stage.GetProperty("replicas").GetInt32());
        Assert.Equal(["e1", "e2"], stage.GetProperty("devices").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal(5, stage.GetProperty("computeMs").GetDouble(), 9);
    }

    [Fact]
    public void The_latency_objective_and_a_floor_change_the_plan()
    {
        // Two blocks, 20 ms each on cam, 2 ms each on e1; the 8 Mbit/s link takes 1 ms of transfer and 50 ms latency
        // for 1,000 B. All on cam: period 40, latency 40. Send the frame: period max(4, 1) = 4, latency 51 + 4 = 55.
        // Cut after a: period 20, latency 20 + 51 + 2 = 73.
        var table = """
            { "inputBytes": 1000,
              "blocks": [ { "name": "a", "outputBytes": 1000, "ms": { "pi4": 20, "edge": 2 } },
                          { "name": "b", "outputBytes": 100, "ms": { "pi4": 20, "edge": 2 } } ],
              "devices": [ { "name": "cam", "type": "pi4", "source": true }, { "name": "e1", "type": "edge" } ],
              "links": [ { "from": "cam", "to": "e1", "mbps": 8, "latencyMs": 50 } ] }
            """;
        var path = Write("l.json", table);
        using var throughput = JsonDocument.Parse(Cli.Run("plan", "--table", path, "--json").Output);
        Assert.Equal(4, throughput.RootElement.GetProperty("periodMs").GetDouble(), 9);
        Assert.True(throughput.RootElement.GetProperty("sourceSendsFrame").GetBoolean());

        using var latency = JsonDocument.Parse(Cli.Run("plan", "--table", path, "--objective", "latency", "--json").Output);
        Assert.Equal(40, latency.RootElement.GetProperty("latencyMs").GetDouble(), 9);
        Assert.Equal("cam", Assert.Single(latency.RootElement.GetProperty("stages").EnumerateArray()).GetProperty("device").GetString());

        // At least 30 frames/s (a 33.3 ms cap) rules out cam alone: the frame is sent, 55 ms.
        using var floored = JsonDocument.Parse(Cli.Run("plan", "--table", path, "--min-fps", "30", "--json").Output);
        Assert.Equal(55, floored.RootElement.GetProperty("latencyMs").GetDouble(), 9);
        Assert.Equal("latency at >= 30 frames/s", floored.RootElement.GetProperty("objective").GetString());
    }

    [Fact]
    public void A_table_that_does_not_exist_is_one_error_line_and_exit_code_2()
    {
        var missing = _temp["nosuch.json"];
        Cli.AssertUserError(Cli.Run("plan", "--table", missing), "No such table file", missing);
    }

    [Fact]
    public void A_table_mistake_is_one_error_line_naming_it()
    {
        var path = Write("bad.json", Table.Replace("\"edge\": 3.1", "\"edge\": -3.1", StringComparison.Ordinal));
        Cli.AssertUserError(Cli.Run("plan", "--table", path), path, "ms for edge -3.1");

        var unknown = Write("type.json", Table.Replace("\"type\": \"edge\"", "\"type\": \"jetson\"", StringComparison.Ordinal));
        Cli.AssertUserError(Cli.Run("plan", "--table", unknown), "edge1", "'jetson'");
    }

    [Fact]
    public void Bad_flags_and_an_unreachable_floor_are_one_error_line_each()
    {
        var path = Write("t.json", Table);
        Cli.AssertUserError(Cli.Run("plan", "--table", path, "--objective", "fast"), "--objective", "'fast'");
        Cli.AssertUserError(Cli.Run("plan", "--table", path, "--max-replicas", "0"), "--max-replicas");
        Cli.AssertUserError(Cli.Run("plan", "--table", path, "--min-fps", "-3"), "--min-fps");
        Cli.AssertUserError(Cli.Run("plan", "--table", path, "--min-fps", "1000"), "No plan reaches 1000 frames/s", "24.096");
    }
}
