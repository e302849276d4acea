using PipelineActors.Onnx;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Transfer;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Runtime.ControlPath.Planning;

/// <summary>
/// Puts the first hop into a prepared model's plans: with <c>jpeg:Q</c>, every stage of every split that reads a source
/// picture decodes it (a <see cref="CutCodec"/> in its <see cref="StageSpec.Decodes"/>), so each split and each re-deploy
/// keeps it, and the ingest encodes what those entries name (<see cref="DataPath.Link.FirstHopEncoding"/>). Applied after
/// the cut codecs, whose plan sets the stages' decodes afresh.
/// </summary>
public static class FirstHopPlan
{
    /// <summary>
    /// The model with its source pictures decoded from JPEG where <paramref name="hop"/> says so (unchanged for raw). A
    /// model without a profile, or whose source sends its picture as no uint8 image, is a <see cref="PipelineInputException"/>.
    /// </summary>
    public static PreparedModel Apply(PreparedModel prepared, FirstHop hop, ModelProfile? profile)
    {
        if (hop.IsRaw)
        {
            return prepared;
        }

        RequireProfile(hop, profile);
        var planar = profile!.Layout == TensorLayout.Nchw;
        var pictures = new Dictionary<string, CutCodec>(StringComparer.Ordinal);
        foreach (var input in prepared.SourceInputs.Where(t => t.ElementType == TensorProto.Types.DataType.Uint8 && t.Name == profile.Input))
        {
            if (JpegCodec.ChannelAxisOf(input.Shape, planar) is { } axis)
            {
                pictures[input.Name] = new CutCodec(input.Name, hop.Text, axis, [], []);
            }
        }

        if (pictures.Count == 0)
        {
            throw new PipelineInputException(
                $"--first-hop {hop.Text} needs the source to send the model's picture '{profile.Input}' as uint8 pixels (1 or 3 channels, "
                + $"a batch of 1), but it sends {string.Join(", ", prepared.SourceInputs.Select(t => $"{t.Name} {t.TypeName} {t.ShapeText}"))}; "
                + "use --first-hop raw.");
        }

        var splits = prepared.Splits.Select(split => split with
        {
            Stages = split.Stages.Select(stage =>
            {
                var reads = stage.Inputs.Where(pictures.ContainsKey).Select(name => pictures[name]).ToList();
                if (reads.Count == 0)
                {
                    return stage;
                }

                // A decode of the same tensor from an earlier application gives way: the first hop is set, not added to.
                var kept = (stage.Decodes ?? []).Where(d => !pictures.ContainsKey(d.Tensor));
                return stage with { Decodes = [.. kept, .. reads] };
            }).ToList(),
        }).ToList();
        return prepared with { Splits = splits };
    }

    /// <summary>JPEG on the first hop needs the model's profile (the picture's layout): its absence is a <see
    /// cref="PipelineInputException"/>.</summary>
    public static void RequireProfile(FirstHop hop, ModelProfile? profile)
    {
        if (!hop.IsRaw && profile is null)
        {
            throw new PipelineInputException(
                $"--first-hop {hop.Text} needs the model's .profile.json beside it (it says the picture's layout); without one use --first-hop raw.");
        }
    }
}
