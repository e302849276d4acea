using Xunit.Abstractions;
using PipelineActors.Runtime.DataPath.Sink.Decoders;

namespace PipelineActors.Runtime.Tests.DataPath.Sink.Decoders;

/// <summary>The decoders on real pictures (Debian opencv-doc) through the whole bundled models, against boxes measured by hand.</summary>
public sealed class PictureDecodingSpecs(ITestOutputHelper output)
{
    // Measured by hand on scenetext01.jpg (800x600): crops of the sign scaled 4x with a 5 px grid
    // drawn on them (ImageMagick), reading each word's ink extent off the grid, then checked by
    // drawing the boxes on the picture. (x, y, width, height) in picture pixels.
    private static readonly (string Word, Box Box)[] SignWords =
    [
        ("NOTICE", new Box(280, 43, 143, 28)),
        ("DOUBLE", new Box(279, 88, 139, 32)),
        ("PARKING", new Box(277, 130, 142, 31)),
        ("PROHIBITED", new Box(277, 174, 145, 32)),
        ("TIMES", new Box(351, 216, 53, 33)),
    ];

    // Messi's face in messi5.jpg (548x342), measured by hand the same way (a 6x crop with a 5 px
    // grid): left cheek edge x=219, right cheek edge x=258, eyebrows/forehead y=95, chin y=129.
    private static readonly Box MessiFace = new(219, 95, 39, 34);

    [Fact]
    public void BlazeFace_finds_the_face_in_messi5_against_a_box_measured_by_hand()
    {
        var image = TestPictures.Load("data/messi5.jpg");
        var side = Math.Max(image.Width, image.Height);
        // Letterbox: pad to a square, centred, so the face keeps its aspect ratio.
        var input = image.Pad(side, side, (side - image.Width) / 2, (side - image.Height) / 2)
            .Resize(BlazeFaceDecoder.InputSize, BlazeFaceDecoder.InputSize)
            .ToNhwc((v, _) => (v / 127.5f) - 1);
        var outputs = TestPictures.Run("blazeface-back-256.onnx", "input:0", [1, 256, 256, 3], input);

        var ctx = new DecodeContext(image.Width, image.Height, 256, 256, ImageFit.Letterbox);
        var faces = ((FaceDetections)DecoderRegistry.Get("blazeface").Decode(outputs, ctx)).Faces;
        foreach (var f in faces)
        {
            output.WriteLine($"face {f.Box} score {f.Score:0.000} IoU {f.Box.IoU(MessiFace):0.000}");
        }

        Assert.NotEmpty(faces);
        var best = faces[0];
        Assert.True(best.Box.IoU(MessiFace) >= 0.5,
            $"Best face {best.Box} has IoU {best.Box.IoU(MessiFace):0.000} with the hand-measured {MessiFace}.");
        Assert.Single(faces, f => f.Box.IoU(MessiFace) > 0);
        // Keypoints: the eyes and nose tip lie inside the measured face.
        foreach (var k in best.Keypoints.Take(3))
        {
            Assert.InRange(k.X, MessiFace.X, MessiFace.X + MessiFace.Width);
            Assert.InRange(k.Y, MessiFace.Y, MessiFace.Y + MessiFace.Height);
        }
    }

    [Fact]
    public void Text_detector_boxes_cover_the_words_of_the_sign_in_scenetext01()
    {
        var image = TestPictures.Load("text/scenetext01.jpg");
        // PaddleOCR's DetResizeForTest: longer side at most 960, each side rounded to a multiple of 32.
        var ratio = Math.Min(1.0, 960.0 / Math.Max(image.Width, image.Height));
        var w = Math.Max(32, (int)Math.Round(image.Width * ratio / 32) * 32);
        var h = Math.Max(32, (int)Math.Round(image.Height * ratio / 32) * 32);
        float[] mean = [0.485f, 0.456f, 0.406f];
        float[] std = [0.229f, 0.224f, 0.225f];
        var input = image.Resize(w, h).ToNchwBgr((v, c) => ((v / 255f) - mean[c]) / std[c]);
        var outputs = TestPictures.Run("paddleocr-text-det.onnx", "x", [1, 3, h, w], input);

        var ctx = new DecodeContext(image.Width, image.Height, w, h);
        var regions = ((TextRegions)DecoderRegistry.Get("paddleocr-det").Decode(outputs, ctx)).Regions;
        foreach (var r in regions)
        {
            output.WriteLine($"region {r.Box} score {r.Score:0.000}");
        }

        foreach (var (word, box) in SignWords)
        {
            var match = regions.Select(r => Math.Max(r.Box.IoU(box), r.Box.IntersectionArea(box) / box.Area)).DefaultIfEmpty(0).Max();
            Assert.True(match >= 0.5, $"No detected region covers '{word}' at {box} (best IoU or coverage {match:0.000}).");
        }

        // A box over half the picture would "cover" every word without finding any.
        Assert.All(regions, r => Assert.True(r.Box.Area < 0.25 * image.Width * image.Height, $"Region {r.Box} is implausibly large."));
    }

    [Theory]
    [InlineData("PARKING")]
    [InlineData("PROHIBITED")]
    public void Classifier_tells_a_word_from_the_same_word_turned_180_degrees(string word)
    {
        var box = SignWords.Single(s => s.Word == word).Box;
        var crop = TestPictures.Load("text/scenetext01.jpg").Crop((int)box.X, (int)box.Y, (int)box.Width, (int)box.Height);
        var decoder = DecoderRegistry.Get("paddleocr-cls");
        var ctx = new DecodeContext(crop.Width, crop.Height, 192, 48);

        var upright = (TextDirection)decoder.Decode(TestPictures.Run("paddleocr-textdir-cls.onnx", "x", [1, 3, 48, 192], ClassifierInput(crop)), ctx);
        var turned = (TextDirection)decoder.Decode(TestPictures.Run("paddleocr-textdir-cls.onnx", "x", [1, 3, 48, 192],
            ClassifierInput(crop.Rotate180())), ctx);
        output.WriteLine($"{word}: upright {upright}, turned {turned}");

        Assert.Equal((0, 0), (upright.Class, upright.Angle));
        Assert.True(upright.Score > 0.5);
        Assert.Equal((1, 180), (turned.Class, turned.Angle));
        Assert.True(turned.Score > 0.5);
    }

    /// <summary>PaddleOCR's predict_cls resize: height 48 keeping aspect (width at most 192), to [-1,1], zeros padded on the right.</summary>
    private static float[] ClassifierInput(RgbImage crop)
    {
        const int H = 48, W = 192;
        var w = Math.Min(W, (int)Math.Ceiling(H * (double)crop.Width / crop.Height));
        var resized = crop.Resize(w, H).ToNchwBgr((v, _) => ((v / 255f) - 0.5f) / 0.5f);
        var padded = new float[3 * H * W];
        for (var row = 0; row < 3 * H; row++)
        {
            Array.Copy(resized, row * w, padded, row * W, w);
        }

        return padded;
    }
}
