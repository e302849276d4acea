using Google.Protobuf;
using PipelineActors.Onnx.Proto;
using PipelineActors.TestSupport;

namespace PipelineActors.Cli.Tests;

/// <summary>
/// Every mistake a user can make on the command line ends in one <c>error:</c> sentence naming
/// the thing, exit code 2, no stack trace, and nothing written.
/// </summary>
public sealed class UserErrorSpecs(TinyNetFile tinynet) : IClassFixture<TinyNetFile>, IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private CliResult SplitInto(string model, params string[] rest) =>
        Cli.Run(["split", model, "--out", _temp["out"], .. rest]);

    [Fact]
    public void A_model_file_that_does_not_exist_is_named()
    {
        var missing = _temp["nosuch.onnx"];
        Cli.AssertUserError(Cli.Run("inspect", missing), "No such model file", missing);
        Cli.AssertUserError(SplitInto(missing, "--parts", "2"), missing);
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void A_folder_given_as_the_model_is_named()
    {
        Cli.AssertUserError(Cli.Run("inspect", _temp.Path), _temp.Path, "folder");
        Cli.AssertUserError(SplitInto(_temp.Path, "--parts", "2"), "folder");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void An_empty_file_is_named()
    {
        var empty = _temp["empty.onnx"];
        File.WriteAllBytes(empty, []);
        Cli.AssertUserError(Cli.Run("inspect", empty), empty, "empty");
        Cli.AssertUserError(SplitInto(empty, "--parts", "2"), "empty");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Theory]
    [InlineData("picture.png", new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1,
        0, 0, 0, 1, 8, 6, 0, 0, 0 })]
    [InlineData("notes.txt", new byte[] { (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o', (byte)'\n' })]
    public void A_file_of_another_format_is_not_an_onnx_model(string name, byte[] bytes)
    {
        var path = _temp[name];
        File.WriteAllBytes(path, bytes);
        Cli.AssertUserError(Cli.Run("inspect", path), path, "not an ONNX model");
        Cli.AssertUserError(SplitInto(path, "--parts", "2"), "not an ONNX model");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Theory]
    [InlineData(0.25)]
    [InlineData(0.5)]
    [InlineData(0.75)]
    [InlineData(0.99999)]
    public void A_truncated_model_that_does_not_parse_is_named(double keep)
    {
        var bytes = File.ReadAllBytes(RepositoryFiles.Model("blazeface-back-256.onnx"));
        var prefix = bytes[..(int)(bytes.Length * keep)];
        Assert.Throws<InvalidProtocolBufferException>(() => ModelProto.Parser.ParseFrom(prefix));
        var path = _temp["cut.onnx"];
        File.WriteAllBytes(path, prefix);

        Cli.AssertUserError(Cli.Run("inspect", path), path, "truncated");
        Cli.AssertUserError(SplitInto(path, "--parts", "2"), "truncated");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void A_truncated_model_that_still_parses_gives_a_clean_error_or_works()
    {
        // Protobuf accepts a prefix that ends between top-level fields: here the opset import
        // and the metadata that follow the graph.
        var bytes = File.ReadAllBytes(tinynet.Path);
        var parsing = Enumerable.Range(bytes.Length - 200, 199)
            .Where(length => TryParse(bytes[..length]) is not null)
            .ToList();
        Assert.NotEmpty(parsing);
        Assert.Contains(parsing, length => TryParse(bytes[..length])!.OpsetImport.Count == 0);

        foreach (var length in parsing)
        {
            var path = _temp["cut.onnx"];
            File.WriteAllBytes(path, bytes[..length]);
            var result = SplitInto(path, "--parts", "2", "--verify");
            Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
            if (TryParse(bytes[..length])!.OpsetImport.Count == 0)
            {
                Cli.AssertUserError(result, path, "truncated");
                _temp.AssertNoSplitLeftBehind("out");
            }
            else
            {
                Assert.True(result.ExitCode == 0, result.Error);
                Directory.Delete(_temp["out"], recursive: true);
            }
        }
    }

    [Theory]
    [InlineData("0")]
    [InlineData("16")]
    [InlineData("99999")]
    [InlineData("3,99999")]
    public void A_cut_that_does_not_exist_is_named(string cuts)
    {
        var missing = cuts.Split(',')[^1];
        Cli.AssertUserError(SplitInto(tinynet.Path, "--cuts", cuts), $"no cut {missing}", "1 to 15");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Theory]
    [InlineData("x")]
    [InlineData("3,,b")]
    [InlineData(",")]
    public void Cuts_that_are_not_numbers_are_named(string cuts)
    {
        Cli.AssertUserError(SplitInto(tinynet.Path, "--cuts", cuts), "--cuts");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void More_parts_than_the_model_has_cuts_are_refused()
    {
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "17"), "--parts 17", "at most 16");
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "0"), "--parts");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void Parts_and_cuts_together_are_refused()
    {
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "2", "--cuts", "3"), "--parts", "--cuts");
        Cli.AssertUserError(SplitInto(tinynet.Path), "--parts", "--cuts");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Theory]
    [InlineData("5,3", "3 follows 5")]
    [InlineData("3,3", "3 follows 3")]
    public void Cuts_that_do_not_increase_are_refused(string cuts, string naming)
    {
        Cli.AssertUserError(SplitInto(tinynet.Path, "--cuts", cuts), "must increase", naming);
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Theory]
    [InlineData("input=1,3,32")]
    [InlineData("input=1,3,32,32,1")]
    [InlineData("input=1,3,64,64")]
    [InlineData("input=2,3,32,32")]
    public void An_input_size_that_does_not_fit_the_model_is_named(string size)
    {
        Cli.AssertUserError(Cli.Run("inspect", tinynet.Path, "--input", size), size, "input[1,3,32,32]");
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "2", "--input", size), size);
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Theory]
    [InlineData("input", "NAME=1,3,224,224")]
    [InlineData("input=1,3,0,32", "'0' where a positive whole number belongs")]
    [InlineData("input=1,3,a,32", "'a' where a positive whole number belongs")]
    public void An_input_size_that_is_not_a_size_is_named(string size, string naming)
    {
        Cli.AssertUserError(Cli.Run("inspect", tinynet.Path, "--input", size), $"'{size}'", naming);
    }

    [Fact]
    public void A_dynamic_model_without_an_input_size_asks_for_one()
    {
        var model = RepositoryFiles.Model("paddleocr-text-det.onnx");
        Cli.AssertUserError(Cli.Run("inspect", model), "dynamic dimension", "--input x=");
        Cli.AssertUserError(SplitInto(model, "--parts", "2"), "--input x=");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void An_input_size_for_a_name_the_model_lacks_is_named()
    {
        Cli.AssertUserError(Cli.Run("inspect", tinynet.Path, "--input", "image=1,3,32,32"), "no input named 'image'", "input[1,3,32,32]");
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "2", "--input", "image=1,3,32,32"), "'image'");
        _temp.AssertNoSplitLeftBehind("out");
    }

    [Fact]
    public void An_unknown_zoo_name_is_named_with_the_choices()
    {
        var path = _temp["x.onnx"];
        Cli.AssertUserError(Cli.Run("zoo", "resnet9000", "--out", path), "'resnet9000'", "tinynet");
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void An_out_folder_that_is_not_empty_is_kept_without_force()
    {
        var folder = Directory.CreateDirectory(_temp["out"]).FullName;
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "mine");
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "2"), folder, "--force");
        Assert.Equal(["notes.txt"], Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path, ".out.partial-*"));
    }

    [Fact]
    public void Force_does_not_replace_a_folder_that_holds_files_split_did_not_write()
    {
        // '--out . --force' in the model's own folder used to delete the model.
        var folder = Directory.CreateDirectory(_temp["out"]).FullName;
        var model = Path.Combine(folder, "tinynet.onnx");
        File.Copy(tinynet.Path, model);
        Cli.AssertUserError(Cli.Run("split", model, "--parts", "2", "--out", folder, "--force"), "tinynet.onnx", "--force");
        Assert.Equal(["tinynet.onnx"], Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path, ".out.partial-*"));
    }

    [Fact]
    public void An_out_path_that_is_a_file_is_named()
    {
        var file = _temp["out"];
        File.WriteAllText(file, "mine");
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "2"), "is a file");
        Assert.Equal("mine", File.ReadAllText(file));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path, ".out.partial-*"));
    }

    [Theory]
    [InlineData("--threads", "0")]
    [InlineData("--threads", "1000")]
    [InlineData("--runs", "0")]
    public void Measurement_settings_out_of_range_are_named(string option, string value)
    {
        Cli.AssertUserError(Cli.Run("profile", tinynet.Path, option, value), option, value);
    }

    [Fact]
    public void A_profile_that_is_not_a_profile_is_named()
    {
        var profile = _temp["p.json"];
        File.WriteAllText(profile, "{ not json");
        Cli.AssertUserError(SplitInto(tinynet.Path, "--parts", "2", "--profile", profile), profile);
        _temp.AssertNoSplitLeftBehind("out");
    }

    private static ModelProto? TryParse(byte[] bytes)
    {
        try
        {
            return ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    [Theory]
    [InlineData("--fps", "NaN", "--fps")]
    [InlineData("--fps", "1e-300", "--fps")]
    [InlineData("--fps", "-1", "--fps")]
    [InlineData("--window", "0", "--window")]
    [InlineData("--nodes", "0", "--nodes")]
    [InlineData("--metrics-address", "not an address", "metrics address 'not an address'")]
    public void Run_refuses_settings_that_would_hang_or_overflow(string option, string value, string named) =>
        Cli.AssertUserError(Cli.Run("run", "--model", tinynet.Path, option, value), named);

    [Fact]
    public void Run_checks_its_source_before_it_cuts_the_model_or_starts_a_worker()
    {
        var missing = _temp["no-such-clip.mp4"];

        var result = Cli.Run("run", "--source", $"video:{missing}");

        Cli.AssertUserError(result, missing);
        // run says "cutting MODEL for 1..N workers" when it starts to cut, and names the seed once the cluster is up.
        Assert.DoesNotContain("cutting", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("cluster seed", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mistyped_camera_url_is_named_without_its_password()
    {
        var result = Cli.Run("run", "--source", "rtps://admin:Secret-pw@10.0.0.5/stream1");

        Cli.AssertUserError(result, "rtps://***@10.0.0.5/stream1");
        Assert.DoesNotContain("Secret-pw", result.Error, StringComparison.Ordinal);
    }
}
