using System.Text;
using System.Text.Json;
using PipelineActors.Onnx;

namespace PipelineActors.Runtime.DataPath.Sink.Destinations;

/// <summary>
/// A JSON-lines results file (<see cref="ResultLine"/>) that a job appends to and never truncates, so a resumed job
/// continues it. On open it reads the frame id of the last complete line (<see cref="LastWrittenId"/>): the ingest
/// numbers new frames after it, and a frame with an id at or below it is not written again. A torn last line (the
/// process died mid-write) is cut off at the last newline, because appending after it would merge it with the next
/// result into one line that is not JSON; the frame it held was never confirmed written.
/// Each line reaches the operating system as it is written (another reader sees it at once), and the file is
/// synced to the disk at least once a second while lines come and on dispose. A write that fails (a full disk) is
/// cut back to the last whole line and thrown as one <see cref="IOException"/> for that frame; the next frame tries
/// again, so writing resumes when there is room.
/// </summary>
public sealed class JsonLinesFile : IResultDestination
{
    private static readonly TimeSpan SyncInterval = TimeSpan.FromSeconds(1);
    private readonly object _gate = new();
    private readonly FileStream _stream;
    private readonly Func<FrameOutcome, string> _format;
    private readonly Action<string> _report;
    private readonly Timer _syncTimer;
    private long _length; // bytes of whole lines in the file
    private bool _unsynced;
    private bool _syncFailing;
    private long _written;
    private long _failed;
    private long _skipped;
    private bool _disposed;

    private JsonLinesFile(string path, FileStream stream, Func<FrameOutcome, string> format, Action<string> report)
    {
        Path = path;
        _stream = stream;
        _format = format;
        _report = report;
        _syncTimer = new Timer(_ => SyncIfDue(), null, SyncInterval, SyncInterval);
    }

    /// <summary>The file's full path.</summary>
    public string Path { get; }

    public string Name => Path;

    /// <summary>The id of the last frame in the file (read on open, then each one written); null for a new or empty file.</summary>
    public long? LastWrittenId { get; private set; }

    /// <summary>Bytes of a torn last line cut off on open (0 when the file ended with a newline).</summary>
    public long TornBytesDropped { get; private set; }

    public ResultDestinationCounters Counters
    {
        get
        {
            lock (_gate)
            {
                return new ResultDestinationCounters(Name, _written, _failed, 0, 0, _skipped);
            }
        }
    }

