using Akka.Actor;
using Akka.Event;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.ControlPath.ModelDistribution;

/// <summary>
/// Serves stage model files by SHA-256, in pieces of at most 64 KiB so that a 100 MB model never
/// travels as one remote message. Runs on the node that made the plan.
/// </summary>
public sealed class ModelStoreActor : ReceiveActor
{
    public const int ChunkBytes = 64 * 1024;

    private readonly Func<string, string?> _pathOf;

    // A 100 MB model is ~1,600 pieces per worker: open each file once, not once per piece.
    private readonly Dictionary<string, FileStream> _open = new(StringComparer.Ordinal);

    public ModelStoreActor(IReadOnlyDictionary<string, string> filesBySha)
        : this(new Dictionary<string, string>(filesBySha, StringComparer.Ordinal).GetValueOrDefault)
    {
    }

    /// <summary>Serves whatever <paramref name="pathOf"/> finds for a SHA-256 (null: not here).</summary>
    public ModelStoreActor(Func<string, string?> pathOf)
    {
        _pathOf = pathOf;
        Receive<FetchFileChunk>(request =>
        {
            if (_pathOf(request.Sha256) is not { } path || !File.Exists(path))
            {
                Sender.Tell(new FileUnavailable(request.Sha256));
                return;
            }

            if (!_open.TryGetValue(request.Sha256, out var stream))
            {
                try
                {
                    // Never through a link: one planted in the store's folder would serve any file this user can read.
                    _open[request.Sha256] = stream = PrivateFiles.OpenRead(path, 1, FileOptions.RandomAccess);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Context.GetLogger().Warning("The model store does not serve {0}: {1}", path, e.Message);
                    Sender.Tell(new FileUnavailable(request.Sha256));
                    return;
                }
            }

            var total = stream.Length;
            var count = (int)Math.Max(1, (total + ChunkBytes - 1) / ChunkBytes);
            if (request.Index < 0 || request.Index >= count)
            {
                Sender.Tell(new FileUnavailable(request.Sha256));
                return;
            }

            var offset = (long)request.Index * ChunkBytes;
            var data = new byte[(int)Math.Min(ChunkBytes, total - offset)];
            stream.Position = offset;
            stream.ReadExactly(data);
            Sender.Tell(new FileChunk(request.Sha256, request.Index, count, total, data));
        });
    }

    protected override void PostStop()
    {
        foreach (var stream in _open.Values)
        {
            stream.Dispose();
        }
    }

    public static Props Props(IReadOnlyDictionary<string, string> filesBySha) =>
        Akka.Actor.Props.Create(() => new ModelStoreActor(filesBySha));

    /// <summary>A store over a node's cache: every model it holds, checked against its SHA-256 before it is served.</summary>
    public static Props Props(ModelCache cache) =>
        Akka.Actor.Props.Create(() => new ModelStoreActor(sha => ModelCache.IsSha256(sha) && cache.Has(sha) ? cache.PathOf(sha) : null));
}
