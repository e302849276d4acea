using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx.Stages;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary><c>pipeline split</c> on tinynet: the files, the manifest, and the stages chained.</summary>
public sealed partial class SplitCommandSpecs(TinyNetFile tinynet) : IClassFixture<TinyNetFile>, IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Three_parts_write_three_stage_models_and_a_manifest()
    {
        var result = Cli.Run("split", tinynet.Path, "--parts", "3", "--out", _temp["out"]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal("", result.Error);
        Assert.Equal(
            ["manifest.json", "stage-00.onnx", "stage-01.onnx", "stage-02.onnx"],
            Directory.EnumerateFiles(_temp["out"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path, ".out.partial-*"));
        Assert.Contains("wrote 3 stages", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_manifest_cites_each_stage_file_by_its_SHA_256_and_size()
    {
        Assert.Equal(0, Cli.Run("split", tinynet.Path, "--parts", "3", "--out", _temp["out"]).ExitCode);
        var manifest = SplitManifest.Load(_temp["out"]);

        Assert.Equal(SplitManifest.CurrentFormat, manifest.Format);
        Assert.Equal("tinynet.onnx", manifest.SourceModel);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(tinynet.Path))), manifest.SourceSha256);
        Assert.Equal(3, manifest.Stages.Count);
        foreach (var stage in manifest.Stages)
        {
            var bytes = File.ReadAllBytes(Path.Combine(_temp["out"], stage.File));
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), stage.Sha256);
            Assert.Equal(bytes.LongLength, stage.FileBytes);
        }
    }

    [Fact]
    public void Each_boundary_carries_exactly_what_the_next_stage_reads()
    {
        Assert.Equal(0, Cli.Run("split", tinynet.Path, "--parts", "3", "--out", _temp["out"]).ExitCode);
        var manifest = SplitManifest.Load(_temp["out"]);

        Assert.Equal(manifest.Stages.Count - 1, manifest.Boundaries.Count);
        for (var i = 0; i < manifest.Boundaries.Count; i++)
        {
            var boundary = manifest.Boundaries[i];
            var before = manifest.Stages[i];
            var after = manifest.Stages[i + 1];
            Assert.Equal(boundary.Position, before.EndNode);
            Assert.Equal(boundary.Position, after.FirstNode);

            var carried = boundary.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal).ToList();
            var read = after.Inputs.Concat(after.Forwarded).Select(t => t.Name).Distinct().Order(StringComparer.Ordinal).ToList();
            Assert.Equal(carried, read);
            Assert.Equal(boundary.Tensors.Sum(t => t.Bytes), boundary.Bytes);

            // The stage files agree with the manifest: the next stage's graph inputs are the boundary's tensors.
            var next = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(_temp["out"], after.File)));
            Assert.Equal(after.Inputs.Select(t => t.Name), next.Graph.Input.Select(t => t.Name));
            var previous = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(_temp["out"], before.File)));
            Assert.Subset(previous.Graph.Output.Select(t => t.Name).ToHashSet(), after.Inputs.Select(t => t.Name).ToHashSet());
        }

        Assert.Equal(["logits"], manifest.Stages[^1].Outputs.Select(t => t.Name));
    }

    [Fact]
    public void Verify_reports_a_difference_within_one_in_a_hundred_thousand()
    {
        var result = Cli.Run("split", tinynet.Path, "--parts", "3", "--out", _temp["out"], "--verify");

        Assert.True(result.ExitCode == 0, result.Error);
        var match = VerifyLine().Match(result.Output);
        Assert.True(match.Success, result.Output);
        var plain = double.Parse(match.Groups["plain"].Value, CultureInfo.InvariantCulture);
        var optimized = double.Parse(match.Groups["optimized"].Value, CultureInfo.InvariantCulture);
        Assert.InRange(plain, 0, 1e-5);
        Assert.InRange(optimized, 0, 1e-5);
    }

    [Fact]
    public void Explicit_cuts_write_exactly_those_boundaries()
    {
        var result = Cli.Run("split", tinynet.Path, "--cuts", "4, 11", "--out", _temp["out"]);

        Assert.True(result.ExitCode == 0, result.Error);
        var manifest = SplitManifest.Load(_temp["out"]);
        Assert.Equal([4, 11], manifest.Boundaries.Select(b => b.Position));
        Assert.Equal([0, 4, 11], manifest.Stages.Select(s => s.FirstNode));
        Assert.Equal([4, 11, 16], manifest.Stages.Select(s => s.EndNode));
        Assert.Equal("given cuts", manifest.CostBasis);
    }

    [Fact]
    public void Force_replaces_an_earlier_split()
    {
        Assert.Equal(0, Cli.Run("split", tinynet.Path, "--parts", "3", "--out", _temp["out"]).ExitCode);
        Assert.Equal(2, Cli.Run("split", tinynet.Path, "--parts", "2", "--out", _temp["out"]).ExitCode);
        Assert.Equal(3, SplitManifest.Load(_temp["out"]).Stages.Count);

        var result = Cli.Run("split", tinynet.Path, "--parts", "2", "--out", _temp["out"], "--force");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal(2, SplitManifest.Load(_temp["out"]).Stages.Count);
        Assert.Equal(
            ["manifest.json", "stage-00.onnx", "stage-01.onnx"],
            Directory.EnumerateFiles(_temp["out"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path, ".out.partial-*"));
    }

    [Fact]
    public void An_empty_out_folder_is_used_without_force()
    {
        Directory.CreateDirectory(_temp["out"]);
        var result = Cli.Run("split", tinynet.Path, "--parts", "2", "--out", _temp["out"]);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal(2, SplitManifest.Load(_temp["out"]).Stages.Count);
    }

    [GeneratedRegex(
        @"max \|difference\| / max \|output\|: (?<plain>[0-9.E+-]+) with ONNX Runtime optimizations off \([^)]*\), "
        + @"(?<optimized>[0-9.E+-]+) with them on",
        RegexOptions.Singleline)]
    private static partial Regex VerifyLine();
}
