using System.Text.Json;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline run --codec</c> with real worker processes: int8 on the cut delivers every frame in order while the stage
/// before the cut sends fewer bytes than the exact wire; the layers pca:K and pool2, rewritten into the stage files, do
/// too, with the bytes they promise and results close to the exact run's; a codec the run cannot use is one sentence.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RunCodecSpecs(TinyNetFile tinynet, ITestOutputHelper log) : IClassFixture<TinyNetFile>
{
    [Fact(Timeout = 300_000)]
    public async Task Int8_on_the_cut_of_two_workers_delivers_30_clean_results_and_the_first_stage_sends_fewer_bytes_than_exact()
    {
        // Cut 3 carries stem.relu's feature map (8 KiB of float32); the measured balance would pick another cut on each run.
        var exact = await Task.Run(() => Run());
        var int8 = await Task.Run(() => Run("--codec", "int8"));

        foreach (var (report, codec) in new[] { (exact, "exact"), (int8, "int8") })
        {
            Assert.Equal(codec, report.GetProperty("codec").GetString());
            Assert.Equal(2, report.GetProperty("parts").GetInt32());
            Assert.StartsWith("0..2 ", report.GetProperty("stages")[0].GetProperty("layers").GetString(), StringComparison.Ordinal);
            Assert.Equal(30, report.GetProperty("framesIn").GetInt64());
            Assert.Equal(30, report.GetProperty("resultsOut").GetInt64());
            foreach (var counter in new[] { "lost", "duplicated", "outOfOrder", "failed" })
            {
                Assert.True(report.GetProperty(counter).GetInt64() == 0, $"{codec}: {counter} = {report.GetProperty(counter)}");
            }

            Assert.True(report.GetProperty("clean").GetBoolean());
        }

        static long Out(JsonElement report) => report.GetProperty("stages")[0].GetProperty("bytesOutPerFrame").GetInt64();
        log.WriteLine($"tinynet on 2 workers cut at 3, stage 0 bytes out a frame: exact {Out(exact)}, int8 {Out(int8)}");
        Assert.True(Out(int8) > 0 && Out(int8) < Out(exact), $"stage 0 sent {Out(int8)} bytes a frame with int8 against {Out(exact)} exact");
    }

    [Fact(Timeout = 300_000)]
    public async Task Pca_with_int8_and_pool2_rewritten_into_the_stages_of_two_workers_deliver_every_frame_in_fewer_bytes_close_to_exact()
    {
        // Cut 3 carries stem.relu's [1,8,16,16] map: 8,192 bytes of float32. pca:4 keeps half the channels and int8 a
        // quarter of each value's bytes (8x fewer than float32); pool2 keeps a quarter of the pixels (4x).
        const long rawBytes = 8 * 16 * 16 * sizeof(float);
        using var folder = new TempFolder();
        var exact = await Task.Run(() => Run(folder["exact.jsonl"], "exact"));
        var pca = await Task.Run(() => Run(folder["pca.jsonl"], "pca:4+int8"));
        var pool2 = await Task.Run(() => Run(folder["pool2.jsonl"], "pool2"));

        foreach (var (report, codec) in new[] { (exact, "exact"), (pca, "pca:4+int8"), (pool2, "pool2") })
        {
            Assert.Equal(codec, report.GetProperty("codec").GetString());
            Assert.Equal(2, report.GetProperty("parts").GetInt32());
            Assert.Equal(30, report.GetProperty("framesIn").GetInt64());
            Assert.Equal(30, report.GetProperty("resultsOut").GetInt64());
            foreach (var counter in new[] { "lost", "duplicated", "outOfOrder", "failed" })
            {
                Assert.True(report.GetProperty(counter).GetInt64() == 0, $"{codec}: {counter} = {report.GetProperty(counter)}");
            }

            Assert.True(report.GetProperty("clean").GetBoolean());
        }

        static long Out(JsonElement report) => report.GetProperty("stages")[0].GetProperty("bytesOutPerFrame").GetInt64();
        log.WriteLine($"tinynet on 2 workers cut at 3, stage 0 bytes out a frame: exact {Out(exact)}, pca:4+int8 {Out(pca)}, pool2 {Out(pool2)}");
        // The frame's own header (ids, names, shapes, the int8 scales) is a few hundred bytes on top of the tensor.
        Assert.InRange(Out(pca), 1, (rawBytes / 8) + 512);
        Assert.InRange(Out(pool2), 1, (rawBytes / 4) + 512);
        Assert.True(Out(pca) < Out(exact) && Out(pool2) < Out(exact), $"exact sent {Out(exact)} bytes a frame");

        // Each result line summarises the logits (min, max, argmax): the layers' are close to the exact run's, frame by frame.
        var exactLogits = Logits(folder["exact.jsonl"]);
        foreach (var (file, codec) in new[] { (folder["pca.jsonl"], "pca:4+int8"), (folder["pool2.jsonl"], "pool2") })
        {
            var logits = Logits(file);
            Assert.Equal(exactLogits.Keys.Order(), logits.Keys.Order());
            var agree = exactLogits.Count(e => e.Value.Argmax == logits[e.Key].Argmax);
            var worst = exactLogits.Max(e => Math.Max(
                Math.Abs(logits[e.Key].Max - e.Value.Max) / Math.Abs(e.Value.Max),
                Math.Abs(logits[e.Key].Min - e.Value.Min) / Math.Abs(e.Value.Min)));
            log.WriteLine($"{codec}: top-1 agrees with exact on {agree} of 30 frames; largest relative change of the logits' min or max {worst:P1}");
            Assert.True(agree >= 24, $"{codec}: top-1 agrees with exact on {agree} of 30 frames");
            Assert.True(worst < 0.3, $"{codec}: the logits' min or max moved by {worst:P1}");
        }
    }

    [Fact]
    public void Cuts_that_do_not_make_one_stage_per_worker_or_do_not_exist_are_one_sentence_and_exit_code_2()
    {
        Cli.AssertUserError(Cli.Run("run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "3,9"), "--cuts 3,9 makes 3 stages", "--nodes 3");
        Cli.AssertUserError(Cli.Run("run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "three"), "--cuts");
        Cli.AssertUserError(Cli.Run("run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "3", "--plan", "planned"), "--cuts", "--plan planned");
    }

    [Theory]
    [InlineData("int9", "There is no codec named 'int9'")]
    [InlineData("int8:loose", "only int8 and int4 take a clip")]
    [InlineData("pca:0", "pca takes a channel count")]
    public void A_codec_the_run_cannot_use_is_one_sentence_and_exit_code_2(string codec, string named)
    {
        Cli.AssertUserError(Cli.Run("run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "3", "--codec", codec), named);
    }

    [Fact]
    public void A_pca_keeping_more_channels_than_the_cut_has_is_one_sentence_and_exit_code_2_before_the_cluster_starts()
    {
        // Known only once the model is cut, so the progress lines before it stand; no cluster starts and no result is written.
        using var folder = new TempFolder();
        var run = Cli.Run("run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "3", "--codec", "pca:9+int8", "--results", folder["r.jsonl"]);

        Assert.True(run.ExitCode == 2, $"exit code {run.ExitCode}, stderr: {run.Error}");
        Assert.DoesNotContain("   at ", run.Error, StringComparison.Ordinal);
        Assert.Equal(
            "error: pca:9 keeps more channels than 'stem.relu.output' at the cut after stage 0 of the 2-part split has (8); "
                + "give pca:K with K at most 8.",
            Assert.Single(run.ErrorLines));
        Assert.DoesNotContain("cluster seed", run.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(folder["r.jsonl"]));
    }

    [Fact]
    public void Job_submit_refuses_a_codec_it_cannot_use_before_it_joins_the_cluster()
    {
        var submit = Cli.Run("job", "submit", "--name", "cam-1", "--model", tinynet.Path, "--codec", "int9", "--seed",
            "akka.ssl.tcp://pipeline@127.0.0.1:9");

        Cli.AssertUserError(submit, "There is no codec named 'int9'");
    }

    private static Dictionary<long, (int Argmax, double Min, double Max)> Logits(string results) =>
        File.ReadLines(results).Select(line => JsonDocument.Parse(line).RootElement).ToDictionary(
            line => line.GetProperty("frame").GetInt64(),
            line =>
            {
                var logits = line.GetProperty("outputs").EnumerateObject().Single().Value;
                return (logits.GetProperty("argmax").GetInt32(), logits.GetProperty("min").GetDouble(), logits.GetProperty("max").GetDouble());
            });

    /// <summary>A run at cut 3 with <paramref name="codec"/>, its results written to <paramref name="results"/>; kept without a recovery.</summary>
    private JsonElement Run(string results, string codec)
    {
        // A recovery may put both stages on one worker, whose frames then cross no link (0 bytes).
        return Cli.RunWithoutRecovery(
            () =>
            {
                File.Delete(results); // a results file that is there already is resumed, not rewritten
                var run = Cli.Run(
                    "run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "3", "--frames", "30", "--fps", "0", "--codec", codec,
                    "--results", results, "--json");
                Assert.True(run.ExitCode == 0, run.Error + run.Output);
                return JsonDocument.Parse(run.Output).RootElement.Clone();
            },
            line => log.WriteLine($"{codec}: {line}"), attempts: 3);
    }

    private JsonElement Run(params string[] codec)
    {
        // The spec is about the cut between two workers; a 1-part plan has no cut to code.
        return Cli.RunWithoutRecovery(
            () =>
            {
                var run = Cli.Run(["run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "3", "--frames", "30", "--fps", "0", "--json",
                    .. codec]);
                Assert.True(run.ExitCode == 0, run.Error + run.Output);
                return JsonDocument.Parse(run.Output).RootElement.Clone();
            },
            log.WriteLine, parts: 2, attempts: 3);
    }
}
