using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Sink.Decoders;

/// <summary>A region of text: axis-aligned box in original-image pixels and the mean text probability inside it.</summary>
public sealed record TextRegion(Box Box, double Score);

/// <summary>The text regions found in one frame, best score first.</summary>
public sealed record TextRegions(IReadOnlyList<TextRegion> Regions);

/// <summary>
/// PaddleOCR DBNet text detector: binarise the probability map, take 8-connected components,
/// drop small or faint ones, and grow each component's box as DB's unclip does
/// (offset = area * ratio / perimeter). Boxes are axis-aligned, not rotated rectangles.
/// </summary>
public sealed class TextRegionDecoder(
    double threshold = 0.3,
    double boxThreshold = 0.6,
    double unclipRatio = 1.5,
    int minArea = 10,
    int minSide = 3,
    int maxRegions = 1000) : IResultDecoder
{
    public string Name => "paddleocr-det";

    public object Decode(IReadOnlyList<HostTensor> outputs, DecodeContext ctx)
    {
        var tensor = DecoderTensors.Single(outputs, Name);
        var shape = tensor.Shape;
        if (shape.Length != 4 || shape[0] != 1 || shape[1] != 1)
        {
            throw new PipelineInputException($"Output '{tensor.Name}' has shape [{string.Join(",", shape)}], not [1,1,H,W]; "
                + "the 'paddleocr-det' decoder reads DBNet's probability map.");
        }

        var height = (int)shape[2];
        var width = (int)shape[3];
        var map = DecoderTensors.Floats(tensor);
        var sx = (double)ctx.InputWidth / width;
        var sy = (double)ctx.InputHeight / height;

        var regions = new List<TextRegion>();
        foreach (var c in Components(map, width, height, (float)threshold))
        {
            var w = c.MaxX - c.MinX + 1;
            var h = c.MaxY - c.MinY + 1;
            var score = c.Sum / c.Count;
            if (c.Count < minArea || Math.Min(w, h) < minSide || score < boxThreshold)
            {
                continue;
            }

            var offset = w * h * unclipRatio / (2.0 * (w + h));
            if (Math.Min(w, h) + (2 * offset) < minSide + 2)
            {
                continue;
            }

            var grown = new Box((c.MinX - offset) * sx, (c.MinY - offset) * sy, (w + (2 * offset)) * sx, (h + (2 * offset)) * sy);
            regions.Add(new TextRegion(ctx.ToImage(grown), score));
        }

        return new TextRegions(regions.OrderByDescending(r => r.Score).Take(maxRegions).ToList());
    }

    /// <summary>One 8-connected group of pixels above the threshold: its extent, size and summed probability.</summary>
    internal readonly record struct Component(int MinX, int MinY, int MaxX, int MaxY, int Count, double Sum);

    /// <summary>The 8-connected components of pixels with probability above <paramref name="threshold"/>.</summary>
    internal static List<Component> Components(ReadOnlySpan<float> map, int width, int height, float threshold)
    {
        var visited = new bool[width * height];
        var stack = new Stack<int>();
        var components = new List<Component>();
        for (var start = 0; start < visited.Length; start++)
        {
            if (visited[start] || map[start] <= threshold)
            {
                continue;
            }

            int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1, count = 0;
            double sum = 0;
            visited[start] = true;
            stack.Push(start);
            while (stack.Count > 0)
            {
                var p = stack.Pop();
                var x = p % width;
                var y = p / width;
                (minX, maxX, minY, maxY) = (Math.Min(minX, x), Math.Max(maxX, x), Math.Min(minY, y), Math.Max(maxY, y));
                count++;
                sum += map[p];
                for (var dy = -1; dy <= 1; dy++)
                {
                    for (var dx = -1; dx <= 1; dx++)
                    {
                        var nx = x + dx;
                        var ny = y + dy;
                        if ((dx == 0 && dy == 0) || nx < 0 || ny < 0 || nx >= width || ny >= height)
                        {
                            continue;
                        }

                        var q = (ny * width) + nx;
                        if (!visited[q] && map[q] > threshold)
                        {
                            visited[q] = true;
                            stack.Push(q);
                        }
                    }
                }
            }

            components.Add(new Component(minX, minY, maxX, maxY, count, sum));
        }

        return components;
    }
}
