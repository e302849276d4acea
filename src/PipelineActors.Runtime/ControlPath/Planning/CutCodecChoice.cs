using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Runtime.ControlPath.Planning;

/// <summary>A hop's link as the codec choice prices it: bandwidth and one-way latency.</summary>
public readonly record struct HopLink(double Mbps, double LatencyMs)
{
    /// <summary>How long <paramref name="bytes"/> keep the link busy, in ms (the planner's <c>b * 8 / (mbps * 1000)</c>).</summary>
    public double TransferMs(double bytes) => bytes * 8.0 / (Mbps * 1000.0);
}

/// <summary>One codec measured on one hop: bytes on the wire, codec time and the whole model's fidelity with only this hop coded.</summary>
public sealed record HopCodecOption(string Codec, double BytesPerFrame, double EncodeMs, double DecodeMs, double Fidelity, bool Lossless);

/// <summary>
/// The codec a hop of a split got, and why: the options it was chosen from, the link it was priced on (null: the stages of
/// this split may land on any pair of nodes, so bytes alone decide), and the time a frame spends on the hop with it.
/// </summary>
public sealed record HopCodecChoice(
    int Parts, int Hop, string Codec, IReadOnlyList<string> Tensors, double ExactBytesPerFrame, double BytesPerFrame, double Fidelity,
    double? LinkMbps, string Reason, IReadOnlyList<HopCodecOption> Options);

/// <summary>What a fidelity budget chose on every split: each hop's codec and each split's fidelity with all its hops coded.</summary>
public sealed record CodecChoiceReport(
    double Budget, string Measure, int CalibrationFrames, IReadOnlyList<HopCodecChoice> Hops, IReadOnlyDictionary<int, double> SplitFidelity);

/// <summary>
/// A fidelity budget turned into a codec per hop (<c>--fidelity F</c>). For every split, every hop's candidates are
/// measured on the calibration frames: bytes a frame, encode and decode time, and the fidelity of the model's outputs
/// against the exact split (which is the exact whole model) with that hop alone coded, by the task's own measure where
/// the model has a decoder, else top-1 agreement (as <c>pipeline fidelity</c> reports it). Lossless codecs need no
/// measuring. Of the candidates within the budget, a hop gets the one whose frame spends least time on it: the link's
/// busy time for its bytes plus encode plus decode. A fast link keeps the exact wire (coding costs more than it saves);
/// a slow one gets the smallest codec the budget allows. Errors add up over hops, so the split is then measured with
/// every hop coded; while it misses the budget, the hop whose codec is least faithful steps to its next more faithful
/// option. Codec CPU is charged to the hop here, not to the stages' compute: one frame's int8 codec on ResNet-50's
/// 1.4 MB cut takes a few ms against a stage's tens to hundreds.
/// </summary>
public static class CutCodecChoice
{
    /// <summary>The codecs a budget may choose from, most compressing first; <c>exact</c> is always allowed.</summary>
    public static readonly IReadOnlyList<string> Candidates = ["int4+zstd", "int8+zstd", "int8", "fp16", "zstd", Transfer.TransferSpec.Exact];

    /// <summary>How a job spec spells a budget in its codec field: <c>fidelity:0.99</c> (<c>pipeline job submit --fidelity</c>).</summary>
    public const string Prefix = "fidelity:";

    /// <summary>The codec field for a budget, checked.</summary>
    public static string Spell(double budget) => Prefix + CheckBudget(budget).ToString("R", CultureInfo.InvariantCulture);

    /// <summary>True when <paramref name="codec"/> is a budget (<c>fidelity:F</c>); a malformed one is one sentence.</summary>
    public static bool TryBudget(string codec, out double budget)
    {
        budget = 0;
        if (!codec.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var text = codec[Prefix.Length..];
        budget = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var b)
            ? CheckBudget(b)
            : throw new Onnx.PipelineInputException($"'{codec}' is not a fidelity budget; give fidelity:F with F above 0 and at most 1 "
                + $"(e.g. fidelity:0.99).");
        return true;
    }