    /// <summary>Opens (or creates) the file for appending; a folder that is missing or a file that cannot be opened is one sentence.</summary>
    public static JsonLinesFile Open(string path, Func<FrameOutcome, string> format, Action<string> report)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new PipelineInputException(
                $"The results file {full} is a folder; name a file in it, such as {System.IO.Path.Combine(full, "results.jsonl")}.");
        }

        var folder = System.IO.Path.GetDirectoryName(full);
        if (folder is not null && !Directory.Exists(folder))
        {
            throw new PipelineInputException($"The folder of the results file {full} does not exist; create it or name another file.");
        }

        FileStream stream;
        try
        {
            // Unbuffered: every line is one write to the OS, so a reader sees it at once and a failure belongs to one frame.
            stream = new FileStream(full, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.Read, BufferSize = 0,
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PipelineInputException(
                $"The results file {full} cannot be opened for writing ({e.Message.TrimEnd('.')}); check its permissions or name another file.");
        }

        var file = new JsonLinesFile(full, stream, format, report);
        try
        {
            file.ResumeAtEnd();
        }
        catch
        {
            file.Dispose();
            throw;
        }

        return file;
    }

    public void Write(FrameOutcome outcome)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (LastWrittenId is { } last && outcome.FrameId <= last)
            {
                _skipped++;
                return;
            }

            var bytes = Encoding.UTF8.GetBytes(_format(outcome) + "\n");
            try
            {
                _stream.Position = _length;
                _stream.Write(bytes);
            }
            catch (IOException e)
            {
                _failed++;
                CutBackToWholeLines();
                throw new IOException($"The results file {Path} could not take frame {outcome.FrameId}: {e.Message}", e);
            }

            _length += bytes.Length;
            _unsynced = true;
            _written++;
            LastWrittenId = outcome.FrameId;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _syncTimer.Dispose();
            Sync();
            _stream.Dispose();
        }
    }

    private void ResumeAtEnd()
    {
        var length = _stream.Length;
        var (lastLineStart, lastLineEnd, wholeLength) = LastCompleteLine(length);
        if (wholeLength < length)
        {
            TornBytesDropped = length - wholeLength;
            _stream.SetLength(wholeLength);
            _report($"results file {Path}: cut off a torn last line ({TornBytesDropped} bytes) that a crash left half-written");
        }

        _length = wholeLength;
        if (lastLineStart < 0)
        {
            return;
        }

        var line = new byte[lastLineEnd - lastLineStart];
        _stream.Position = lastLineStart;
        _stream.ReadExactly(line);
        LastWrittenId = FrameIdOf(line);
    }

    /// <summary>The last non-blank complete line's [start, end) and the length of the file's whole lines; start -1 when there is none.</summary>
    private (long Start, long End, long WholeLength) LastCompleteLine(long length)
    {
        // Read backwards in growing blocks until the last complete line is inside the block.
        for (var block = Math.Min(length, 64 * 1024L); ; block = Math.Min(length, block * 4))
        {
            var bytes = new byte[block];
            var offset = length - block;
            _stream.Position = offset;
            _stream.ReadExactly(bytes);
            var lastNewline = Array.LastIndexOf(bytes, (byte)'\n');
            if (lastNewline < 0 && block < length)
            {
                continue;
            }

            var wholeLength = lastNewline < 0 ? 0 : offset + lastNewline + 1;
            var end = lastNewline;
            while (end >= 0)
            {
                var start = end == 0 ? -1 : Array.LastIndexOf(bytes, (byte)'\n', end - 1);
                if (start < 0 && block < length)
                {
                    break; // the line may begin before this block
                }

                if (bytes.AsSpan(start + 1, end - start - 1).Trim(" \t\r"u8).Length > 0)
                {
                    return (offset + start + 1, offset + end, wholeLength);
                }

                end = start;
            }

            if (end < 0)
            {
                return (-1, -1, wholeLength);
            }
        }
    }

    private long FrameIdOf(byte[] line)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            if (json.RootElement.ValueKind == JsonValueKind.Object
                && json.RootElement.TryGetProperty(ResultLine.FrameIdField, out var id)
                && id.TryGetInt64(out var frameId))
            {
                return frameId;
            }
        }
        catch (JsonException)
        {
            // reported below
        }

        throw new PipelineInputException(
            $"The results file {Path} ends with a line that is not a result with a \"{ResultLine.FrameIdField}\" id, so a job cannot continue it; "
            + "move the file away or name another one.");
    }

    private void CutBackToWholeLines()
    {
        try
        {
            _stream.SetLength(_length);
        }
        catch (IOException)
        {
            // Shrinking a file frees space, so this rarely fails; if it does, the next open cuts the torn line.
        }
    }

    private void SyncIfDue()
    {
        lock (_gate)
        {
            if (!_disposed && _unsynced)
            {
                Sync();
            }
        }
    }

    private void Sync()
    {
        try
        {
            _stream.Flush(flushToDisk: true);
            _unsynced = false;
            if (_syncFailing)
            {
                _syncFailing = false;
                _report($"results file {Path}: syncing to the disk works again");
            }
        }
        catch (IOException e)
        {
            // The lines are with the OS already; only their durability across a power cut is in doubt.
            if (!_syncFailing)
            {
                _syncFailing = true;
                _report($"results file {Path}: cannot sync to the disk ({e.Message}); retrying every second");
            }
        }
    }
}
