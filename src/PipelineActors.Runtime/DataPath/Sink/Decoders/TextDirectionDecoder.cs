using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Sink.Decoders;

/// <summary>Text direction of a text-line crop: class 0 is upright (0 degrees), class 1 is upside down (180 degrees).</summary>
public sealed record TextDirection(int Class, int Angle, double Score);

/// <summary>PaddleOCR text-direction classifier: argmax of the <c>[N,2]</c> softmax (first row when N &gt; 1).</summary>
public sealed class TextDirectionDecoder : IResultDecoder
{
    public string Name => "paddleocr-cls";

    public object Decode(IReadOnlyList<HostTensor> outputs, DecodeContext ctx) => DecodeAll(outputs)[0];

    /// <summary>One result per row of the batch.</summary>
    public static IReadOnlyList<TextDirection> DecodeAll(IReadOnlyList<HostTensor> outputs)
    {
        var tensor = DecoderTensors.Single(outputs, "paddleocr-cls");
        var p = DecoderTensors.Floats(tensor);
        if (tensor.Shape.Length != 2 || tensor.Shape[1] != 2 || p.Length == 0)
        {
            throw new PipelineInputException($"Output '{tensor.Name}' has shape [{string.Join(",", tensor.Shape)}], not [N,2]; "
                + "the 'paddleocr-cls' decoder reads the text-direction classifier's softmax.");
        }

        var results = new List<TextDirection>(p.Length / 2);
        for (var row = 0; row < p.Length / 2; row++)
        {
            var upsideDown = p[(2 * row) + 1] > p[2 * row];
            results.Add(new TextDirection(upsideDown ? 1 : 0, upsideDown ? 180 : 0, upsideDown ? p[(2 * row) + 1] : p[2 * row]));
        }

        return results;
    }
}