    /// <summary><paramref name="budget"/> if it is a share above 0 and at most 1; one sentence otherwise.</summary>
    public static double CheckBudget(double budget) => double.IsFinite(budget) && budget > 0 && budget <= 1
        ? budget
        : throw new Onnx.PipelineInputException(
            $"--fidelity {budget.ToString(CultureInfo.InvariantCulture)} is not a share; give one above 0 and at most 1 (e.g. 0.99).");

    /// <summary>
    /// <paramref name="prepared"/> with each hop's codec chosen within <paramref name="budget"/>, and the report of what was chosen
    /// and why. <paramref name="link"/> gives the link a split's hop crosses (parts, hop index), or null where it is not known.
    /// </summary>
    public static (PreparedModel Model, CodecChoiceReport Report) Apply(
        PreparedModel prepared, double budget, IFrameSource calibration, int frames, Func<int, int, HopLink?> link,
        ModelProfile? profile, int intraOpThreads = 1, Action<string>? say = null)
    {
        CheckBudget(budget);

        var samples = new List<IReadOnlyList<HostTensor>>();
        while (samples.Count < frames && calibration.Read() is { } sample)
        {
            samples.Add(sample);
        }

        if (samples.Count == 0)
        {
            throw new Onnx.PipelineInputException("The source gave no frame to measure codecs' fidelity on; give a source with frames.");
        }

        var modelOutputs = prepared.Analysis.Graph.OutputNames;
        var hops = new List<HopCodecChoice>();
        var splitFidelity = new Dictionary<int, double>();
        var splits = new List<SplitPlan>();
        var measure = new OutputAgreement(profile?.Decoder, profile?.Width ?? 0, profile?.Height ?? 0).FidelityMeasure;
        foreach (var split in prepared.Splits)
        {
            if (split.Parts == 1)
            {
                splits.Add(split);
                continue;
            }

            using var chain = new SplitChain(prepared, split, modelOutputs, intraOpThreads);
            var exact = samples.Select(chain.RunExact).ToList();
            var options = new List<List<(HopCodecOption Option, List<CutCodec> Codes)>>();
            var chosen = new List<int>();
            for (var hop = 0; hop < split.Parts - 1; hop++)
            {
                say?.Invoke($"measuring codecs on hop {hop + 1} of the {split.Parts}-part split over {samples.Count} frame(s)");
                var measured = MeasureHop(chain, hop, exact, profile);
                options.Add(measured);
                var priced = link(split.Parts, hop);
                chosen.Add(Choose(measured.Select(m => m.Option).ToList(), budget, priced));
            }

            // Errors add up over hops: the split with every hop coded is held to the budget, the least faithful hop stepping up.
            double fidelity;
            while (true)
            {
                var codes = chosen.Select((c, hop) => options[hop][c].Codes).ToList();
                fidelity = chosen.Select((c, hop) => options[hop][c].Option.Lossless).All(l => l) ? 1.0 : chain.Fidelity(exact, codes, profile);
                if (fidelity >= budget)
                {
                    break;
                }

                var worst = Enumerable.Range(0, chosen.Count).Where(h => !options[h][chosen[h]].Option.Lossless)
                    .MinBy(h => options[h][chosen[h]].Option.Fidelity);
                var current = options[worst][chosen[worst]].Option;
                chosen[worst] = options[worst].FindIndex(o => o.Option.Lossless || o.Option.Fidelity > current.Fidelity);
                say?.Invoke($"{split.Parts}-part split measured {fidelity:0.0000} with every hop coded: hop {worst + 1} steps up from "
                    + $"{current.Codec}");
            }

            splitFidelity[split.Parts] = fidelity;
            var encodes = chosen.Select((c, hop) => options[hop][c].Codes).ToList();
            for (var hop = 0; hop < chosen.Count; hop++)
            {
                var all = options[hop].Select(o => o.Option).ToList();
                var pick = all[chosen[hop]];
                var exactOption = all.Single(o => o.Codec == Transfer.TransferSpec.Exact);
                var priced = link(split.Parts, hop);
                hops.Add(new HopCodecChoice(
                    split.Parts, hop, pick.Codec, chain.CodedTensors(hop), exactOption.BytesPerFrame, pick.BytesPerFrame, pick.Fidelity,
                    priced?.Mbps, Reason(pick, all, budget, priced), all));
            }

            splits.Add(split with { Stages = CutCodecPlan.WithCodes(split, [.. encodes]) });
        }

        return (prepared with { Splits = splits }, new CodecChoiceReport(budget, measure, samples.Count, hops, splitFidelity));
    }

