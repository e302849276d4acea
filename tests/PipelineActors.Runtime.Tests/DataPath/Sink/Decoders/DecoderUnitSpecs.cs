using System.Runtime.InteropServices;
using System.Text.Json;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Sink.Decoders;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.Tests.DataPath.Sink.Decoders;

/// <summary>Anchors, weighted NMS, connected components and the decoders on hand-made tensors.</summary>
public sealed class DecoderUnitSpecs
{
    private static readonly Point2[] NoKeypoints = [];

    [Fact]
    public void BlazeFace_anchors_are_a_16x16_grid_of_2_then_an_8x8_grid_of_6_ordered_row_cell_anchor()
    {
        var anchors = BlazeFaceAnchors.Generate();

        Assert.Equal(896, anchors.Length);
        Assert.Equal((0.5f / 16, 0.5f / 16), anchors[0]);
        Assert.Equal(anchors[0], anchors[1]);
        Assert.Equal((1.5f / 16, 0.5f / 16), anchors[2]);
        Assert.Equal((0.5f / 16, 1.5f / 16), anchors[16 * 2]);
        Assert.Equal((15.5f / 16, 15.5f / 16), anchors[511]);
        Assert.All(anchors.Skip(512).Take(6), a => Assert.Equal((0.5f / 8, 0.5f / 8), a));
        Assert.Equal((1.5f / 8, 0.5f / 8), anchors[512 + 6]);
        // index = (cy * G + cx) * A + a, for cell (cx=3, cy=5) of the 8x8 grid, anchor 4.
        Assert.Equal((3.5f / 8, 5.5f / 8), anchors[512 + (((5 * 8) + 3) * 6) + 4]);
        Assert.Equal((7.5f / 8, 7.5f / 8), anchors[895]);
    }

    [Fact]
    public void Weighted_nms_merges_overlapping_boxes_by_score_and_keeps_the_best_score()
    {
        var a = new Face(new Box(0, 0, 10, 10), 0.9, [new Point2(2, 2)]);
        var b = new Face(new Box(2, 0, 10, 10), 0.6, [new Point2(4, 2)]); // IoU with a = 80/120
        var far = new Face(new Box(50, 50, 10, 10), 0.7, [new Point2(55, 55)]);

        var kept = WeightedNms.Suppress([b, far, a], 0.3);

        Assert.Equal(2, kept.Count);
        Assert.Equal(0.9, kept[0].Score);
        Assert.Equal(2 * 0.6 / 1.5, kept[0].Box.X, 9);
        Assert.Equal(10, kept[0].Box.Width, 9);
        Assert.Equal(((2 * 0.9) + (4 * 0.6)) / 1.5, kept[0].Keypoints[0].X, 9);
        Assert.Equal((far.Box, far.Score, far.Keypoints[0]), (kept[1].Box, kept[1].Score, kept[1].Keypoints[0]));
    }

    [Fact]
    public void Weighted_nms_keeps_boxes_that_overlap_by_no_more_than_the_threshold()
    {
        var a = new Face(new Box(0, 0, 10, 10), 0.9, NoKeypoints);
        var b = new Face(new Box(5, 0, 10, 10), 0.8, NoKeypoints); // IoU = 50/150 = 0.333

        Assert.Single(WeightedNms.Suppress([a, b], 0.3));
        Assert.Equal(2, WeightedNms.Suppress([a, b], 0.34).Count);
    }

    [Fact]
    public void BlazeFace_decodes_one_anchor_whatever_the_order_of_the_outputs()
    {
        var scores0 = Filled(512, -20f);
        var scores1 = Filled(384, -20f);
        var reg0 = new float[512 * 16];
        var reg1 = new float[384 * 16];
        // 8x8 layer, cell (cx=2, cy=4), anchor 1: centre (2.5/8, 4.5/8) = (80, 144) px; shift by (+8, -16) px; 64x32 px.
        var i = (((4 * 8) + 2) * 6) + 1;
        scores1[i] = 3f;
        reg1[(i * 16) + 0] = 8;
        reg1[(i * 16) + 1] = -16;
        reg1[(i * 16) + 2] = 64;
        reg1[(i * 16) + 3] = 32;
        reg1[(i * 16) + 4] = 10;  // right eye x
        // Raw logits beyond +-100 are clipped, not overflowed.
        scores0[7] = -1e30f;
        var outputs = new[]
        {
            Tensor("Identity_3:0", [1, 384, 16], reg1),
            Tensor("Identity:0", [1, 512, 1], scores0),
            Tensor("Identity_2:0", [1, 512, 16], reg0),
            Tensor("Identity_1:0", [1, 384, 1], scores1),
        };

        // 512x512 picture stretched to 256x256: image pixels are twice input pixels.
        var faces = ((FaceDetections)new BlazeFaceDecoder().Decode(outputs, new DecodeContext(512, 512, 256, 256))).Faces;

        var face = Assert.Single(faces);
        Assert.Equal(1 / (1 + Math.Exp(-3)), face.Score, 6);
        Assert.Equal(new Box(2 * (88 - 32), 2 * (128 - 16), 2 * 64, 2 * 32), Rounded(face.Box));
        Assert.Equal(2 * 90, face.Keypoints[0].X, 3);
        Assert.Equal(2 * 144, face.Keypoints[1].Y, 3);
    }

