using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;
using static PipelineActors.Onnx.Proto.TensorProto.Types;

namespace PipelineActors.TestSupport;

/// <summary>
/// A RetinaNet-style detector with its post-processing (conv head, sigmoid scores, NonMaxSuppression, Gather of the
/// kept boxes), whose number of boxes depends on the picture: none for a dark one, more the brighter it is.
/// </summary>
/// <remarks>
/// The score branch has positive weights and a bias that puts the threshold at mid-grey, so a picture's brightness
/// decides how many of the 64 anchors pass; the box branch has random weights, so the kept boxes differ in place too.
/// </remarks>
public static class BoxCountDetector
{
    public const string Input = "image";
    public const int Side = 16;

    /// <summary>NonMaxSuppression's result, [boxes, 3].</summary>
    public const string Selected = "selected";

    /// <summary>The kept anchors' indices, [boxes].</summary>
    public const string Kept = "kept";

    /// <summary>The kept boxes before clipping, [boxes, 4].</summary>
    public const string KeptBoxes = "kept_boxes";

    /// <summary>The backbone's feature map, [1, 8, 8, 8]: its size never changes.</summary>
    public const string Features = "features";

    public const string Boxes = "boxes";
    public const string Scores = "scores";

    private const int Channels = 8;
    private const int Cells = 8;
    private const int Anchors = Cells * Cells;

    public static ModelProto Build()
    {
        var random = new Random(3);
        var g = new OnnxBuilder(opset: 13, seed: 11, name: "box_count_detector").Input(Input, DataType.Float, 1, 3, Side, Side);

        // Backbone: a stride-2 convolution with positive weights (each output channel a weighted local mean).
        var stem = g.Floats([Channels, 3, 3, 3], Positive(random, Channels, 27));
        var stemBias = g.Floats([Channels], new float[Channels]);
        var conv = new[] { OnnxBuilder.Ints("kernel_shape", 3, 3), OnnxBuilder.Ints("strides", 2, 2), OnnxBuilder.Ints("pads", 1, 1, 1, 1) };
        g.Node("Conv", [Input, stem, stemBias], ["stem"], conv);
        g.Node("Relu", ["stem"], [Features]);

        // Score head: a positive-weight 3x3 convolution; logit = gain * (local mean - 1/2).
        const float gain = 20f;
        var head = g.Floats([1, Channels, 3, 3], Positive(random, 1, Channels * 9).Select(w => w * gain).ToArray());
        var headBias = g.Floats([1], [-gain / 2]);
        g.Node("Conv", [Features, head, headBias], ["logits"], OnnxBuilder.Ints("kernel_shape", 3, 3), OnnxBuilder.Ints("pads", 1, 1, 1, 1));
        g.Node("Sigmoid", ["logits"], ["sigmoid"]);
        g.Node("Reshape", ["sigmoid", g.Int64s(1, 1, Anchors)], ["nms_scores"]);

        // Box head: random deltas added to fixed 4x4 anchors, one per cell (y1, x1, y2, x2 in pixels).
        var deltas = g.Conv(Features, Channels, 4, kernel: 3, pad: 1, output: "deltas");
        g.Node("Reshape", [deltas, g.Int64s(1, 4, Anchors)], ["deltas_flat"]);
        g.Node("Transpose", ["deltas_flat"], ["deltas_t"], OnnxBuilder.Ints("perm", 0, 2, 1));
        g.Node("Add", ["deltas_t", g.Floats([1, Anchors, 4], AnchorBoxes())], ["nms_boxes"]);

        g.Node(
            "NonMaxSuppression",
            ["nms_boxes", "nms_scores", g.Int64Scalar(Anchors), g.FloatScalar(0.5f), g.FloatScalar(0.5f)],
            [Selected]);

        // Post-processing on the kept boxes only: their count is what the data decides.
        g.Node("Gather", [Selected, g.Int64Scalar(2)], [Kept], OnnxBuilder.Scalar("axis", 1));
        g.Node("Reshape", ["nms_boxes", g.Int64s(Anchors, 4)], ["all_boxes"]);
        g.Node("Gather", ["all_boxes", Kept], [KeptBoxes], OnnxBuilder.Scalar("axis", 0));
        g.Node("Clip", [KeptBoxes, g.FloatScalar(0f), g.FloatScalar(Side)], [Boxes]);
        g.Node("Reshape", ["nms_scores", g.Int64s(Anchors)], ["all_scores"]);
        g.Node("Gather", ["all_scores", Kept], [Scores], OnnxBuilder.Scalar("axis", 0));
        g.Output(Boxes).Output(Scores);
        return g.Model;
    }

    /// <summary>A picture of uniform noise in [0, <paramref name="brightness"/>): 0 gives no boxes, 1 about a third of the anchors.</summary>
    public static HostTensor Picture(float brightness, int seed)
    {
        var random = new Random(seed);
        var values = new float[3 * Side * Side];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = brightness * random.NextSingle();
        }

        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return new HostTensor(new TensorInfo(Input, DataType.Float, [1, 3, Side, Side]), bytes);
    }

    /// <summary>Pictures whose box counts differ, dark (no box) among them.</summary>
    public static IReadOnlyList<HostTensor> Pictures() =>
        [Picture(1f, 1), Picture(1.3f, 2), Picture(0f, 3), Picture(1f, 4), Picture(0.8f, 5), Picture(1.6f, 6), Picture(0.3f, 7)];

    /// <summary>
    /// Three cuts into four stages: after the backbone (a fixed-size boundary), after NonMaxSuppression and after the
    /// Gather of the kept boxes (boundaries whose size changes with every picture).
    /// </summary>
    public static IReadOnlyList<int> CutPositions(ModelGraph graph)
    {
        var order = graph.Order.ToList();
        int After(string tensor) => order.FindIndex(n => n.Outputs.Contains(tensor)) + 1;
        return [After(Features), After(Selected), After(KeptBoxes)];
    }

    private static float[] Positive(Random random, int outputs, int fanIn)
    {
        // Each output's weights sum to 1, so a mid-grey picture gives a mid-grey feature.
        var values = new float[outputs * fanIn];
        for (var o = 0; o < outputs; o++)
        {
            var row = values.AsSpan(o * fanIn, fanIn);
            for (var i = 0; i < fanIn; i++)
            {
                row[i] = 0.5f + random.NextSingle();
            }

            var sum = 0f;
            foreach (var v in row)
            {
                sum += v;
            }

            for (var i = 0; i < fanIn; i++)
            {
                row[i] /= sum;
            }
        }

        return values;
    }

    private static float[] AnchorBoxes()
    {
        var boxes = new float[Anchors * 4];
        for (var cell = 0; cell < Anchors; cell++)
        {
            float cy = (2 * (cell / Cells)) + 1, cx = (2 * (cell % Cells)) + 1;
            boxes[(cell * 4) + 0] = cy - 2;
            boxes[(cell * 4) + 1] = cx - 2;
            boxes[(cell * 4) + 2] = cy + 2;
            boxes[(cell * 4) + 3] = cx + 2;
        }

        return boxes;
    }
}
