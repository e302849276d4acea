using PipelineActors.Onnx.Stages;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary><c>pipeline profile</c> and the measured balancing it feeds.</summary>
public sealed class ProfileCommandSpecs(TinyNetFile tinynet) : IClassFixture<TinyNetFile>, IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void A_saved_profile_balances_a_split()
    {
        var profile = _temp["p.json"];
        var measured = Cli.Run("profile", tinynet.Path, "--runs", "2", "--out", profile);

        Assert.True(measured.ExitCode == 0, measured.Error);
        Assert.Contains("pipelineactors.profile/1", File.ReadAllText(profile), StringComparison.Ordinal);
        Assert.Contains("whole model", measured.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(profile + ".partial"));

        var split = Cli.Run("split", tinynet.Path, "--profile", profile, "--parts", "2", "--out", _temp["out"]);

        Assert.True(split.ExitCode == 0, split.Error);
        var manifest = SplitManifest.Load(_temp["out"]);
        Assert.Contains("measured", manifest.CostBasis, StringComparison.Ordinal);
        Assert.Equal(2, manifest.Stages.Count);
    }

    [Fact]
    public void A_profile_of_another_model_is_refused()
    {
        var other = _temp["other.onnx"];
        Assert.Equal(0, Cli.Run("zoo", "tinynet", "--seed", "2", "--out", other).ExitCode);
        var profile = _temp["p.json"];
        Assert.Equal(0, Cli.Run("profile", other, "--runs", "1", "--out", profile).ExitCode);

        Cli.AssertUserError(Cli.Run("split", tinynet.Path, "--profile", profile, "--parts", "2", "--out", _temp["out"]), "another model");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void Measure_times_every_stage()
    {
        var result = Cli.Run("split", tinynet.Path, "--measure", "--runs", "2", "--parts", "2", "--out", _temp["out"]);

        Assert.True(result.ExitCode == 0, result.Error);
        var manifest = SplitManifest.Load(_temp["out"]);
        Assert.Contains("measured", manifest.CostBasis, StringComparison.Ordinal);
        Assert.All(manifest.Stages, s => Assert.True(s.MeasuredMs > 0, $"stage {s.Index}: {s.MeasuredMs}"));
    }
}
