using System.Collections.Concurrent;
using System.Text.Json;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sink;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Sink.Destinations;

/// <summary>Outcomes to write and results files to read back, for the destination specs.</summary>
internal static class ResultFiles
{
    public static FrameOutcome Outcome(long id) =>
        new(id, "camera-1", 1_700_000_000_000_000 + id, 12.5, [Logits(id)], null);

    /// <summary>Two logits; the first is the frame id, so each frame's outputs differ.</summary>
    public static HostTensor Logits(long id) =>
        new("logits", DataType.Float, [1, 2], [.. BitConverter.GetBytes((float)id), .. BitConverter.GetBytes(-1f)]);

    /// <summary>Reads the file through a handle of its own, as another process would, while the writer may hold it open.</summary>
    public static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The frame id of every line; each line must be one whole JSON object.</summary>
    public static List<long> Ids(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(IdOf).ToList();

    public static long IdOf(string line)
    {
        using var json = JsonDocument.Parse(line);
        return json.RootElement.GetProperty("frame").GetInt64();
    }

    /// <summary>A report callback that keeps what it is told.</summary>
    public static (Action<string> Report, ConcurrentQueue<string> Events) Events()
    {
        var events = new ConcurrentQueue<string>();
        return (events.Enqueue, events);
    }
}
