using Akka.Configuration;
using PipelineActors.Onnx;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// The largest lengths and counts a node believes from the wire (<c>pipeline.limits</c> in hocon/reference.conf). Every
/// length and count the serializers and the chunk assembler read is checked against these before anything is allocated
/// for it, so a 40-byte message cannot ask for gigabytes; a message past a limit is refused as malformed.
/// </summary>
/// <param name="FrameBytes">A frame, encoded or decoded (its tensors' bytes together); a stage may lower it to what its inputs take.</param>
/// <param name="Tensors">Tensors in one frame.</param>
/// <param name="TensorRank">Dimensions of one tensor.</param>
/// <param name="StringBytes">One string field (a name, an id, a reason), as UTF-8 bytes.</param>
/// <param name="ListItems">Items in one list field.</param>
/// <param name="FileBytes">A stage or model file.</param>
/// <param name="FileChunks">Pieces of one file.</param>
/// <param name="FileChunkBytes">The data of one piece of a file.</param>
/// <param name="Parts">Stages in one split of a model.</param>
/// <param name="Window">Frames in flight of one job.</param>
public sealed record WireLimits(
    int FrameBytes,
    int Tensors,
    int TensorRank,
    int StringBytes,
    int ListItems,
    long FileBytes,
    int FileChunks,
    int FileChunkBytes,
    int Parts,
    int Window)
{
    /// <summary>
    /// reference.conf's values (a spec holds them equal), for what runs with no configuration: a decode without limits
    /// given, an assembler built by a spec, an actor system whose configuration lacks <c>pipeline.limits</c>.
    /// </summary>
    public static readonly WireLimits Default = new(
        FrameBytes: 128 << 20,
        Tensors: 256,
        TensorRank: 16,
        StringBytes: 64 << 10,
        ListItems: 65_536,
        FileBytes: 16L << 30,
        FileChunks: 1 << 20,
        FileChunkBytes: 1 << 20,
        Parts: 1024,
        Window: 4096);

    /// <summary>Reads <c>pipeline.limits</c>; a missing section gives <see cref="Default"/>, a bad value one sentence naming its key.</summary>
    public static WireLimits From(Config config)
    {
        if (!config.HasPath("pipeline.limits"))
        {
            return Default;
        }

        return new WireLimits(
            IntBytes(config, "frame-bytes", 1024),
            Count(config, "tensors", 1, 1 << 16),
            Count(config, "tensor-rank", 1, 64),
            IntBytes(config, "string-bytes", 256),
            Count(config, "list-items", 16, int.MaxValue),
            Bytes(config, "file-bytes", 1024, long.MaxValue),
            Count(config, "file-chunks", 1, int.MaxValue),
            IntBytes(config, "file-chunk-bytes", 1024),
            Count(config, "parts", 1, 1 << 16),
            Count(config, "window", 1, 1 << 20));
    }

    /// <summary>Refuses a count or length read from the wire that is negative or past <paramref name="limit"/>, before it is used.</summary>
    public static long Check(long value, long limit, string what)
    {
        if (value < 0 || value > limit)
        {
            throw new System.Runtime.Serialization.SerializationException(
                value < 0 ? $"{what} is {value}, a negative count." : $"{what} is {value}, past this node's limit of {limit}.");
        }

        return value;
    }

    private static int Count(Config config, string key, int min, int max)
    {
        var path = $"pipeline.limits.{key}";
        int value;
        try
        {
            value = config.GetInt(path);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new PipelineInputException($"{path} is '{config.GetString(path)}', not a whole number.");
        }

        return value >= min && value <= max
            ? value
            : throw new PipelineInputException($"{path} is {value}; give {min} to {max}.");
    }

    private static int IntBytes(Config config, string key, long min) => (int)Bytes(config, key, min, int.MaxValue);

    private static long Bytes(Config config, string key, long min, long max)
    {
        var path = $"pipeline.limits.{key}";
        long? value;
        try
        {
            value = config.GetByteSize(path);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new PipelineInputException($"{path} is '{config.GetString(path)}', not a size such as 64MiB.");
        }

        return value is { } v && v >= min && v <= max
            ? v
            : throw new PipelineInputException($"{path} is {config.GetString(path)}; give {min} bytes up to {max}.");
    }
}
