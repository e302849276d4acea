using StbImageSharp;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;

namespace PipelineActors.Runtime.DataPath.Sources;

/// <summary>
/// The JPEG and PNG files of a folder in name order (ordinal), decoded by StbImageSharp and
/// preprocessed for the model; once or looped. A file that cannot be decoded is reported as a
/// fault and skipped.
/// </summary>
public sealed class ImageFolderSource : IFrameSource, IReportsFaults
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png"];

    private readonly string[] _files;
    private readonly bool _loop;
    private readonly Preprocessor _preprocessor;
    private int _next;
    private int _failedInARow;

    public ImageFolderSource(string directory, Preprocessor preprocessor, bool loop = false, double framesPerSecond = 0, string? id = null)
    {
        if (!Directory.Exists(directory))
        {
            throw new PipelineInputException($"Image folder '{directory}' does not exist; give images:DIR a folder of JPEG or PNG files.");
        }

        _files = Directory.EnumerateFiles(directory)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (_files.Length == 0)
        {
            throw new PipelineInputException($"Image folder '{directory}' holds no .jpg, .jpeg or .png file.");
        }

        _preprocessor = preprocessor;
        _loop = loop;
        FramesPerSecond = framesPerSecond;
        Id = id ?? "images:" + directory;
        Faults = new SourceFaults(Id);
    }

    public string Id { get; }

    public bool IsLive => false;

    public double FramesPerSecond { get; }

    public SourceFaults Faults { get; }

    /// <summary>The files read, in order.</summary>
    public IReadOnlyList<string> Files => _files;

    public IReadOnlyList<HostTensor>? Read()
    {
        while (true)
        {
            if (_next == _files.Length)
            {
                if (!_loop)
                {
                    return null;
                }

                _next = 0;
            }

            if (_failedInARow >= _files.Length)
            {
                // Every file failed once in a row: looping would spin for ever.
                Faults.Report($"No file in {Id} could be decoded; the source ends.", ended: true);
                _next = _files.Length;
                _failedInARow = 0;
                return null;
            }

            var file = _files[_next++];
            try
            {
                var image = ImageResult.FromMemory(File.ReadAllBytes(file), ColorComponents.RedGreenBlue);
                _failedInARow = 0;
                return [_preprocessor.Run(image.Data, image.Width, image.Height)];
            }
            catch (Exception e)
            {
                _failedInARow++;
                Faults.Report($"Image '{file}' could not be decoded ({e.Message}); skipped.");
            }
        }
    }

    public void Dispose()
    {
    }
}
