using System.Runtime.InteropServices;
using System.Text.Json;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sink.Decoders;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Sink;

/// <summary>Result lines are JSON whatever they carry (review S5): hostile strings escaped, NaN and infinities as strings.</summary>
public sealed class ResultLineSpecs
{
    private static readonly JsonSerializerOptions Literals =
        new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private const string Hostile = "cam \"1\"\n\t\\ \u0001 </script> ,\"frame\":999} \u00e9";

    [Fact]
    public void Every_line_parses_as_json_and_gives_back_the_strings_it_was_given()
    {
        var outcomes = new[]
        {
            new FrameOutcome(1, Hostile, 10, 1.5, [Floats("out\"put", 0.25f, 1f)], null),
            new FrameOutcome(2, Hostile, 20, 2.5, [], Hostile),
            new FrameOutcome(
                3, "rtsp://***@cam/1", 30, double.NaN, [Floats("x", float.NaN, float.PositiveInfinity, float.NegativeInfinity, 2f)], null),
        };

        var lines = outcomes.Select(o => ResultLine.Format(o)).ToList();

        Assert.All(lines, line => Assert.DoesNotContain('\n', line));
        var parsed = lines.Select(line => JsonDocument.Parse(line)).ToList();
        Assert.Equal(Hostile, parsed[0].RootElement.GetProperty("source").GetString());
        Assert.Equal(1, parsed[0].RootElement.GetProperty("frame").GetInt64());
        Assert.True(parsed[0].RootElement.GetProperty("outputs").TryGetProperty("out\"put", out var output));
        Assert.Equal(1.0, output.GetProperty("max").GetDouble());
        Assert.Equal(Hostile, parsed[1].RootElement.GetProperty("failed").GetString());

        // Not finite: the value's name as a string, which System.Text.Json reads back as the number.
        var summary = parsed[2].RootElement.GetProperty("outputs").GetProperty("x");
        Assert.Equal("NaN", parsed[2].RootElement.GetProperty("latency_ms").GetString());
        Assert.Equal("NaN", summary.GetProperty("min").GetString());
        Assert.Equal("Infinity", summary.GetProperty("max").GetString());
        Assert.Equal("NaN", summary.GetProperty("mean").GetString());
        Assert.Equal(float.PositiveInfinity, JsonSerializer.Deserialize<float>(summary.GetProperty("max").GetRawText(), Literals));
    }

    [Fact]
    public void A_decoded_result_holding_nan_and_infinities_is_still_a_json_line()
    {
        var decoder = new TextDirectionDecoder();
        var outcome = new FrameOutcome(7, "cam", 0, 3, [Floats("softmax", float.NegativeInfinity, float.NaN, 0.5f, float.PositiveInfinity)], null);
        var tensor = outcome.Outputs[0] with { Shape = [2, 2] };

        var line = ResultLine.Format(outcome with { Outputs = [tensor] }, decoder, new DecodeContext(32, 32, 32, 32));

        using var json = JsonDocument.Parse(line);
        var decoded = json.RootElement.GetProperty("paddleocr-cls");
        Assert.Equal("-Infinity", decoded.GetProperty("score").GetString());
    }

    private static HostTensor Floats(string name, params float[] values) =>
        new(name, DataType.Float, [1, values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
}
