using System.Diagnostics;
using Akka.Configuration;
using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.Tests.Hosting;

/// <summary>
/// Where the cache, the run's store and the logs live (review S3, S4): folders only this user may enter, made or
/// checked; links refused; never a fixed folder in /tmp.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PrivateFilesSpecs : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("pa-private-").FullName;

    [Fact]
    public void A_new_folder_and_its_missing_parents_are_made_for_this_user_only()
    {
        var folder = PrivateFiles.EnsureFolder(Path.Combine(_root, "a", "b"));

        Assert.Equal(PrivateFiles.OwnerOnly, File.GetUnixFileMode(folder));
        Assert.Equal(PrivateFiles.OwnerOnly, File.GetUnixFileMode(Path.Combine(_root, "a")));
    }

    [Fact]
    public void A_folder_of_this_users_that_others_may_enter_is_closed_to_them()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_root, "open")).FullName;
        File.SetUnixFileMode(folder, (UnixFileMode)0x1FF); // 0777

        PrivateFiles.EnsureFolder(folder);

        Assert.Equal(PrivateFiles.OwnerOnly, File.GetUnixFileMode(folder));
    }

    [Fact]
    public void A_folder_that_is_a_link_is_refused_in_one_sentence()
    {
        var real = Directory.CreateDirectory(Path.Combine(_root, "real")).FullName;
        var link = Path.Combine(_root, "store");
        Directory.CreateSymbolicLink(link, real);

        var e = Assert.Throws<PipelineInputException>(() => PrivateFiles.EnsureFolder(link));

        Assert.Contains("is a symbolic link", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_folder_that_belongs_to_another_user_is_refused_in_one_sentence()
    {
        // As another local user would have pre-created it (the tests run as root, who may give a folder away).
        var planted = Directory.CreateDirectory(Path.Combine(_root, "planted")).FullName;
        File.SetUnixFileMode(planted, PrivateFiles.OwnerOnly);
        Chown("65534", planted);

        var e = Assert.Throws<PipelineInputException>(() => PrivateFiles.EnsureFolder(planted));

        Assert.Contains("belongs to user 65534", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_inside_one_that_others_may_change_is_refused()
    {
        // The shape of the old /tmp/pipelineactors: made by whoever came first, writable by all, not sticky.
        var shared = Directory.CreateDirectory(Path.Combine(_root, "pipelineactors")).FullName;
        File.SetUnixFileMode(shared, (UnixFileMode)0x1FF);

        var e = Assert.Throws<PipelineInputException>(() => PrivateFiles.EnsureFolder(Path.Combine(shared, "store")));

        Assert.Contains("which another user may change", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(shared, "store")));
    }

    [Fact]
    public void A_log_file_planted_as_a_link_is_never_written_through()
    {
        var target = Path.Combine(_root, "victims-file");
        File.WriteAllText(target, "untouched\n");
        var log = Path.Combine(_root, "run-1.log");
        File.CreateSymbolicLink(log, target);

        Assert.Throws<IOException>(() => PrivateFiles.OpenAppend(log));
        var settings = Assert.Throws<PipelineInputException>(
            () => PipelineSettings.From(ConfigurationFactory.ParseString($"pipeline.log-file = \"{log}\"").WithFallback(PipelineConfig.Reference)));

        Assert.Contains("is a symbolic link", settings.Message, StringComparison.Ordinal);
        Assert.Equal("untouched\n", File.ReadAllText(target));
    }

    [Fact]
    public void A_new_log_file_is_made_readable_by_this_user_only_and_appended_to()
    {
        var log = Path.Combine(_root, "run-2.log");
        using (var first = new StreamWriter(PrivateFiles.OpenAppend(log)))
        {
            first.WriteLine("one");
        }

        using (var second = new StreamWriter(PrivateFiles.OpenAppend(log)))
        {
            second.WriteLine("two");
        }

        Assert.Equal(["one", "two"], File.ReadAllLines(log));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(log));
    }

    [Fact]
    public void The_run_folder_is_no_fixed_folder_in_tmp()
    {
        var folder = PrivateFiles.RunFolder();

        Assert.NotEqual(Path.Combine(Path.GetTempPath(), "pipelineactors"), folder);
        Assert.False(folder.StartsWith("/tmp/", StringComparison.Ordinal), folder);
    }

    private static void Chown(string user, string path)
    {
        using var chown = Process.Start(new ProcessStartInfo("chown", [user, path]) { RedirectStandardError = true, UseShellExecute = false })!;
        chown.WaitForExit();
        Assert.True(chown.ExitCode == 0, $"chown {user} {path} failed (these tests run as root): {chown.StandardError.ReadToEnd()}");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
