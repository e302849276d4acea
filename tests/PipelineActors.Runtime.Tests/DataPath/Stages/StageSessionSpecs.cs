using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx.Proto;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Stages;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.TestSupport;

using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;

namespace PipelineActors.Runtime.Tests.DataPath.Stages;

/// <summary>Stage sessions on tensors whose size changes from frame to frame, the detector's boxes after NonMaxSuppression.</summary>
public sealed class StageSessionSpecs : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-session-").FullName;

    [Fact]
    public void A_detector_split_in_four_gives_the_whole_models_boxes_while_their_count_changes_from_frame_to_frame()
    {
        var model = BoxCountDetector.Build();
        var analysis = ModelAnalysis.Analyze(model);
        var stages = StageExtractor.Extract(analysis, BoxCountDetector.CutPositions(analysis.Graph));
        Assert.Equal(4, stages.Count);
        var sessions = stages.Select(s =>
        {
            var path = Path.Combine(_folder, s.FileName);
            OnnxModelFile.Save(s.Model, path);
            return new StageSession(path, 1);
        }).ToList();
        using var whole = new OrtSession(model.ToByteArray(), 1, optimize: true);
        try
        {
            var pictures = BoxCountDetector.Pictures();
            var frames = pictures
                .Select((p, i) => new Frame(
                    i, "camera", 1, 1_700_000_000_000_000 + i, 1, [p]))
                .ToList();

            // Stage by stage, as a pipeline runs: each session sees every frame in turn before the next stage starts,
            // and what leaves a stage crosses a link through the frame codec.
            foreach (var (stage, session) in stages.Zip(sessions))
            {
                frames = frames.Select(frame =>
                {
                    var forwarded = stage.Forwarded.Select(f => frame.Tensors.Single(t => t.Name == f.Name));
                    var emitted = session.Run(frame.Tensors).Concat(forwarded).ToList();
                    return FrameCodec.Decode(FrameCodec.Encode(frame with { Tensors = emitted }));
                }).ToList();
            }

            var counts = new List<long>();
            foreach (var (picture, frame) in pictures.Zip(frames))
            {
                var expected = whole.Run(new Dictionary<string, HostTensor> { [picture.Info.Name] = picture });
                foreach (var name in analysis.Graph.OutputNames)
                {
                    var actual = frame.Tensors.Single(t => t.Name == name);
                    Assert.Equal(expected[name].Info.Shape, actual.Shape);
                    var difference = HostTensor.RelativeDifference(expected[name], new HostTensor(actual.Info, actual.Data));
                    Assert.True(difference <= 1e-6, $"frame {frame.FrameId} {name}: relative difference {difference:E2}");
                }

                counts.Add(expected[BoxCountDetector.Boxes].Info.Shape[0]);
            }

            // The fixed-size boundary keeps its buffers between frames; the boxes are allocated by ONNX Runtime at their size.
            Assert.Equal([BoxCountDetector.Features], sessions[0].ReusedOutputs);
            Assert.DoesNotContain(BoxCountDetector.Selected, sessions[1].ReusedOutputs);
            Assert.Empty(sessions[3].ReusedOutputs);
            Assert.Contains(0, counts);
            Assert.True(counts.Distinct().Count() >= 4, $"box counts {string.Join(", ", counts)} hardly vary.");
        }
        finally
        {
            foreach (var session in sessions)
            {
                session.Dispose();
            }
        }
    }

    /// <summary>
    /// The review's R9 case: ONNX Runtime refuses a frame of a new shape in the branch that replaces the bound buffers
    /// (an index out of range, found only when it runs), then a good frame of that same shape takes the fast path. That
    /// frame must not run on buffers the failed run released; here it gives the right sum, and the session goes on
    /// reusing its own output buffer.
    /// </summary>
    [Fact]
    public void A_refused_frame_of_a_new_shape_leaves_no_released_buffer_for_the_next_frame_of_that_shape()
    {
        var builder = new OnnxBuilder();
        builder.Input("index", DataType.Int64, 0);
        var picked = builder.Op("Gather", [builder.Floats([4], [1, 2, 4, 8]), "index"]);
        builder.Node("ReduceSum", [picked], ["sum"], new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        builder.Output("sum", DataType.Float, [1]);
        var path = Path.Combine(_folder, "gather-sum.onnx");
        OnnxModelFile.Save(builder.Model, path);
        using var session = new StageSession(path, 1);

        Assert.Equal(3f, Sum(session.Run([Indices(0, 1)])));
        Assert.Equal(["sum"], session.ReusedOutputs);

        var refused = Assert.ThrowsAny<Exception>(() => session.Run([Indices(0, 1, 9)]));
        Assert.Contains("9", refused.Message, StringComparison.Ordinal);
        Assert.ThrowsAny<Exception>(() => session.Run([Indices(0, 1, 9)])); // the ingest's immediate retry: refused again, no crash

        Assert.Equal(7f, Sum(session.Run([Indices(0, 1, 2)])));
        Assert.Equal(13f, Sum(session.Run([Indices(0, 2, 3)])));
        Assert.Equal(["sum"], session.ReusedOutputs);
        Assert.Equal(3f, Sum(session.Run([Indices(1, 0)])));
        Assert.False(session.Broken);
    }

    private static HostTensor Indices(params long[] indices) =>
        new("index", DataType.Int64, [indices.Length], MemoryMarshal.AsBytes(indices.AsSpan()).ToArray());

    private static float Sum(IReadOnlyList<HostTensor> outputs)
    {
        var sum = Assert.Single(outputs);
        Assert.Equal([1L], sum.Shape);
        return BitConverter.ToSingle(sum.Data);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
