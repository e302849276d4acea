using System.Globalization;
using PipelineActors.Harness;
using PipelineActors.Planning;
using PipelineActors.Transfer;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// What the planner needs to weigh codecs when it chooses the cuts (<c>pipeline run --plan planned --fidelity F</c>): at
/// every block boundary the planner may cut at, the candidates' bytes a frame, encode and decode time, and the model's
/// fidelity with that cut alone coded, measured as <c>pipeline fidelity</c> measures them on frames of the run's source.
/// A cut smaller coded than exact may then be chosen over a link too slow for its exact bytes (ScissionLite's transfer
/// layer, without training). The run then measures the chosen split's hops again and holds them to the budget.
/// </summary>
internal static class PlannedCodecs
{
    /// <summary>The codecs priced at every cut: the one that usually wins on a slow link, and a near-lossless fallback.</summary>
    public static readonly IReadOnlyList<string> Candidates = ["int8+zstd", "fp16"];

    /// <summary>Frames each cut is measured on (few: every cut measured costs a pass of the rest of the model per codec).</summary>
    public const int Frames = 8;

    /// <summary>
    /// Cuts measured at most. A model has many block boundaries (BlazeFace 146); the model is split into this many spans of
    /// equal compute and, in each, the boundary with the fewest exact bytes is measured: the cut a planner would take in that
    /// span, coded or not. The other boundaries keep their exact bytes only.
    /// </summary>
    public const int MeasuredCuts = 12;

    public static DevicePlanning Measure(
        DevicePlanning planning, string modelPath, string[] input, string source, double budget, int threads, Action<string>? say)
    {
        var subject = CutModel.Load(modelPath, input);
        var frames = subject.Frames([source], Frames);
        var specs = Candidates.Select(TransferSpec.Parse).ToList();
        var codecs = new Dictionary<int, IReadOnlyList<PlanCodec>>();
        var ends = planning.BlockEnds;
        var chosen = Spans(planning.Problem);
        foreach (var (k, n) in chosen.Select((k, n) => (k, n)))
        {
            say?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"measuring {string.Join(" and ", Candidates)} at cut {ends[k]} ({n + 1} of {chosen.Count}) on {frames.Count} frame(s)"));
            var measured = FidelityCommand.Measure(subject, [ends[k]], specs, [source], null, frames, frames, threads);
            codecs[k] = [.. measured
                .Where(r => r.BytesPerFrame < planning.Problem.Blocks[k].OutputBytes)
                .Select(r => new PlanCodec(r.Codec, (long)Math.Round(r.BytesPerFrame), r.EncodeMs, r.DecodeMs, r.Fidelity))];
        }

        return planning.WithCodecs(codecs, budget);
    }

    /// <summary>The blocks whose output is measured: in each of <see cref="MeasuredCuts"/> spans of equal compute, the one with fewest
    /// bytes.</summary>
    private static List<int> Spans(PlanProblem problem)
    {
        // The model's end is not a cut (the sink reads the outputs exact); compute shares from any worker's times.
        var device = Enumerable.Range(0, problem.DeviceCount).First(d => !problem.Devices[d].IsSource);
        var whole = problem.WholeModelMs(device);
        var spans = new Dictionary<int, int>();
        for (var k = 0; k + 1 < problem.BlockCount; k++)
        {
            var span = whole > 0 ? (int)Math.Min(MeasuredCuts - 1, problem.ComputeMs(device, 0, k + 1) / whole * MeasuredCuts) : k % MeasuredCuts;
            if (!spans.TryGetValue(span, out var best) || problem.Blocks[k].OutputBytes < problem.Blocks[best].OutputBytes)
            {
                spans[span] = k;
            }
        }

        return [.. spans.Values.Order()];
    }
}
