using System.Diagnostics;
using PipelineActors.TestSupport;

namespace PipelineActors.Integration.Tests.Publishing;

/// <summary>
/// Both archives, made once by the real <c>tools/publish.sh --rid all</c> into a temporary folder and unpacked there:
/// publishing costs minutes on two cores, so every spec of <see cref="PublishArchiveSpecs"/> shares one run.
/// </summary>
public sealed class PublishedArchives : IAsyncLifetime
{
    public const string Version = "0.0.0-test";

    public static readonly string[] Rids = ["linux-arm64", "linux-x64"];

    public string Folder { get; } = Directory.CreateTempSubdirectory("pipelineactors-publish-").FullName;

    /// <summary>How long the one publish of both archives took (the figure the specs report).</summary>
    public TimeSpan PublishTime { get; private set; }

    public string PublishOutput { get; private set; } = string.Empty;

    public string Archive(string rid) => Path.Combine(Folder, $"pipelineactors-{Version}-{rid}.tar.gz");

    /// <summary>The folder an archive unpacks to, as a user would see it after <c>tar xzf</c>.</summary>
    public string Unpacked(string rid) => Path.Combine(Folder, "unpacked", rid, $"pipelineactors-{Version}-{rid}");

    public async Task InitializeAsync()
    {
        var clock = Stopwatch.StartNew();
        var publish = await ExternalProcess.Run(
            "bash",
            [Path.Combine(RepositoryFiles.Root, "tools", "publish.sh"), "--rid", "all", "--out", Folder, "--version", Version],
            TimeSpan.FromMinutes(25));
        PublishTime = clock.Elapsed;
        PublishOutput = publish.Output + publish.Error;
        if (publish.Code != 0)
        {
            throw new InvalidOperationException($"tools/publish.sh exited with {publish.Code}:\n{PublishOutput}");
        }

        foreach (var rid in Rids)
        {
            var into = Path.Combine(Folder, "unpacked", rid);
            Directory.CreateDirectory(into);
            var untar = await ExternalProcess.Run("tar", ["-xzf", Archive(rid), "-C", into], TimeSpan.FromMinutes(2));
            if (untar.Code != 0)
            {
                throw new InvalidOperationException($"tar could not unpack {Archive(rid)}: {untar.Error}");
            }
        }
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Folder, recursive: true);
        return Task.CompletedTask;
    }
}
