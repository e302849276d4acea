using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using PipelineActors.Onnx;

namespace PipelineActors.Runtime.Hosting;

/// <summary>
/// Folders only this user can enter and files opened without following links: where the model cache, the run's store
/// and the logs live, so another local user can neither read a model nor plant a link that makes this process read,
/// serve or append to a file of theirs choosing (review S3, S4).
/// </summary>
public static partial class PrivateFiles
{
    /// <summary>rwx for the owner only.</summary>
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int TypeMask = 0xF000;
    private const int TypeDirectory = 0x4000;
    private const int TypeLink = 0xA000;
    private const int ELoop = 40;
    private const int OReadOnly = 0;
    private const int OWriteOnly = 1;
    private const int OCreate = 0x40;
    private const int OAppend = 0x400;
    private const int OCloseOnExec = 0x80000;

    /// <summary>
    /// The folder for this user's run-time files (<c>pipeline run</c>'s store and logs, a client's log):
    /// <c>$XDG_RUNTIME_DIR/pipelineactors</c>, else <c>~/.local/share/pipelineactors/run</c>; never a fixed path in /tmp.
    /// </summary>
    public static string RunFolder()
    {
        var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return !string.IsNullOrEmpty(runtime) && Path.IsPathRooted(runtime) && Directory.Exists(runtime)
            ? Path.Combine(runtime, "pipelineactors")
            : Path.Combine(
                Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create),
                "pipelineactors",
                "run");
    }

    /// <summary>A log file's path in <see cref="RunFolder"/> (made private first): <c>NAME-PID.log</c>.</summary>
    public static string LogFile(string name) =>
        Path.Combine(EnsureFolder(RunFolder()), $"{name}-{Environment.ProcessId}.log");

    /// <summary>
    /// Makes <paramref name="folder"/> (and missing parents) with mode 0700, or checks the one that is there: a link, a
    /// file, another user's folder, or one inside a folder another user may change is refused in one sentence; a folder
    /// of this user's that others may enter is made 0700. Returns the full path.
    /// </summary>
    public static string EnsureFolder(string folder)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (!OperatingSystem.IsLinux())
        {
            Directory.CreateDirectory(full);
            return full;
        }

        CheckAncestors(full);
        if (Lstat(full) is null)
        {
            try
            {
                // Each missing level made 0700 (CreateDirectory gives the mode to the last one only).
                var missing = new Stack<string>();
                for (var level = full; !string.IsNullOrEmpty(level) && Lstat(level) is null; level = Path.GetDirectoryName(level))
                {
                    missing.Push(level);
                }

                while (missing.TryPop(out var level))
                {
                    Directory.CreateDirectory(level, OwnerOnly);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new PipelineInputException($"The folder {full} cannot be made ({e.Message.TrimEnd('.')}); name a folder this user may write.");
            }
        }

        var entry = Lstat(full) ?? throw new PipelineInputException($"The folder {full} vanished as it was made; name another folder.");
        if ((entry.Mode & TypeMask) == TypeLink)
        {
            throw new PipelineInputException($"{full} is a symbolic link, not a folder; remove it or name another folder.");
        }

        if ((entry.Mode & TypeMask) != TypeDirectory)
        {
            throw new PipelineInputException($"{full} is a file, not a folder; remove it or name another folder.");
        }

        var me = GetEffectiveUserId();
        if (entry.Uid != me)
        {
            throw new PipelineInputException(
                $"The folder {full} belongs to user {entry.Uid}, not to this user ({me}): they could read or replace what is in it; "
                + "remove it or name another folder.");
        }

        if ((entry.Mode & 0x3F) != 0)
        {
            File.SetUnixFileMode(full, OwnerOnly); // ours, but open to others: close it
        }

        return full;
    }

    /// <summary>True when <paramref name="path"/> is a symbolic link (checked without following it).</summary>
    public static bool IsLink(string path) =>
        OperatingSystem.IsLinux() ? Lstat(path) is { } entry && (entry.Mode & TypeMask) == TypeLink : new FileInfo(path).LinkTarget is not null;

    /// <summary>Opens a file for reading, refusing a symbolic link in its place (the open itself refuses it: no race).</summary>
    public static FileStream OpenRead(string path, int bufferSize = 4096, FileOptions options = FileOptions.None)
    {
        if (NoFollowFlag() is not { } noFollow)
        {
            RefuseLink(path);
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize, options);
        }

        return new FileStream(Open(path, OReadOnly | noFollow | OCloseOnExec, 0), FileAccess.Read, bufferSize);
    }

    /// <summary>Opens (or creates, mode 0600) a file for appending, refusing a symbolic link in its place.</summary>
    public static FileStream OpenAppend(string path)
    {
        if (NoFollowFlag() is not { } noFollow)
        {
            RefuseLink(path);
            return new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        }

        var stream = new FileStream(Open(path, OWriteOnly | OCreate | OAppend | noFollow | OCloseOnExec, 0x180), FileAccess.Write, 4096);
        stream.Seek(0, SeekOrigin.End);
        return stream;
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="bytes"/> whole: written to a new file of mode 0600 beside it
    /// (created exclusively, so neither a planted link nor a file of another user's is written through), then renamed over it,
    /// so a crash mid-write leaves the previous file and a reader never sees another user's permissions on it.
    /// </summary>
    public static void ReplaceWhole(string path, byte[] bytes)
    {
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        File.Delete(temporary); // one a crash left (a link is removed, not followed)
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temporary, options))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    private static void RefuseLink(string path)
    {
        if (new FileInfo(path).LinkTarget is not null)
        {
            throw new IOException($"{path} is a symbolic link; it is not followed.");
        }
    }

    private static SafeFileHandle Open(string path, int flags, int mode)
    {
        var fd = OpenFile(path, flags, mode);
        if (fd >= 0)
        {
            return new SafeFileHandle(fd, ownsHandle: true);
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == ELoop)
        {
            throw new IOException($"{path} is a symbolic link; it is not followed.");
        }

        var message = Marshal.GetPInvokeErrorMessage(errno);
        throw errno switch
        {
            2 => new FileNotFoundException($"Could not find file '{path}'.", path),
            13 or 1 => new UnauthorizedAccessException($"Access to the path '{path}' is denied ({message})."),
            _ => new IOException($"{path}: {message}"),
        };
    }

    /// <summary>O_NOFOLLOW where its value is known (it differs between x86 and ARM); null: check, then open.</summary>
    private static int? NoFollowFlag() =>
        !OperatingSystem.IsLinux() ? null
        : RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 or Architecture.X86 => 0x20000,
            Architecture.Arm64 or Architecture.Arm => 0x8000,
            _ => null,
        };

    /// <summary>
    /// Every folder above <paramref name="full"/> must be root's or this user's, and writable by others only when sticky
    /// (as /tmp is): otherwise its owner could move this folder away and put a link in its place.
    /// </summary>
    private static void CheckAncestors(string full)
    {
        var me = GetEffectiveUserId();
        for (var parent = Path.GetDirectoryName(full); !string.IsNullOrEmpty(parent); parent = Path.GetDirectoryName(parent))
        {
            if (Stat(parent) is not { } entry)
            {
                continue; // made below, by this user
            }

            var othersWrite = (entry.Mode & 0x12) != 0;
            var sticky = (entry.Mode & 0x200) != 0;
            if ((entry.Uid != 0 && entry.Uid != me) || (othersWrite && !sticky))
            {
                throw new PipelineInputException(
                    $"The folder {full} is inside {parent}, which another user may change; name a folder under your home or $XDG_RUNTIME_DIR.");
            }
        }
    }

    private sealed record Entry(int Mode, uint Uid);

    private static Entry? Lstat(string path) => StatOf(path, AtSymlinkNoFollow);

    private static Entry? Stat(string path) => StatOf(path, 0);

    private static Entry? StatOf(string path, int flags)
    {
        // struct statx has one layout on every Linux architecture (struct stat does not): stx_uid at 20, stx_mode at 28.
        var buffer = new byte[256];
        if (Statx(AtFdCwd, path, flags, StatxBasicStats, buffer) != 0)
        {
            return null;
        }

        return new Entry(BitConverter.ToUInt16(buffer, 28), BitConverter.ToUInt32(buffer, 20));
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, [Out] byte[] buffer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags, int mode);
}
