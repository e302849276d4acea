using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Sink.Decoders;

/// <summary>A face: box, score, and six keypoints (right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion).</summary>
public sealed record Face(Box Box, double Score, IReadOnlyList<Point2> Keypoints);

/// <summary>The faces found in one frame, best first.</summary>
public sealed record FaceDetections(IReadOnlyList<Face> Faces);

/// <summary>
/// MediaPipe BlazeFace (full-range, 256x256): 896 fixed-size SSD anchors, regressors in input
/// pixels, sigmoid scores, and MediaPipe's weighted non-maximum suppression.
/// </summary>
public sealed class BlazeFaceDecoder(double scoreThreshold = 0.5, double iouThreshold = 0.3, int maxFaces = 64) : IResultDecoder
{
    /// <summary>The model's square input side; regressors are in these pixels.</summary>
    public const int InputSize = 256;

    private const int Keypoints = 6;
    private const int RegressorLength = 4 + (2 * Keypoints);

    // MediaPipe clips logits before the sigmoid (score_clipping_thresh) so exp never overflows.
    private const float ScoreClip = 100f;

    private static readonly (float X, float Y)[] AnchorCentres = BlazeFaceAnchors.Generate();

    public string Name => "blazeface";

    public object Decode(IReadOnlyList<HostTensor> outputs, DecodeContext ctx)
    {
        var (scores, regressors) = Gather(outputs);
        var candidates = new List<Face>();
        for (var i = 0; i < AnchorCentres.Length; i++)
        {
            var score = Sigmoid(Math.Clamp(scores[i], -ScoreClip, ScoreClip));
            if (score < scoreThreshold)
            {
                continue;
            }

            var (ax, ay) = AnchorCentres[i];
            var r = regressors.AsSpan(i * RegressorLength, RegressorLength);
            var cx = ax + (r[0] / InputSize);
            var cy = ay + (r[1] / InputSize);
            var w = r[2] / InputSize;
            var h = r[3] / InputSize;
            var keypoints = new Point2[Keypoints];
            for (var k = 0; k < Keypoints; k++)
            {
                keypoints[k] = new Point2(ax + (r[4 + (2 * k)] / InputSize), ay + (r[5 + (2 * k)] / InputSize));
            }

            candidates.Add(new Face(new Box(cx - (w / 2), cy - (h / 2), w, h), score, keypoints));
        }

        var faces = WeightedNms.Suppress(candidates, iouThreshold).Take(maxFaces).Select(f => ToImage(f, ctx)).ToList();
        return new FaceDetections(faces);
    }

    private static Face ToImage(Face normalised, DecodeContext ctx)
    {
        var b = normalised.Box;
        var box = ctx.ToImage(new Box(b.X * ctx.InputWidth, b.Y * ctx.InputHeight, b.Width * ctx.InputWidth, b.Height * ctx.InputHeight));
        var keypoints = normalised.Keypoints.Select(p =>
        {
            var (x, y) = ctx.ToImage(p.X * ctx.InputWidth, p.Y * ctx.InputHeight);
            return new Point2(x, y);
        }).ToList();
        return new Face(box, normalised.Score, keypoints);
    }

    private static double Sigmoid(float logit) => 1.0 / (1.0 + Math.Exp(-logit));

