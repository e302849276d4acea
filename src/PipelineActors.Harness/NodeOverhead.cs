namespace PipelineActors.Harness;

/// <summary>
/// One worker of a bench row against its stage run alone: the node's CPU per frame in the pipeline, the same stage file's CPU
/// per frame in a bare ONNX Runtime loop, what the node spent beyond that (transport, copies, actors) as a share of the
/// stage's compute, and that excess per MB the node received and sent. The figures that need a stage are null on a worker
/// that hosted none.
/// </summary>
/// <param name="Node">The worker's address, as <see cref="NodeRow.Node"/> names it.</param>
/// <param name="Stage">The stage the worker hosted in the run's final plan.</param>
/// <param name="OverheadCpuMsPerMB">
/// (node CPU per frame - bare stage CPU per frame) / MB (10^6 bytes) in and out of the stage per frame: the CPU a link
/// costs on each end, per MB.
/// </param>
public sealed record NodeOverhead(
    string Node,
    int? Stage,
    double NodeCpuMsPerFrame,
    double? StageBareCpuMsPerFrame,
    double? OverheadPercent,
    long BytesInPerFrame,
    long BytesOutPerFrame,
    double? OverheadCpuMsPerMB)
{
    /// <summary>
    /// Each node of a run, in the run's node order, set against the bare loop of the stage it hosted (matched by the
    /// node's address); <paramref name="bareByStage"/> holds one loop per stage of the final plan, in stage order.
    /// </summary>
    public static IReadOnlyList<NodeOverhead> Of(
        IReadOnlyList<NodeRow> nodes, IReadOnlyList<StageRow> stages, IReadOnlyList<BareLoopResult> bareByStage) =>
        nodes.Select(node =>
        {
            var nodeMs = node.CpuSecondsPerFrame * 1000;
            var i = stages.Select(s => s.Node).ToList().IndexOf(node.Node);
            if (i < 0 || i >= bareByStage.Count || bareByStage[i].Frames == 0)
            {
                return new NodeOverhead(node.Node, i < 0 ? null : stages[i].Index, Math.Round(nodeMs, 3), null, null, 0, 0, null);
            }

            var stage = stages[i];
            var bareMs = CpuMsPerFrame(bareByStage[i]);
            return new NodeOverhead(
                node.Node,
                stage.Index,
                Math.Round(nodeMs, 3),
                Math.Round(bareMs, 3),
                Percent(nodeMs, bareMs) is { } percent ? Math.Round(percent, 1) : null,
                stage.BytesInPerFrame,
                stage.BytesOutPerFrame,
                CpuMsPerMB(nodeMs, bareMs, stage.BytesInPerFrame + stage.BytesOutPerFrame) is { } perMb ? Math.Round(perMb, 2) : null);
        }).ToList();

    /// <summary>A bare loop's CPU time per run, in ms: the process's CPU over the timed loop (not its wall time).</summary>
    public static double CpuMsPerFrame(BareLoopResult loop) => loop.Frames == 0 ? 0 : loop.CpuSeconds * 1000 / loop.Frames;

    /// <summary>(node - bare) / bare, in %; null when the bare stage measured no CPU.</summary>
    public static double? Percent(double nodeCpuMsPerFrame, double bareCpuMsPerFrame) =>
        bareCpuMsPerFrame > 0 ? (nodeCpuMsPerFrame - bareCpuMsPerFrame) / bareCpuMsPerFrame * 100 : null;

    /// <summary>(node - bare) ms per frame over the MB (10^6 bytes) moved per frame; null when the node moved none.</summary>
    public static double? CpuMsPerMB(double nodeCpuMsPerFrame, double bareCpuMsPerFrame, long bytesPerFrame) =>
        bytesPerFrame > 0 ? (nodeCpuMsPerFrame - bareCpuMsPerFrame) / (bytesPerFrame / 1e6) : null;
}
