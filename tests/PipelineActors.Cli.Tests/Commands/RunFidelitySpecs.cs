using System.Text.Json;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>
/// <c>pipeline run --fidelity</c> with real worker processes, the second behind an emulated 20 Mbit/s link: the hop gets a
/// lossy codec that sends a fraction of the exact bytes, every frame comes out once and in order, and the faces in the
/// results, compared here with a whole-model run's over the same 40 frames of Megamind.avi, stay within the budget.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RunFidelitySpecs(ITestOutputHelper log) : IDisposable
{
    private const string Clip = "video:/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
    private const int Frames = 40;
    private const double Budget = 0.99;
    private readonly TempFolder _folder = new();

    [Fact(Timeout = 300_000)]
    public async Task A_fidelity_budget_on_a_20_Mbit_hop_codes_the_cut_and_the_faces_in_the_results_stay_within_the_budget()
    {
        var model = RepositoryFiles.Model("blazeface-back-256.onnx");
        var coded = Path.Combine(_folder.Path, "coded.jsonl");
        var whole = Path.Combine(_folder.Path, "whole.jsonl");

        // Three tries: in two CI runs a worker flapped in two runs in a row here (the head runs in the test process, with
        // the other specs' load), never by hand.
        var report = await Task.Run(() => Cli.RunWithoutRecovery(
            () => Run(model, coded, "--nodes", "2", "--cuts", "balanced:2", "--emulate", "cpu=1.0;cpu=1.0,link=20",
                "--fidelity", Budget.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            log.WriteLine, parts: 2, attempts: 3));
        var reference = await Task.Run(() => Run(model, whole, "--nodes", "1"));

        Assert.Equal(Budget, report.GetProperty("fidelityBudget").GetDouble());
        var hop = report.GetProperty("hopCodecs").EnumerateArray().Single(h => h.GetProperty("parts").GetInt32() == 2);
        var codec = hop.GetProperty("codec").GetString()!;
        log.WriteLine($"hop 1: {codec}: {hop.GetProperty("reason").GetString()}");
        Assert.NotEqual("exact", codec);
        Assert.Equal(codec, report.GetProperty("codec").GetString());
        var exactBytes = hop.GetProperty("exactBytesPerFrame").GetInt64();
        // What the first stage really sent, as the stage counted it, against the cut's exact frame.
        var sent = report.GetProperty("stages")[0].GetProperty("bytesOutPerFrame").GetInt64();
        Assert.True(sent < exactBytes / 3, $"stage 0 sent {sent} B a frame with {codec} against {exactBytes} B exact");

        var f1 = FaceF1(Faces(whole), Faces(coded), out var boxes);
        log.WriteLine($"{boxes} faces in the whole model's results over {Frames} frames; F1 of the coded run's against them {f1:0.0000}");
        Assert.True(boxes >= 20, $"only {boxes} faces in {Frames} frames: the clip gives the measure nothing to check");
        Assert.True(f1 >= Budget, $"the coded run's faces agree with the whole model's at F1 {f1:0.0000}, below the budget {Budget}");
    }

    [Theory]
    [InlineData(new[] { "--fidelity", "0" }, "--fidelity 0 is not a share")]
    [InlineData(new[] { "--fidelity", "1.2" }, "--fidelity 1.2 is not a share")]
    [InlineData(new[] { "--fidelity", "0.99", "--codec", "int8" }, "give one of them")]
    public void A_budget_that_is_not_a_share_or_comes_with_a_codec_is_one_sentence_and_exit_code_2(string[] flags, string words)
    {
        Cli.AssertUserError(Cli.Run(["run", "--nodes", "2", .. flags]), words);
    }

    [Fact]
    public void Job_submit_refuses_a_budget_with_a_codec_before_it_joins_the_cluster()
    {
        var model = RepositoryFiles.Model("blazeface-back-256.onnx");
        var submit = Cli.Run("job", "submit", "--name", "cam-1", "--model", model, "--source", Clip, "--fidelity", "0.99", "--codec", "fp16",
            "--seed", "akka.ssl.tcp://pipeline@127.0.0.1:9");

        Cli.AssertUserError(submit, "give one of them");
    }

    public void Dispose() => _folder.Dispose();

    private static JsonElement Run(string model, string results, params string[] flags)
    {
        var run = Cli.Run(["run", "--model", model, "--source", Clip, "--frames", $"{Frames}", "--fps", "0", "--json", "--results", results,
            .. flags]);
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        var report = JsonDocument.Parse(run.Output).RootElement.Clone();
        Assert.Equal(Frames, report.GetProperty("resultsOut").GetInt64());
        Assert.True(report.GetProperty("clean").GetBoolean(), run.Output);
        return report;
    }

    /// <summary>Each frame's face boxes (x, y, width, height) from a results file, by frame id.</summary>
    private static Dictionary<long, List<double[]>> Faces(string path) => File.ReadLines(path)
        .Select(line => JsonDocument.Parse(line).RootElement)
        .ToDictionary(
            r => r.GetProperty("frame").GetInt64(),
            r => r.GetProperty("blazeface").GetProperty("faces").EnumerateArray().Select(f => f.GetProperty("box"))
                .Select(b => new[] { b.GetProperty("x").GetDouble(), b.GetProperty("y").GetDouble(), b.GetProperty("width").GetDouble(),
                    b.GetProperty("height").GetDouble() })
                .ToList());

    /// <summary>F1 of boxes matched one to one at IoU >= 0.5 (greedy, best first), over all frames: the measure the budget holds.</summary>
    private static double FaceF1(Dictionary<long, List<double[]>> reference, Dictionary<long, List<double[]>> coded, out int boxes)
    {
        int referenceBoxes = 0, codedBoxes = 0, matched = 0;
        foreach (var (frame, expected) in reference)
        {
            var actual = coded[frame];
            referenceBoxes += expected.Count;
            codedBoxes += actual.Count;
            var pairs = expected.SelectMany((e,
                i) => actual.Select((a, j) => (IoU: IoU(e, a), i, j))).Where(p => p.IoU >= 0.5).OrderByDescending(p => p.IoU);
            var (usedE, usedA) = (new HashSet<int>(), new HashSet<int>());
            foreach (var (_, i, j) in pairs)
            {
                if (!usedE.Contains(i) && !usedA.Contains(j))
                {
                    usedE.Add(i);
                    usedA.Add(j);
                    matched++;
                }
            }
        }

        boxes = referenceBoxes;
        var recall = referenceBoxes == 0 ? 1 : (double)matched / referenceBoxes;
        var precision = codedBoxes == 0 ? 1 : (double)matched / codedBoxes;
        return recall + precision == 0 ? 0 : 2 * recall * precision / (recall + precision);
    }

    private static double IoU(double[] a, double[] b)
    {
        var w = Math.Max(0, Math.Min(a[0] + a[2], b[0] + b[2]) - Math.Max(a[0], b[0]));
        var h = Math.Max(0, Math.Min(a[1] + a[3], b[1] + b[3]) - Math.Max(a[1], b[1]));
        var inter = w * h;
        return inter / ((a[2] * a[3]) + (b[2] * b[3]) - inter);
    }
}
