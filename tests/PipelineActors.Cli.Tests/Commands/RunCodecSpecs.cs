using System.Text.Json;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline run --codec</c> with real worker processes: int8 on the cut delivers every frame in order while the stage
/// before the cut sends fewer bytes than the exact wire, and a codec the run cannot use is one sentence.
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
    [InlineData("pca:8+int8", "--codec pca:8+int8 needs a layer")]
    [InlineData("pool2", "--codec pool2 needs a layer")]
    public void A_codec_the_run_cannot_use_is_one_sentence_and_exit_code_2(string codec, string named)
    {
        Cli.AssertUserError(Cli.Run("run", "--model", tinynet.Path, "--nodes", "2", "--codec", codec), named);
    }

    [Fact]
    public void Job_submit_refuses_a_codec_it_cannot_use_before_it_joins_the_cluster()
    {
        var submit = Cli.Run("job", "submit", "--name", "cam-1", "--model", tinynet.Path, "--codec", "int9", "--seed", "akka.ssl.tcp://pipeline@127.0.0.1:9");

        Cli.AssertUserError(submit, "There is no codec named 'int9'");
    }

    private JsonElement Run(params string[] codec)
    {
        var run = Cli.Run(["run", "--model", tinynet.Path, "--nodes", "2", "--cuts", "3", "--frames", "30", "--fps", "0", "--json", .. codec]);
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        return JsonDocument.Parse(run.Output).RootElement.Clone();
    }
}