    /// <summary>
    /// The index of the option a hop gets: within the budget (lossless always is), least time a frame spends on the hop
    /// (link busy time, where the link is known, plus encode and decode), else fewest bytes; ties go to the more faithful.
    /// </summary>
    public static int Choose(IReadOnlyList<HopCodecOption> options, double budget, HopLink? link)
    {
        var best = -1;
        for (var i = 0; i < options.Count; i++)
        {
            var o = options[i];
            if (!o.Lossless && o.Fidelity < budget)
            {
                continue;
            }

            if (best < 0 || Better(o, options[best], link))
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>A frame's time on the hop with this option: the link's busy time for its bytes plus encode plus decode.</summary>
    public static double HopMs(HopCodecOption option, HopLink link) => link.TransferMs(option.BytesPerFrame) + option.EncodeMs + option.DecodeMs;

    private static bool Better(HopCodecOption a, HopCodecOption b, HopLink? link)
    {
        var (costA, costB) = link is { } l ? (HopMs(a, l), HopMs(b, l)) : (a.BytesPerFrame, b.BytesPerFrame);
        // Within 1 %, the more faithful one: timings on a loaded machine are not sharper than that.
        if (Math.Abs(costA - costB) <= 0.01 * Math.Max(costA, costB))
        {
            return (a.Lossless ? 1.0 : a.Fidelity) > (b.Lossless ? 1.0 : b.Fidelity) && costA <= costB * 1.01;
        }

        return costA < costB;
    }

    private static string Reason(HopCodecOption pick, IReadOnlyList<HopCodecOption> all, double budget, HopLink? link)
    {
        var exact = all.Single(o => o.Codec == Transfer.TransferSpec.Exact);
        var within = all.Where(o => o.Lossless || o.Fidelity >= budget).Select(o => o.Codec).ToList();
        var outside = all.Where(o => !o.Lossless && o.Fidelity < budget)
            .Select(o => string.Create(CultureInfo.InvariantCulture, $"{o.Codec} {o.Fidelity:0.000}")).ToList();
        var priced = link is { } l
            ? string.Create(CultureInfo.InvariantCulture,
                $"least time a frame spends on the {l.Mbps:0.#} Mbit/s hop: {HopMs(pick, l):0.0} ms (exact {HopMs(exact, l):0.0} ms)")
            : "fewest bytes (the nodes of this split are not known ahead, so neither is the link)";
        return string.Create(CultureInfo.InvariantCulture,
            $"{priced}; {pick.BytesPerFrame:0} B a frame against {exact.BytesPerFrame:0} B exact; within the budget {budget:0.###}: "
            + $"{string.Join(", ", within)}{(outside.Count > 0 ? $"; below it: {string.Join(", ", outside)}" : "")}");
    }

    private static List<(HopCodecOption Option, List<CutCodec> Codes)> MeasureHop(
        SplitChain chain, int hop, List<ChainRun> exact, ModelProfile? profile)
    {
        var tensors = chain.CodedTensors(hop);
        var sent = exact.Select(run => run.Sent[hop]).ToList();
        var statistics = new Dictionary<string, TensorStatistics>(StringComparer.Ordinal);
        foreach (var tensor in sent.SelectMany(s => s).Where(t => tensors.Contains(t.Name)))
        {
            if (!statistics.TryGetValue(tensor.Name, out var s))
            {
                s = statistics[tensor.Name] = new TensorStatistics(tensor.Name, 1, (int)ChannelLayout.Of(tensor.Shape, 1).Channels);
            }

            s.Add(MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan()), tensor.Shape);
        }

        var exactBytes = sent.Average(s => (double)FrameCodec.EncodedLength(new Frame(0, string.Empty, 0, 0, 1, [.. s])));
        var measured = new List<(HopCodecOption, List<CutCodec>)>();
        foreach (var codec in Candidates)
        {
            if (codec == Transfer.TransferSpec.Exact || tensors.Count == 0)
            {
                if (codec == Transfer.TransferSpec.Exact)
                {
                    measured.Add((new HopCodecOption(codec, exactBytes, 0, 0, 1, Lossless: true), []));
                }

                continue;
            }

            var codes = tensors.Select(name => CutCodecPlan.CutCodecFor(codec, name, statistics.GetValueOrDefault(name))).ToList();
            var coding = CutCoding.Encoding(codes);
            var decoding = CutCoding.Decoding(codes);
            var lossless = TensorCodecs.Create(codec, statistics.GetValueOrDefault(tensors[0])).Promise.Exact;
            long bytes = 0;
            double encodeMs = 0, decodeMs = 0;
            var roundTrips = new List<IReadOnlyList<HostTensor>>();
            foreach (var frame in sent)
            {
                var clock = Stopwatch.StartNew();
                var encoded = coding.Encode(frame);
                encodeMs += clock.Elapsed.TotalMilliseconds;
                bytes += FrameCodec.EncodedLength(new Frame(0, string.Empty, 0, 0, 1, [.. encoded]));
                clock.Restart();
                roundTrips.Add(decoding.Decode(encoded));
                decodeMs += clock.Elapsed.TotalMilliseconds;
            }

            var n = sent.Count;
            var perFrame = (double)bytes / n;
            if (perFrame >= exactBytes)
            {
                continue; // the codec does not pay on this hop (a small vector whose scales outweigh it)
            }

            var fidelity = lossless ? 1.0 : chain.FidelityWithHop(exact, hop, roundTrips, profile);
            measured.Add((new HopCodecOption(codec, perFrame, encodeMs / n, decodeMs / n, fidelity, lossless), codes));
        }

        return measured;
    }

    /// <summary>One frame through the exact split: what each stage sent on (its float cut tensors), and the model's outputs.</summary>
    private sealed record ChainRun(List<IReadOnlyList<HostTensor>> Inputs, List<List<HostTensor>> Sent, Dictionary<string, HostTensor> Outputs);

    /// <summary>A split's stages in sessions of their own, run as the actors run them (each stage's outputs plus what it forwards).</summary>
    private sealed class SplitChain : IDisposable
    {
        private readonly SplitPlan _split;
        private readonly IReadOnlyList<string> _modelOutputs;
        private readonly HashSet<string> _outputSet;
        private readonly List<StageSession> _sessions;
        private readonly List<List<string>> _coded = [];

        public SplitChain(PreparedModel prepared, SplitPlan split, IReadOnlyList<string> modelOutputs, int intraOpThreads)
        {
            _split = split;
            _modelOutputs = modelOutputs;
            _outputSet = modelOutputs.ToHashSet(StringComparer.Ordinal);
            _sessions = [.. split.Stages.Select(s => new StageSession(File.ReadAllBytes(prepared.FilesBySha[s.File.Sha256]), intraOpThreads))];
        }

        /// <summary>The float tensors stage <paramref name="hop"/> sends on (model outputs excepted: the sink reads those).</summary>
        public List<string> CodedTensors(int hop) => _coded[hop];

        public ChainRun RunExact(IReadOnlyList<HostTensor> sample)
        {
            var inputs = new List<IReadOnlyList<HostTensor>>();
            var sent = new List<List<HostTensor>>();
            var outputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            IReadOnlyList<HostTensor> frame = sample;
            for (var i = 0; i < _split.Stages.Count; i++)
            {
                inputs.Add(frame);
                var produced = _sessions[i].Run(frame);
                Collect(produced, outputs);
                if (i == _split.Stages.Count - 1)
                {
                    break;
                }

                var floats = produced.Where(t => t.ElementType == TensorProto.Types.DataType.Float && !_outputSet.Contains(t.Name)).ToList();
                if (_coded.Count <= i)
                {
                    _coded.Add([.. floats.Select(t => t.Name)]);
                }

                sent.Add(floats);
                frame = [.. produced, .. frame.Where(t => _split.Stages[i].Forwarded.Contains(t.Name))];
            }

            return new ChainRun(inputs, sent, outputs);
        }

        /// <summary>Fidelity over the frames with hop <paramref name="hop"/>'s tensors replaced by their round trips, the rest exact.</summary>
        public double FidelityWithHop(List<ChainRun> exact, int hop, List<IReadOnlyList<HostTensor>> roundTrips, ModelProfile? profile)
        {
            var agreement = new OutputAgreement(profile?.Decoder, profile?.Width ?? 0, profile?.Height ?? 0);
            for (var f = 0; f < exact.Count; f++)
            {
                var run = exact[f];
                var outputs = new Dictionary<string, HostTensor>(run.Outputs, StringComparer.Ordinal);
                var replaced = roundTrips[f].ToDictionary(t => t.Name, StringComparer.Ordinal);
                IReadOnlyList<HostTensor> frame = [.. Next(hop, run).Select(t => replaced.GetValueOrDefault(t.Name, t))];
                RunFrom(hop + 1, frame, outputs, null);
                agreement.Add(_modelOutputs, run.Outputs, outputs);
            }

            return agreement.Fidelity;
        }

        /// <summary>Fidelity over the frames with every hop coded with its <paramref name="codes"/> (empty: exact).</summary>
        public double Fidelity(List<ChainRun> exact, List<List<CutCodec>> codes, ModelProfile? profile)
        {
            var codings = codes.Select(c => c.Count == 0 ? ((CutCoding Encode, CutCoding Decode)?)null
                : (CutCoding.Encoding(c), CutCoding.Decoding(c))).ToList();
            var agreement = new OutputAgreement(profile?.Decoder, profile?.Width ?? 0, profile?.Height ?? 0);
            foreach (var run in exact)
            {
                var outputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
                RunFrom(0, run.Inputs[0], outputs, codings);
                agreement.Add(_modelOutputs, run.Outputs, outputs);
            }

            return agreement.Fidelity;
        }

        public void Dispose() => _sessions.ForEach(s => s.Dispose());

        /// <summary>What stage <paramref name="hop"/> hands the next stage in the exact run: its outputs plus what it forwards.</summary>
        private static IReadOnlyList<HostTensor> Next(int hop, ChainRun run) => hop + 1 < run.Inputs.Count ? run.Inputs[hop + 1] : [];

        private void RunFrom(
            int first, IReadOnlyList<HostTensor> frame, Dictionary<string, HostTensor> outputs,
            List<(CutCoding Encode, CutCoding Decode)?>? codings)
        {
            for (var i = first; i < _split.Stages.Count; i++)
            {
                var produced = _sessions[i].Run(frame);
                Collect(produced, outputs);
                if (i == _split.Stages.Count - 1)
                {
                    return;
                }

                if (codings?[i] is { } coding)
                {
                    produced = coding.Decode.Decode(coding.Encode.Encode(produced));
                }

                frame = [.. produced, .. frame.Where(t => _split.Stages[i].Forwarded.Contains(t.Name))];
            }
        }

        private void Collect(IReadOnlyList<HostTensor> produced, Dictionary<string, HostTensor> outputs)
        {
            foreach (var t in produced.Where(t => _outputSet.Contains(t.Name)))
            {
                outputs[t.Name] = t;
            }
        }
    }
}