    [Fact]
    public void BlazeFace_names_the_shapes_it_needs_when_given_another_models_outputs()
    {
        var error = Assert.Throws<PipelineInputException>(() => new BlazeFaceDecoder().Decode([Tensor("softmax", [1, 2], [0.5f, 0.5f])],
            new DecodeContext(1, 1, 256, 256)));
        Assert.Contains("[1,512,16]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Letterbox_maps_input_pixels_back_through_the_padding()
    {
        // 512x256 picture in a 256x256 input: scale 0.5, 64 rows of padding above.
        var ctx = new DecodeContext(512, 256, 256, 256, ImageFit.Letterbox);

        Assert.Equal((0.0, 0.0), ctx.ToImage(0, 64));
        Assert.Equal((512.0, 256.0), ctx.ToImage(256, 192));
        // A box reaching into the padding is clipped to the picture: x -10..10, y -8..12.
        Assert.Equal(new Box(0, 0, 10, 12), Rounded(ctx.ToImage(new Box(-5, 60, 10, 10))));
    }

    [Fact]
    public void Components_join_diagonal_neighbours_and_measure_each_group()
    {
        var map = new float[]
        {
            0.9f, 0.0f, 0.0f, 0.0f, 0.5f,
            0.0f, 0.8f, 0.0f, 0.0f, 0.5f,
            0.0f, 0.0f, 0.0f, 0.0f, 0.0f,
        };

        var components = TextRegionDecoder.Components(map, 5, 3, 0.3f).OrderBy(c => c.MinX).ToList();

        Assert.Equal(2, components.Count);
        Assert.Equal((0, 0, 1, 1, 2), (components[0].MinX, components[0].MinY, components[0].MaxX, components[0].MaxY, components[0].Count));
        Assert.Equal(1.7, components[0].Sum, 5);
        Assert.Equal((4, 0, 4, 1, 2), (components[1].MinX, components[1].MinY, components[1].MaxX, components[1].MaxY, components[1].Count));
    }

    [Fact]
    public void Text_regions_are_unclipped_scaled_back_and_small_or_faint_ones_dropped()
    {
        const int W = 64, H = 32;
        var map = new float[W * H];
        Fill(map, W, 10, 8, 20, 6, 0.9f);   // a word: 20x6 px
        Fill(map, W, 40, 20, 2, 2, 0.9f);   // too small
        Fill(map, W, 40, 4, 12, 6, 0.4f);   // above 0.3 but mean score below 0.6
        var outputs = new[] { Tensor("sigmoid_0.tmp_0", [1, 1, H, W], map) };

        // 128x64 picture resized to 64x32 input: picture pixels are twice map pixels.
        var regions = ((TextRegions)DecoderRegistry.Get("paddleocr-det").Decode(outputs, new DecodeContext(128, 64, W, H))).Regions;

        var region = Assert.Single(regions);
        var offset = 20 * 6 * 1.5 / (2 * (20 + 6)); // DB unclip: area * ratio / perimeter
        Assert.Equal(Rounded(new Box(2 * (10 - offset), 2 * (8 - offset), 2 * (20 + (2 * offset)), 2 * (6 + (2 * offset)))), Rounded(region.Box));
        Assert.Equal(0.9, region.Score, 5);
    }

    [Fact]
    public void Classifier_reads_class_and_score_from_the_softmax()
    {
        var decoder = DecoderRegistry.Get("paddleocr-cls");
        var ctx = new DecodeContext(100, 20, 192, 48);

        Assert.Equal(new TextDirection(0, 0, 0.75), Rounded((TextDirection)decoder.Decode([Tensor("softmax_0.tmp_0", [1, 2], [0.75f, 0.25f])], ctx)));
        Assert.Equal(new TextDirection(1, 180, 0.875),
            Rounded((TextDirection)decoder.Decode([Tensor("softmax_0.tmp_0", [1, 2], [0.125f, 0.875f])], ctx)));
    }

    [Fact]
    public void Registry_names_the_decoders_it_knows_when_asked_for_an_unknown_one()
    {
        Assert.Equal(["blazeface", "paddleocr-cls", "paddleocr-det"], DecoderRegistry.Names.Order(StringComparer.Ordinal));
        Assert.All(DecoderRegistry.Names, n => Assert.Equal(n, DecoderRegistry.Get(n).Name));

        var error = Assert.Throws<PipelineInputException>(() => DecoderRegistry.Get("yolo"));
        Assert.Equal("There is no result decoder named 'yolo'; use one of: paddleocr-cls, paddleocr-det, blazeface.", error.Message);
    }

    [Fact]
    public void Results_serialise_as_json_without_derived_fields()
    {
        var faces = new FaceDetections([new Face(new Box(1, 2, 3, 4), 0.5, [new Point2(1.5, 2.5)])]);

        var json = JsonSerializer.Serialize<object>(faces);

        Assert.Equal("{\"Faces\":[{\"Box\":{\"X\":1,\"Y\":2,\"Width\":3,\"Height\":4},\"Score\":0.5,\"Keypoints\":[{\"X\":1.5,\"Y\":2.5}]}]}", json);
        Assert.Contains("\"Regions\"", JsonSerializer.Serialize<object>(new TextRegions([new TextRegion(new Box(0, 0, 1, 1), 1)])),
            StringComparison.Ordinal);
    }

    private static HostTensor Tensor(string name, long[] shape, float[] values) =>
        new(name, TensorProto.Types.DataType.Float, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static float[] Filled(int n, float value) => Enumerable.Repeat(value, n).ToArray();

    private static void Fill(float[] map, int width, int x0, int y0, int w, int h, float value)
    {
        for (var y = y0; y < y0 + h; y++)
        {
            map.AsSpan((y * width) + x0, w).Fill(value);
        }
    }

    private static Box Rounded(Box b) => new(Math.Round(b.X, 4), Math.Round(b.Y, 4), Math.Round(b.Width, 4), Math.Round(b.Height, 4));

    private static TextDirection Rounded(TextDirection d) => d with { Score = Math.Round(d.Score, 6) };
}
