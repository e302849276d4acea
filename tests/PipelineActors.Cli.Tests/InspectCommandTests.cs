using System.Text.Json;

namespace PipelineActors.Cli.Tests;

/// <summary><c>pipeline inspect</c>: the table for people and the JSON for scripts.</summary>
public sealed class InspectCommandTests(TinyNetFile tinynet) : IClassFixture<TinyNetFile>
{
    [Fact]
    public void Json_lists_every_cut_with_the_bytes_its_tensors_take()
    {
        var result = Cli.Run("inspect", tinynet.Path, "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        var nodes = root.GetProperty("nodes").GetInt32();
        Assert.Equal(16, nodes);
        Assert.Equal("random (seeded, not trained)", root.GetProperty("weights").GetString());
        var cuts = root.GetProperty("cuts").EnumerateArray().ToList();
        Assert.Equal(Enumerable.Range(1, nodes - 1), cuts.Select(c => c.GetProperty("position").GetInt32()));
        foreach (var cut in cuts)
        {
            var tensors = cut.GetProperty("tensors").EnumerateArray().ToList();
            Assert.NotEmpty(tensors);
            foreach (var tensor in tensors)
            {
                Assert.Equal("float32", tensor.GetProperty("dtype").GetString());
                var elements = tensor.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
                Assert.Equal(elements * 4, tensor.GetProperty("bytes").GetInt64());
            }

            Assert.Equal(tensors.Sum(t => t.GetProperty("bytes").GetInt64()), cut.GetProperty("bytes").GetInt64());
        }
    }

    [Fact]
    public void Json_single_tensor_lists_only_cuts_that_carry_one_tensor()
    {
        var result = Cli.Run("inspect", tinynet.Path, "--json", "--single-tensor");

        Assert.True(result.ExitCode == 0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var cuts = json.RootElement.GetProperty("cuts").EnumerateArray().ToList();
        Assert.InRange(cuts.Count, 1, 14);
        Assert.All(cuts, c => Assert.Single(c.GetProperty("tensors").EnumerateArray()));
    }

    [Fact]
    public void A_zoo_model_is_said_to_have_random_weights()
    {
        var result = Cli.Run("inspect", tinynet.Path);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("weights: random (seeded, not trained)", result.Output, StringComparison.Ordinal);
        Assert.Contains("15 cuts listed", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_real_model_is_not_said_to_have_random_weights()
    {
        var result = Cli.Run("inspect", Repository.Model("paddleocr-text-det.onnx"), "--input", "x=1,3,160,160");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.DoesNotContain("random", result.Output, StringComparison.Ordinal);
        Assert.Contains("[1,3,160,160]", result.Output, StringComparison.Ordinal);
    }
}
