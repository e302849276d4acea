using System.Security.Cryptography;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.ControlPath.ModelDistribution;

/// <summary>
/// A node's content-addressed store of stage models: <c>SHA256.onnx</c> files in a folder only this user may enter
/// (<see cref="PrivateFiles"/>). A name is used only when it is a SHA-256 (64 lowercase hex digits), so a hash from the
/// wire never becomes a path elsewhere; links in the folder are never followed; a model is checked against its name
/// each time it is loaded (<see cref="ReadVerified"/>), on the very bytes handed to ONNX Runtime. With a size limit,
/// storing a file evicts the least recently used others, never one a stage holds (<see cref="Use"/>).
/// </summary>
public sealed class ModelCache
{
    private readonly HashSet<string> _verified = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _lastUsed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _inUse = new(StringComparer.Ordinal);
    private long _clock;

    /// <param name="maxBytes">The most the cached models may take together (<c>pipeline.cache.max-bytes</c>); 0: no limit.</param>
    public ModelCache(string folder, long maxBytes = 0)
    {
        Folder = PrivateFiles.EnsureFolder(folder);
        MaxBytes = maxBytes;
    }

    public string Folder { get; }

    /// <summary>The size limit; 0 for none.</summary>
    public long MaxBytes { get; }

    /// <summary>True for a SHA-256 as this cache names files: exactly 64 lowercase hex digits.</summary>
    public static bool IsSha256(string? text) =>
        text is { Length: 64 } && text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    /// <summary>The file a SHA-256 is cached in; anything but a SHA-256 is refused, never made a path.</summary>
    public string PathOf(string sha256) =>
        IsSha256(sha256)
            ? Path.Combine(Folder, sha256 + ".onnx")
            : throw new InvalidDataException($"'{Shown(sha256)}' is not a SHA-256 (64 lowercase hex digits); no file is named after it.");

    /// <summary>True when a file with exactly these bytes is cached (hashed once per process; a link is no copy).</summary>
    public bool Has(string sha256)
    {
        if (!IsSha256(sha256))
        {
            return false;
        }

        var path = PathOf(sha256);
        lock (_verified)
        {
            if (_verified.Contains(sha256) && File.Exists(path) && !PrivateFiles.IsLink(path))
            {
                Touch(sha256);
                return true;
            }

            _verified.Remove(sha256);
        }

        if (!File.Exists(path) || PrivateFiles.IsLink(path))
        {
            return false; // a link in the cache is never trusted; a fetch replaces it with the real file
        }

        try
        {
            string actual;
            using (var stream = PrivateFiles.OpenRead(path, 1 << 16))
            {
                actual = Convert.ToHexStringLower(SHA256.HashData(stream));
            }

            if (actual != sha256)
            {
                File.Delete(path); // a corrupt or truncated copy: fetch it again
                return false;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // An unreadable copy is no copy: the fetch that follows says what the disk refuses, instead of this
            // exception taking the worker's agent (and the stages it knows) down with it.
            return false;
        }

        lock (_verified)
        {
            _verified.Add(sha256);
            Touch(sha256);
        }

        return true;
    }

    /// <summary>
    /// The bytes of <paramref name="path"/>, read once through a handle that refuses a link, and checked against
    /// <paramref name="sha256"/>: what is returned is what was hashed, so a file swapped after the check is never loaded.
    /// </summary>
    public static byte[] ReadVerified(string path, string sha256)
    {
        byte[] bytes;
        using (var stream = PrivateFiles.OpenRead(path, 1))
        {
            var length = stream.Length;
            if (length > Array.MaxLength)
            {
                throw new InvalidDataException($"The stage file {path} is {length} bytes, more than one model can be.");
            }

            bytes = new byte[length];
            stream.ReadExactly(bytes);
        }

        var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        return actual == sha256
            ? bytes
            : throw new InvalidDataException(
                $"The stage file {path} hashes to {actual}, not {sha256}: it changed after it was fetched; it is not loaded.");
    }

    /// <summary>Stores fetched bytes after checking their hash; the file appears whole or not at all. Then keeps to the size limit.</summary>
    public void Store(string sha256, string tempFile)
    {
        var path = PathOf(sha256);
        string actual;
        using (var stream = PrivateFiles.OpenRead(tempFile, 1 << 16))
        {
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        if (actual != sha256)
        {
            File.Delete(tempFile);
            throw new InvalidDataException($"Fetched bytes hash to {actual}, not {sha256}.");
        }

        File.Move(tempFile, path, overwrite: true); // a rename: replaces a link in its place, never writes through it
        lock (_verified)
        {
            _verified.Add(sha256);
            Touch(sha256);
        }

        Evict(keep: sha256);
    }

    /// <summary>Marks a model as held by a stage until the lease is disposed: eviction never takes it.</summary>
    public IDisposable Use(string sha256)
    {
        lock (_verified)
        {
            _inUse[sha256] = _inUse.GetValueOrDefault(sha256) + 1;
            Touch(sha256);
        }

        return new Lease(this, sha256);
    }

    public IReadOnlyList<string> CachedHashes()
    {
        lock (_verified)
        {
            return _verified.ToList();
        }
    }

    /// <summary>
    /// Deletes least recently used models until the rest fit <see cref="MaxBytes"/>, sparing <paramref name="keep"/> and
    /// every model in use; models no one touched in this process count as older than any that was, oldest write first.
    /// </summary>
    private void Evict(string keep)
    {
        if (MaxBytes <= 0)
        {
            return;
        }

        lock (_verified)
        {
            var files = new DirectoryInfo(Folder).EnumerateFiles("*.onnx")
                .Where(f => f.LinkTarget is null && IsSha256(Path.GetFileNameWithoutExtension(f.Name)))
                .Select(f => (File: f, Sha: Path.GetFileNameWithoutExtension(f.Name)))
                .ToList();
            var total = files.Sum(f => f.File.Length);
            var candidates = files
                .Where(f => f.Sha != keep && !_inUse.ContainsKey(f.Sha))
                .OrderBy(f => _lastUsed.GetValueOrDefault(f.Sha, -1))
                .ThenBy(f => f.File.LastWriteTimeUtc);
            foreach (var (file, sha) in candidates)
            {
                if (total <= MaxBytes)
                {
                    break;
                }

                try
                {
                    var length = file.Length; // read before the delete: a deleted file has no length to read
                    file.Delete();
                    total -= length;
                    _verified.Remove(sha);
                    _lastUsed.Remove(sha);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Left for the next eviction.
                }
            }
        }
    }

    private void Touch(string sha256) => _lastUsed[sha256] = ++_clock;

    private void Release(string sha256)
    {
        lock (_verified)
        {
            if (_inUse.TryGetValue(sha256, out var count) && count > 1)
            {
                _inUse[sha256] = count - 1;
            }
            else
            {
                _inUse.Remove(sha256);
            }
        }
    }

    private static string Shown(string text) => text.Length > 80 ? text[..80] + "..." : text;

    private sealed class Lease(ModelCache cache, string sha256) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                cache.Release(sha256);
            }
        }
    }
}
