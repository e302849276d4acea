namespace PipelineActors.Planning;

/// <summary>One stage of a plan: the device that runs blocks [FirstBlock, EndBlock), or its replicas.</summary>
/// <param name="Devices">Device indices into the problem; more than one for a replicated stage.</param>
public sealed record PlanStage(IReadOnlyList<int> Devices, int FirstBlock, int BlockCount)
{
    public int EndBlock => FirstBlock + BlockCount;

    public bool IsReplicated => Devices.Count > 1;
}

/// <summary>
/// A chain of stages. Stage 0 is the source and may run no block (it sends the frame); every other
/// stage runs at least one block; only the last stage may be replicated, and never on the source.
/// </summary>
public sealed record Plan(IReadOnlyList<PlanStage> Stages)
{
    /// <summary>The plan that runs every block on the source.</summary>
    public static Plan AllOnSource(PlanProblem problem) => new([new PlanStage([problem.SourceIndex], 0, problem.BlockCount)]);

    /// <summary>A chain from the source through the given devices, cut at the given block positions.</summary>
    /// <param name="ends">End block (exclusive) of each stage, source first; the last is the block count.</param>
    public static Plan Chain(PlanProblem problem, IReadOnlyList<int> devices, IReadOnlyList<int> ends)
    {
        var stages = new List<PlanStage>();
        var first = 0;
        for (var i = 0; i < devices.Count; i++)
        {
            stages.Add(new PlanStage([devices[i]], first, ends[i] - first));
            first = ends[i];
        }

        return new Plan(stages);
    }

    /// <summary>Throws when the plan breaks the shape rules above (a bug in whoever built it, not a user error).</summary>
    public void CheckShape(PlanProblem problem)
    {
        if (Stages.Count == 0 || Stages[0].Devices.Count != 1 || Stages[0].Devices[0] != problem.SourceIndex || Stages[0].FirstBlock != 0)
        {
            throw new ArgumentException("A plan starts with the source's stage at block 0.");
        }

        var used = new HashSet<int>();
        var next = 0;
        for (var s = 0; s < Stages.Count; s++)
        {
            var stage = Stages[s];
            if (stage.FirstBlock != next || stage.BlockCount < (s == 0 ? 0 : 1) || stage.Devices.Count == 0)
            {
                throw new ArgumentException($"Stage {s} must start at block {next} and run {(s == 0 ? "zero or more" : "at least one")} block.");
            }

            if (stage.IsReplicated && (s != Stages.Count - 1 || s == 0))
            {
                throw new ArgumentException("Only the last stage, never the source's, may be replicated.");
            }

            foreach (var d in stage.Devices)
            {
                if (!used.Add(d))
                {
                    throw new ArgumentException($"Device {problem.Devices[d].Name} appears twice in the plan.");
                }
            }

            next = stage.EndBlock;
        }

        if (next != problem.BlockCount)
        {
            throw new ArgumentException($"The plan covers {next} of {problem.BlockCount} blocks.");
        }
    }
}
