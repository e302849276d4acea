using System.Security.Cryptography;

namespace PipelineActors.Runtime.ControlPath.ModelDistribution;

/// <summary>
/// A node's content-addressed store of stage models: <c>SHA256.onnx</c> files whose bytes are
/// checked against their name before use, so a stale or corrupt copy is never loaded.
/// </summary>
public sealed class ModelCache
{
    private readonly HashSet<string> _verified = new(StringComparer.Ordinal);

    public ModelCache(string folder)
    {
        Folder = folder;
        Directory.CreateDirectory(folder);
    }

    public string Folder { get; }

    public string PathOf(string sha256) => Path.Combine(Folder, sha256 + ".onnx");

    /// <summary>True when a file with exactly these bytes is cached (hashed once per process).</summary>
    public bool Has(string sha256)
    {
        lock (_verified)
        {
            if (_verified.Contains(sha256))
            {
                return true;
            }
        }

        var path = PathOf(sha256);
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            string actual;
            using (var stream = File.OpenRead(path))
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
        }

        return true;
    }

    /// <summary>Stores fetched bytes after checking their hash; the file appears whole or not at all.</summary>
    public void Store(string sha256, string tempFile)
    {
        string actual;
        using (var stream = File.OpenRead(tempFile))
        {
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        if (actual != sha256)
        {
            File.Delete(tempFile);
            throw new InvalidDataException($"Fetched bytes hash to {actual}, not {sha256}.");
        }

        File.Move(tempFile, PathOf(sha256), overwrite: true);
        lock (_verified)
        {
            _verified.Add(sha256);
        }
    }

    public IReadOnlyList<string> CachedHashes()
    {
        lock (_verified)
        {
            return _verified.ToList();
        }
    }
}
