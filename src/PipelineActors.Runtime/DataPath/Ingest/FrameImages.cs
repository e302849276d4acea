using System.Collections.Concurrent;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;

namespace PipelineActors.Runtime.DataPath.Ingest;

/// <summary>
/// The pixels of frames still in the pipeline, kept on the ingest node only when results are to be
/// drawn on them (<c>--annotate</c>): the ingest puts a frame's picture in, the annotator takes it
/// out when the result arrives. Bounded: the oldest pictures go first.
/// </summary>
public sealed class FrameImages(int capacity = 512)
{
    private readonly ConcurrentDictionary<long, FrameTensor> _images = new();
    private readonly ConcurrentQueue<long> _order = new();

    public void Put(long frameId, FrameTensor pixels)
    {
        _images[frameId] = pixels;
        _order.Enqueue(frameId);
        while (_images.Count > capacity && _order.TryDequeue(out var oldest))
        {
            _images.TryRemove(oldest, out _);
        }
    }

    public FrameTensor? Take(long frameId) => _images.TryRemove(frameId, out var pixels) ? pixels : null;
}
