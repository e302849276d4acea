using PipelineActors.Onnx.Inference;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sink.Decoders;

namespace PipelineActors.Runtime.ControlPath.Planning;

/// <summary>The task's own measure of agreement, summed over frames: boxes matched one to one, or classes that agree.</summary>
/// <param name="Measure">What the headline number is, in words.</param>
/// <param name="Value">The headline: F1 of matched boxes, or the share of frames whose class agrees.</param>
/// <param name="ReferenceBoxes">Boxes the exact model found (null for a classifier).</param>
public sealed record TaskAgreement(
    string Decoder, string Measure, double Value, long? ReferenceBoxes, long? CodecBoxes, long? MatchedBoxes, double? Recall,
    double? Precision, double? MeanMatchedIoU);

/// <summary>
/// Compares the model's outputs through a codec with the exact whole model's, frame by frame: relative L2 error and
/// top-1 agreement of the outputs always, and the decoder's task measure where the model's profile names a decoder.
/// </summary>
public sealed class OutputAgreement(string? decoderName, int inputWidth, int inputHeight)
{
    /// <summary>Boxes count as the same object at this IoU or more (the usual detection threshold).</summary>
    public const double MatchIoU = 0.5;

    private readonly IResultDecoder? _decoder = decoderName is null ? null : DecoderRegistry.Get(decoderName);
    private readonly List<double> _relativeL2 = [];
    private long _top1Agree;
    private long _frames;
    private long _referenceBoxes;
    private long _codecBoxes;
    private long _matched;
    private double _matchedIoU;
    private long _classAgree;

    public void Add(IReadOnlyList<string> outputNames, IReadOnlyDictionary<string, HostTensor> exact, IReadOnlyDictionary<string, HostTensor> coded)
    {
        _frames++;
        double difference = 0, norm = 0;
        foreach (var name in outputNames)
        {
            var a = exact[name].ToDoubles();
            var b = coded[name].ToDoubles();
            for (var i = 0; i < a.Length; i++)
            {
                difference += (a[i] - b[i]) * (a[i] - b[i]);
                norm += a[i] * a[i];
            }
        }

        _relativeL2.Add(norm > 0 ? Math.Sqrt(difference / norm) : Math.Sqrt(difference));
        if (ArgMax(exact[outputNames[0]].ToDoubles()) == ArgMax(coded[outputNames[0]].ToDoubles()))
        {
            _top1Agree++;
        }

        if (_decoder is null)
        {
            return;
        }

        var context = new DecodeContext(inputWidth, inputHeight, inputWidth, inputHeight);
        var reference = _decoder.Decode(Frame(outputNames, exact), context);
        var result = _decoder.Decode(Frame(outputNames, coded), context);
        switch (reference, result)
        {
            case (TextDirection r, TextDirection c):
                _classAgree += r.Class == c.Class ? 1 : 0;
                break;
            case (FaceDetections r, FaceDetections c):
                Match([.. r.Faces.Select(f => f.Box)], [.. c.Faces.Select(f => f.Box)]);
                break;
            case (TextRegions r, TextRegions c):
                Match([.. r.Regions.Select(t => t.Box)], [.. c.Regions.Select(t => t.Box)]);
                break;
            default:
                throw new InvalidOperationException($"The '{_decoder.Name}' decoder's result has no task measure here.");
        }
    }

    public double MeanRelativeL2 => _relativeL2.Count == 0 ? 0 : _relativeL2.Average();

    public double MaxRelativeL2 => _relativeL2.Count == 0 ? 0 : _relativeL2.Max();

    public double Top1Agreement => _frames == 0 ? 0 : (double)_top1Agree / _frames;

    /// <summary>The headline <c>pipeline fidelity</c> reports and a fidelity budget is held to: the task measure, else top-1 agreement.</summary>
    public double Fidelity => Task()?.Value ?? Top1Agreement;

    /// <summary>What <see cref="Fidelity"/> measures, in words.</summary>
    public string FidelityMeasure => Task()?.Measure ?? Top1Measure;

    /// <summary>The measure for a model without a decoder.</summary>
    public const string Top1Measure = "share of frames whose top-1 (argmax of the first output) agrees with the exact model's";

    /// <summary>The task measure, or null for a model without a decoder.</summary>
    public TaskAgreement? Task()
    {
        if (_decoder is null)
        {
            return null;
        }

        if (_decoder.Name == "paddleocr-cls")
        {
            return new TaskAgreement(_decoder.Name, "share of frames whose 0/180 class agrees with the exact model's",
                _frames == 0 ? 0 : (double)_classAgree / _frames, null, null, null, null, null, null);
        }

        // No boxes on either side agrees perfectly; the counts say when that is all there was.
        var recall = _referenceBoxes == 0 ? (_codecBoxes == 0 ? 1 : 0) : (double)_matched / _referenceBoxes;
        var precision = _codecBoxes == 0 ? (_referenceBoxes == 0 ? 1 : 0) : (double)_matched / _codecBoxes;
        var f1 = recall + precision == 0 ? 0 : 2 * recall * precision / (recall + precision);
        var what = _decoder.Name == "blazeface" ? "face" : "text";
        return new TaskAgreement(_decoder.Name, $"F1 of {what} boxes matched one to one at IoU >= {MatchIoU} with the exact model's", f1,
            _referenceBoxes, _codecBoxes, _matched, recall, precision, _matched == 0 ? null : _matchedIoU / _matched);
    }

    /// <summary>Greedy one-to-one matching, best IoU first.</summary>
    private void Match(List<Box> reference, List<Box> coded)
    {
        _referenceBoxes += reference.Count;
        _codecBoxes += coded.Count;
        var pairs = new List<(double IoU, int R, int C)>();
        for (var r = 0; r < reference.Count; r++)
        {
            for (var c = 0; c < coded.Count; c++)
            {
                var iou = reference[r].IoU(coded[c]);
                if (iou >= MatchIoU)
                {
                    pairs.Add((iou, r, c));
                }
            }
        }

        var usedR = new HashSet<int>();
        var usedC = new HashSet<int>();
        foreach (var (iou, r, c) in pairs.OrderByDescending(p => p.IoU))
        {
            if (usedR.Contains(r) || usedC.Contains(c))
            {
                continue;
            }

            usedR.Add(r);
            usedC.Add(c);
            _matched++;
            _matchedIoU += iou;
        }
    }

    private static List<HostTensor> Frame(IReadOnlyList<string> names, IReadOnlyDictionary<string, HostTensor> outputs) =>
        [.. names.Select(n => outputs[n])];

    private static int ArgMax(double[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