    /// <summary>Scores and regressors in anchor order (16x16 layer, then 8x8), told apart by shape, not by name.</summary>
    private static (float[] Scores, float[] Regressors) Gather(IReadOnlyList<HostTensor> outputs)
    {
        var scores = new float[AnchorCentres.Length];
        var regressors = new float[AnchorCentres.Length * RegressorLength];
        var seen = 0;
        foreach (var t in outputs)
        {
            var shape = t.Shape;
            if (shape.Length != 3 || shape[0] != 1 || (shape[2] != 1 && shape[2] != RegressorLength))
            {
                continue;
            }

            var offset = shape[1] switch
            {
                BlazeFaceAnchors.FineCount => 0,
                BlazeFaceAnchors.CoarseCount => BlazeFaceAnchors.FineCount,
                _ => -1,
            };
            if (offset < 0)
            {
                continue;
            }

            var values = DecoderTensors.Floats(t);
            if (shape[2] == 1)
            {
                values.CopyTo(scores.AsSpan(offset));
                seen |= shape[1] == BlazeFaceAnchors.FineCount ? 1 : 2;
            }
            else
            {
                values.CopyTo(regressors.AsSpan(offset * RegressorLength));
                seen |= shape[1] == BlazeFaceAnchors.FineCount ? 4 : 8;
            }
        }

        if (seen != 15)
        {
            var shapes = string.Join(", ", outputs.Select(o => $"{o.Name} [{string.Join(",", o.Shape)}]"));
            throw new PipelineInputException($"The 'blazeface' decoder needs scores [1,512,1], [1,384,1] and regressors [1,512,16], "
                + $"[1,384,16], but the model gave {shapes}; pick a decoder that matches the model.");
        }

        return (scores, regressors);
    }
}

/// <summary>
/// BlazeFace's SSD anchors (MediaPipe, <c>fixed_anchor_size = true</c>, offset 0.5): a 16x16 grid
/// with 2 anchors per cell, then an 8x8 grid with 6, ordered row, cell, anchor; all of size 1.
/// </summary>
public static class BlazeFaceAnchors
{
    public const int FineCount = 16 * 16 * 2;
    public const int CoarseCount = 8 * 8 * 6;

    /// <summary>Anchor centres normalised to [0,1], y down: 896 of them.</summary>
    public static (float X, float Y)[] Generate()
    {
        var anchors = new List<(float X, float Y)>(FineCount + CoarseCount);
        foreach (var (grid, perCell) in new[] { (16, 2), (8, 6) })
        {
            for (var y = 0; y < grid; y++)
            {
                for (var x = 0; x < grid; x++)
                {
                    for (var a = 0; a < perCell; a++)
                    {
                        anchors.Add(((x + 0.5f) / grid, (y + 0.5f) / grid));
                    }
                }
            }
        }

        return anchors.ToArray();
    }
}

/// <summary>
/// MediaPipe's weighted non-maximum suppression: the best remaining detection and every one
/// overlapping it by more than the IoU threshold become one, whose box and keypoints are the
/// score-weighted mean of the group and whose score is the best one's.
/// </summary>
public static class WeightedNms
{
    public static IReadOnlyList<Face> Suppress(IReadOnlyList<Face> detections, double iouThreshold)
    {
        var remaining = detections.OrderByDescending(d => d.Score).ToList();
        var kept = new List<Face>();
        while (remaining.Count > 0)
        {
            var best = remaining[0];
            var group = remaining.Where(d => d.Box.IoU(best.Box) > iouThreshold).ToList();
            remaining = remaining.Where(d => d.Box.IoU(best.Box) <= iouThreshold && !ReferenceEquals(d, best)).ToList();
            group.Remove(best);
            group.Insert(0, best);

            double total = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
            var kx = new double[best.Keypoints.Count];
            var ky = new double[best.Keypoints.Count];
            foreach (var d in group)
            {
                total += d.Score;
                x0 += d.Box.X * d.Score;
                y0 += d.Box.Y * d.Score;
                x1 += (d.Box.X + d.Box.Width) * d.Score;
                y1 += (d.Box.Y + d.Box.Height) * d.Score;
                for (var k = 0; k < kx.Length; k++)
                {
                    kx[k] += d.Keypoints[k].X * d.Score;
                    ky[k] += d.Keypoints[k].Y * d.Score;
                }
            }

            if (total <= 0)
            {
                kept.Add(best);
                continue;
            }

            var box = new Box(x0 / total, y0 / total, (x1 - x0) / total, (y1 - y0) / total);
            var keypoints = Enumerable.Range(0, kx.Length).Select(k => new Point2(kx[k] / total, ky[k] / total)).ToList();
            kept.Add(new Face(box, best.Score, keypoints));
        }

        return kept;
    }
}
