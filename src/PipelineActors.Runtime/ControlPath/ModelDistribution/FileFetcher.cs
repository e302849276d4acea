using Akka.Actor;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.ControlPath.ModelDistribution;

/// <summary>Fetcher to its parent: the file is in the cache (or could not be fetched).</summary>
internal sealed record FileFetched(string Sha256, string? Error) : INoSerializationVerificationNeeded;

/// <summary>
/// Told to the fetcher's parent (through <c>WatchWith</c>) when the fetcher has stopped, whatever stopped it: one that
/// crashed sent no <see cref="FileFetched"/>, and whoever waits on its file must not wait for ever.
/// </summary>
internal sealed record FetcherStopped(string Sha256, IActorRef Fetcher) : INoSerializationVerificationNeeded;

/// <summary>How a fetcher retries when the node's disk refuses the file (full, read-only, no permission).</summary>
/// <param name="Tries">Writes of the whole file attempted before the fetch is given up, with its reason.</param>
/// <param name="FirstBackoff">The wait before the second try; each later wait doubles.</param>
internal sealed record FetchRetry(int Tries, TimeSpan FirstBackoff)
{
    /// <summary>Four tries over about 1.75 s: long enough for a brief fault to clear, short of the supervisor's deploy timeout.</summary>
    public static readonly FetchRetry Default = new(4, TimeSpan.FromMilliseconds(250));
}

/// <summary>
/// Fetches one stage file from a model store with a few chunk requests in flight, writes it to a
/// temporary file, verifies its hash and moves it into the cache. Re-asks for chunks that do not
/// arrive; gives up after a number of silent rounds. A write the disk refuses starts the file over
/// after a backoff, a bounded number of times, then fails the fetch with the disk's reason.
/// </summary>
internal sealed class FileFetcher : ReceiveActor, IWithTimers
{
    private const int Window = 8;
    private const string BackoffTimer = "backoff";
    private readonly ModelCache _cache;
    private readonly StageFile _file;
    private readonly IActorRef _store;
    private readonly FetchRetry _retry;
    private string _temp = string.Empty;
    private readonly SortedSet<int> _missing = [];
    private readonly HashSet<int> _asked = [];
    private FileStream? _output;
    private int _count = -1;
    private int _silentRounds;
    private int _tries;

    public FileFetcher(ModelCache cache, StageFile file, IActorRef store, FetchRetry retry)
    {
        _cache = cache;
        _file = file;
        _store = store;
        _retry = retry;
        Receive<FileChunk>(OnChunk);
        Receive<FileUnavailable>(_ => Finish("the model store does not have it"));
        Receive<StartTry>(_ => Begin());
        Receive<Tick>(_ =>
        {
            if (_output is null)
            {
                return; // waiting out a backoff: nothing is asked, so nothing is missed
            }

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

    public static Props Props(ModelCache cache, StageFile file, IActorRef store, FetchRetry? retry = null) =>
        Akka.Actor.Props.Create(() => new FileFetcher(cache, file, store, retry ?? FetchRetry.Default));

    protected override void PreStart()
    {
        if (!ModelCache.IsSha256(_file.Sha256))
        {
            // A hash from the wire names the file: anything else could name a path outside the cache (review S2).
            Finish("its name is not a SHA-256 (64 lowercase hex digits), so no file is made for it");
            return;
        }

        Timers.StartPeriodicTimer("retry", Tick.Instance, TimeSpan.FromSeconds(2));
        Begin();
    }

    protected override void PostStop() => Discard();

    /// <summary>One try: a fresh temporary file, and the first chunk asked for.</summary>
    private void Begin()
    {
        _tries++;
        _count = -1;
        _missing.Clear();
        _asked.Clear();
        _silentRounds = 0;
        try
        {
            // A fresh name per try, made new (O_EXCL): a file or link already there is never written through.
            _temp = _cache.PathOf(_file.Sha256) + $".{Guid.NewGuid():N}.partial";
            _output = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DiskRefused(e);
            return;
        }

        _store.Tell(new FetchFileChunk(_file.Sha256, 0));
        _asked.Add(0);
    }

    private void OnChunk(FileChunk chunk)
    {
        if (_output is null)
        {
            return; // a chunk of a try the disk cut short
        }

        _silentRounds = 0;
        if (chunk.Sha256 != _file.Sha256 || !Fits(chunk))
        {
            Finish($"the model store sent piece {chunk.Index} of {chunk.Count} ({chunk.Data.Length} bytes of {chunk.TotalBytes}), "
                + "which is not a piece of this file");
            return;
        }

        if (_count < 0)
        {
            _count = chunk.Count;
            for (var i = 0; i < _count; i++)
            {
                _missing.Add(i);
            }
        }

        try
        {
            if (_missing.Remove(chunk.Index))
            {
                _output.Position = (long)chunk.Index * ModelStoreActor.ChunkBytes;
                _output.Write(chunk.Data);
            }

            _asked.Remove(chunk.Index);
            if (_missing.Count == 0)
            {
                _output.Dispose();
                _output = null;
                _cache.Store(_file.Sha256, _temp);
                Finish(null);
                return;
            }
        }
        catch (InvalidDataException e)
        {
            Finish(e.Message);
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DiskRefused(e);
            return;
        }

        AskMore();
    }

    /// <summary>
    /// The piece agrees with the file's size (the plan's, when it gives one) and with the pieces before it: a count
    /// or size from the wire is checked before it makes a list or a write of its length.
    /// </summary>
    private bool Fits(FileChunk chunk)
    {
        var total = chunk.TotalBytes;
        var count = (int)Math.Max(1, Math.Min(int.MaxValue, (total + ModelStoreActor.ChunkBytes - 1) / ModelStoreActor.ChunkBytes));
        var expected = chunk.Index == count - 1 ? total - ((long)chunk.Index * ModelStoreActor.ChunkBytes) : ModelStoreActor.ChunkBytes;
        return total >= 0 && (_file.Bytes <= 0 || total == _file.Bytes) && chunk.Count == count && (_count < 0 || chunk.Count == _count)
            && chunk.Index >= 0 && chunk.Index < count && chunk.Data.Length == expected;
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

    /// <summary>The disk refused the file: start it over after a backoff, or give up with the disk's reason.</summary>
    private void DiskRefused(Exception e)
    {
        Discard();
        if (_tries >= _retry.Tries)
        {
            Finish($"the node's model cache ({_cache.Folder}) refused the file {_tries} times: {e.Message}");
            return;
        }

        var backoff = _retry.FirstBackoff * (1 << Math.Min(_tries - 1, 10));
        Timers.StartSingleTimer(BackoffTimer, StartTry.Instance, backoff);
    }

    /// <summary>Closes and deletes the temporary file of the current try, if it can.</summary>
    private void Discard()
    {
        try
        {
            _output?.Dispose();
        }
        catch (IOException)
        {
            // Flushing to a full disk fails too; the file is deleted below either way.
        }

        _output = null;
        try
        {
            if (_temp.Length > 0 && File.Exists(_temp))
            {
                File.Delete(_temp);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for the next try's FileMode.Create to overwrite, or for the operator.
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

    private sealed class StartTry
    {
        public static readonly StartTry Instance = new();
    }
}
