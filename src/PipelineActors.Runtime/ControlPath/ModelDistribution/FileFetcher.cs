using Akka.Actor;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.ControlPath.ModelDistribution;

/// <summary>Fetcher to its parent: the file is in the cache (or could not be fetched).</summary>
internal sealed record FileFetched(string Sha256, string? Error) : INoSerializationVerificationNeeded;

/// <summary>
/// Fetches one stage file from a model store with a few chunk requests in flight, writes it to a
/// temporary file, verifies its hash and moves it into the cache. Re-asks for chunks that do not
/// arrive; gives up after a number of silent rounds.
/// </summary>
internal sealed class FileFetcher : ReceiveActor, IWithTimers
{
    private const int Window = 8;
    private readonly ModelCache _cache;
    private readonly StageFile _file;
    private readonly IActorRef _store;
    private readonly string _temp;
    private readonly SortedSet<int> _missing = [];
    private readonly HashSet<int> _asked = [];
    private FileStream? _output;
    private int _count = -1;
    private int _silentRounds;

    public FileFetcher(ModelCache cache, StageFile file, IActorRef store)
    {
        _cache = cache;
        _file = file;
        _store = store;
        _temp = cache.PathOf(file.Sha256) + $".{Guid.NewGuid():N}.partial";
        Receive<FileChunk>(OnChunk);
        Receive<FileUnavailable>(_ => Finish("the model store does not have it"));
        Receive<Tick>(_ =>
        {
            if (++_silentRounds > 10)
            {
                Finish("the model store stopped answering");
                return;
            }

            _asked.Clear();
            AskMore();
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ModelCache cache, StageFile file, IActorRef store) =>
        Akka.Actor.Props.Create(() => new FileFetcher(cache, file, store));

    protected override void PreStart()
    {
        _output = new FileStream(_temp, FileMode.Create, FileAccess.Write, FileShare.None);
        _store.Tell(new FetchFileChunk(_file.Sha256, 0));
        _asked.Add(0);
        Timers.StartPeriodicTimer("retry", Tick.Instance, TimeSpan.FromSeconds(2));
    }

    protected override void PostStop()
    {
        _output?.Dispose();
        if (File.Exists(_temp))
        {
            File.Delete(_temp);
        }
    }

    private void OnChunk(FileChunk chunk)
    {
        _silentRounds = 0;
        if (_count < 0)
        {
            _count = chunk.Count;
            for (var i = 0; i < _count; i++)
            {
                _missing.Add(i);
            }
        }

        if (_missing.Remove(chunk.Index))
        {
            _output!.Position = (long)chunk.Index * ModelStoreActor.ChunkBytes;
            _output.Write(chunk.Data);
        }

        _asked.Remove(chunk.Index);
        if (_missing.Count == 0)
        {
            _output!.Dispose();
            _output = null;
            try
            {
                _cache.Store(_file.Sha256, _temp);
                Finish(null);
            }
            catch (InvalidDataException e)
            {
                Finish(e.Message);
            }

            return;
        }

        AskMore();
    }

    private void AskMore()
    {
        foreach (var index in _missing)
        {
            if (_asked.Count >= Window)
            {
                break;
            }

            if (_asked.Add(index))
            {
                _store.Tell(new FetchFileChunk(_file.Sha256, index));
            }
        }
    }

    private void Finish(string? error)
    {
        Context.Parent.Tell(new FileFetched(_file.Sha256, error));
        Context.Stop(Self);
    }

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}
