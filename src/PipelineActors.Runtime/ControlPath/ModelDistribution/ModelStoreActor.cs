using Akka.Actor;
using Akka.Event;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.ControlPath.ModelDistribution;

/// <summary>
/// Serves stage model files by SHA-256, in pieces of at most 64 KiB so that a 100 MB model never
/// travels as one remote message. Runs on the node that made the plan. Over TLS it serves only members that have proven
/// by certificate a role that runs models (worker, ingest, or the coordinator that splits a submitted one); a monitor, or
/// a member not proven yet, is answered as if the file were not here.
/// </summary>
public sealed class ModelStoreActor : ReceiveActor, IWithTimers
{
    public const int ChunkBytes = 64 * 1024;

    /// <summary>The roles that may receive model and stage files; the monitor role gets reports only.</summary>
    public static readonly string[] RolesServed = [Roles.Worker, Roles.Ingest, Roles.Coordinator];

    // Ten seconds for a new member's proof to reach this node's guard (a proof takes about a second).
    private const int ProofChecks = 20;

    private long _waits;

    private readonly Func<string, string?> _pathOf;
    private readonly ProvenRoles _proven = ProvenRoles.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();

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
        Receive<FetchFileChunk>(request => Serve(request, Sender, 0));
        Receive<AwaitingProof>(waiting => Serve(waiting.Request, waiting.Asker, waiting.Checks));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private void Serve(FetchFileChunk request, IActorRef sender, int checks)
    {
        if (_proven.Pending(sender.Path.Address) && checks < ProofChecks)
        {
            // A member that has just joined may ask before this node's guard has its proof: wait for the verdict.
            Timers.StartSingleTimer(++_waits, new AwaitingProof(request, sender, checks + 1), TimeSpan.FromMilliseconds(500));
            return;
        }

        if (!_proven.Allows(sender.Path.Address, RolesServed))
        {
            _log.Warning(
                "Refused a piece of {0} to {1}: its member has not proven a role that runs models ({2}) by certificate",
                request.Sha256.Length > 64 ? request.Sha256[..64] : request.Sha256,
                sender.Path.Address,
                string.Join(", ", RolesServed));
            sender.Tell(new FileUnavailable(request.Sha256));
            return;
        }

        if (_pathOf(request.Sha256) is not { } path || !File.Exists(path))
        {
            sender.Tell(new FileUnavailable(request.Sha256));
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
                _log.Warning("The model store does not serve {0}: {1}", path, e.Message);
                sender.Tell(new FileUnavailable(request.Sha256));
                return;
            }
        }

        var total = stream.Length;
        var count = (int)Math.Max(1, (total + ChunkBytes - 1) / ChunkBytes);
        if (request.Index < 0 || request.Index >= count)
        {
            sender.Tell(new FileUnavailable(request.Sha256));
            return;
        }

        var offset = (long)request.Index * ChunkBytes;
        var data = new byte[(int)Math.Min(ChunkBytes, total - offset)];
        stream.Position = offset;
        stream.ReadExactly(data);
        sender.Tell(new FileChunk(request.Sha256, request.Index, count, total, data));
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

    private sealed record AwaitingProof(FetchFileChunk Request, IActorRef Asker, int Checks);
}
