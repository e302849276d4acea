using System.Diagnostics;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Runtime.Tests.DataPath.Sources;

/// <summary>An RTSP camera that pushes its stream, against a real ffmpeg encoder on 127.0.0.1.</summary>
public sealed class RtspSourceSpecs
{
    private static readonly ModelProfile Face = new("input:0", 24, 32, TensorLayout.Nhwc, ChannelOrder.Rgb, 1 / 127.5f, [1, 1, 1], [1, 1, 1]);

    [Fact]
    public async Task An_rtsp_source_in_listen_mode_takes_frames_an_encoder_pushes_to_it()
    {
        var port = TestPorts.Free();
        using var source = SourceSpec.Parse($"rtsp://127.0.0.1:{port}/live?listen", Face,
            new FrameSourceOptions(Uint8Pixels: true, FramesPerSecond: 30));
        Assert.True(source.IsLive);
        var frames = new List<HostTensor>();
        var reader = Task.Run(() =>
        {
            while (frames.Count < 20)
            {
                var frame = source.Read();
                if (frame is null)
                {
                    break;
                }

                frames.Add(frame[0]);
            }
        });

        // The encoder (a camera's role) pushes a test pattern. The listener takes a moment to open its port, and a
        // push that finds it closed exits at once, so the encoder tries again until the reader has its frames.
        var deadline = Stopwatch.StartNew();
        do
        {
            await Task.Delay(500);
            var push = new ProcessStartInfo("ffmpeg")
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
                "-t", "5", "-c:v", "mpeg4", "-f", "rtsp", "-rtsp_transport", "tcp", $"rtsp://127.0.0.1:{port}/live" })
            {
                push.ArgumentList.Add(arg);
            }

            using var encoder = Process.Start(push)!;
            _ = encoder.StandardError.ReadToEndAsync();
            await Task.WhenAny(reader, encoder.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(Math.Max(0, 30 - deadline.Elapsed.TotalSeconds))));
            encoder.Kill(entireProcessTree: true);
        }
        while (!reader.IsCompleted && deadline.Elapsed < TimeSpan.FromSeconds(30));

        Assert.True(reader.IsCompleted, "no frames arrived from the encoder within 30 s");
        await reader; // rethrows what the reader met
        Assert.Equal(20, frames.Count);
        Assert.All(frames, f =>
        {
            Assert.Equal(DataType.Uint8, f.ElementType);
            Assert.Equal(new long[] { 1, 24, 32, 3 }, f.Shape);
        });
        Assert.Contains(frames, f => !f.Data.AsSpan().SequenceEqual(frames[0].Data)); // the pattern moves
    }
}
