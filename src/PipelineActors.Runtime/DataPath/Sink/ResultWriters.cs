using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.DataPath.Sink;

/// <summary>One frame's end: its result (outputs) or the reason it failed.</summary>
public sealed record FrameOutcome(long FrameId, string SourceId, long CaptureUnixMicros, double LatencyMs,
    IReadOnlyList<HostTensor> Outputs, string? FailedReason)
{
    /// <summary>The frame's first input tensor, when the job hands pixels to the sink (for drawing results on); else null.</summary>
    public HostTensor? Pixels { get; init; }
}

/// <summary>Receives frames' outcomes in frame order, exactly once each.</summary>
public interface IResultWriter : IDisposable
{
    void Write(FrameOutcome outcome);
}

/// <summary>
/// One frame's outcome as one JSON object (no newline): <c>frame</c> (the id), <c>source</c>, <c>capture_us</c>,
/// <c>latency_ms</c>, then <c>failed</c> (the reason) or <c>outputs</c> (a summary of each tensor) and the result
/// decoded as the model's profile says. The same text goes to files, stdout and MQTT. Every string is escaped as JSON,
/// and a number that is not finite (an output holding NaN or an infinity) is written as the string <c>"NaN"</c>,
/// <c>"Infinity"</c> or <c>"-Infinity"</c>, as System.Text.Json's named floating-point literals are, so every line
/// parses and the value is kept.
/// </summary>
public static class ResultLine
{
    private static readonly System.Text.Json.JsonSerializerOptions DecodedJson = new()
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The name of the frame id's field, which a resumed results file is read back by.</summary>
    public const string FrameIdField = "frame";

    public static string Format(FrameOutcome outcome, Decoders.IResultDecoder? decoder = null, Decoders.DecodeContext? context = null)
    {
        var line = new StringBuilder(256);
        line.Append(CultureInfo.InvariantCulture, $"{{\"{FrameIdField}\":{outcome.FrameId},\"source\":")
            .Append(System.Text.Json.JsonSerializer.Serialize(outcome.SourceId))
            .Append(CultureInfo.InvariantCulture, $",\"capture_us\":{outcome.CaptureUnixMicros},\"latency_ms\":")
            .Append(Number(outcome.LatencyMs, "0.###"));
        if (outcome.FailedReason is not null)
        {
            line.Append(",\"failed\":").Append(System.Text.Json.JsonSerializer.Serialize(outcome.FailedReason));
        }
        else
        {
            line.Append(",\"outputs\":{");
            for (var i = 0; i < outcome.Outputs.Count; i++)
            {
                var t = outcome.Outputs[i];
                line.Append(i == 0 ? string.Empty : ",").Append(System.Text.Json.JsonSerializer.Serialize(t.Name))
                    .Append(":{\"dtype\":").Append(System.Text.Json.JsonSerializer.Serialize(t.Info.TypeName))
                    .Append(",\"shape\":[").Append(string.Join(",", t.Shape)).Append(']');
                if (t.ElementType == TensorProto.Types.DataType.Float && t.Data.Length > 0)
                {
                    var v = MemoryMarshal.Cast<byte, float>(t.Data.AsSpan());
                    var (min, max, sum, argmax) = (float.MaxValue, float.MinValue, 0.0, 0);
                    for (var k = 0; k < v.Length; k++)
                    {
                        min = Math.Min(min, v[k]);
                        if (v[k] > max)
                        {
                            max = v[k];
                            argmax = k;
                        }

                        sum += v[k];
                    }

                    line.Append(",\"min\":").Append(Number(min, "G6")).Append(",\"max\":").Append(Number(max, "G6"))
                        .Append(",\"mean\":").Append(Number(sum / v.Length, "G6")).Append(CultureInfo.InvariantCulture, $",\"argmax\":{argmax}");
                }

                line.Append('}');
            }

            line.Append('}');
            if (decoder is not null && context is not null)
            {
                // The model's result decoded as its profile says (faces, text regions, orientation).
                object decoded;
                try
                {
                    decoded = decoder.Decode(outcome.Outputs, context);
                }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException or IndexOutOfRangeException)
                {
                    decoded = new { error = e.Message };
                }

                line.Append(',').Append(System.Text.Json.JsonSerializer.Serialize(decoder.Name)).Append(':')
                    .Append(System.Text.Json.JsonSerializer.Serialize(decoded, decoded.GetType(), DecodedJson));
            }
        }

        return line.Append('}').ToString();
    }

    /// <summary>A JSON number, or the name of a value JSON has no number for, as a string.</summary>
    private static string Number(double value, string format) =>
        double.IsFinite(value) ? value.ToString(format, CultureInfo.InvariantCulture)
        : double.IsNaN(value) ? "\"NaN\""
        : value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
}

/// <summary>One JSON object per line (<see cref="ResultLine"/>) on a text writer: stdout, or a stream the caller owns.</summary>
public sealed class JsonLinesResultWriter(TextWriter writer, bool ownsWriter = true, Decoders.IResultDecoder? decoder = null,
    Decoders.DecodeContext? context = null) : IResultWriter
{
    public void Write(FrameOutcome outcome) => writer.WriteLine(ResultLine.Format(outcome, decoder, context));

    public void Dispose()
    {
        writer.Flush();
        if (ownsWriter)
        {
            writer.Dispose();
        }
    }
}

/// <summary>Keeps every outcome in memory (tests compare them with the whole model's outputs).</summary>
public sealed class CollectingResultWriter : IResultWriter
{
    private readonly List<FrameOutcome> _outcomes = [];

    public IReadOnlyList<FrameOutcome> Snapshot()
    {
        lock (_outcomes)
        {
            return _outcomes.ToList();
        }
    }

    public void Write(FrameOutcome outcome)
    {
        lock (_outcomes)
        {
            _outcomes.Add(outcome);
        }
    }

    public void Dispose()
    {
    }
}

/// <summary>Discards outcomes (benchmarks).</summary>
public sealed class NullResultWriter : IResultWriter
{
    public void Write(FrameOutcome outcome)
    {
    }

    public void Dispose()
    {
    }
}
