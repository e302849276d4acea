using System.Runtime.InteropServices;
using Google.Protobuf;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Stages;
using PipelineActors.Transfer.Calibration;
using PipelineActors.Transfer.Projection;
using PipelineActors.TestSupport;

namespace PipelineActors.Transfer.Tests.Calibration;

/// <summary>
/// The calibrator on the pretrained BlazeFace: two cuts from one pass per frame, statistics equal to those of each cut's
/// upstream stage run alone, and covariances that survive calibration.json and fit the same projection.
/// </summary>
public sealed class CutCalibratorSpecs : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"pa-calibrator-{Guid.NewGuid():N}");

    [Fact]
    public void Two_cuts_are_calibrated_in_one_pass_as_each_upstream_stage_alone_sees_them_and_survive_the_file()
    {
        var analysis = BlazeFace();
        var cuts = analysis.Cuts.Where(c => c.IsSingleTensor && c.Cargo[0].Shape.Length == 4).Select(c => c.Position).ToArray();
        int[] positions = [cuts[cuts.Length / 3], cuts[2 * cuts.Length / 3]];
        var input = analysis.Shapes.InputSizes[0];
        var frames = Enumerable.Range(1, 3)
            .Select(seed => new Dictionary<string, HostTensor> { [input.Name] = HostTensor.Deterministic(input, seed) })
            .ToList();

        using var calibrator = new CutCalibrator(analysis, positions);
        frames.ForEach(calibrator.Add);
        var calibration = calibrator.Result();
        calibration.Save(_folder);
        var back = CutCalibration.Load(_folder);

        Assert.Equal(positions, back.Boundaries.Select(b => b.Position));
        foreach (var position in positions)
        {
            var cargo = analysis.CutAt(position).Cargo[0];
            using var up = new OrtSession(StageExtractor.ExtractRange(analysis, 0, position).Model.ToByteArray());
            var expected = new TensorStatistics(cargo.Name, 1, (int)cargo.Shape[1]);
            var covariance = new ChannelCovariance((int)cargo.Shape[1]);
            foreach (var frame in frames)
            {
                var values = MemoryMarshal.Cast<byte, float>(up.Run(frame)[cargo.Name].Data.AsSpan()).ToArray();
                expected.Add(values, cargo.Shape);
                covariance.Add(values, cargo.Shape);
            }

            Assert.Equal(3, back.For(position, cargo.Name).Frames);
            Assert.Equal(expected.ToJson(), back.For(position, cargo.Name).ToJson());
            var fitted = back.CovarianceFor(position, cargo.Name).Fit(4);
            var direct = covariance.Fit(4);
            Assert.Equal(direct.ExplainedVariance, fitted.ExplainedVariance, 1e-9);
            Assert.Equal(direct.Mean, fitted.Mean);
        }
    }

    [Fact]
    public void A_calibrator_that_saw_no_frame_and_a_broken_covariance_are_input_errors()
    {
        var analysis = BlazeFace();
        using var calibrator = new CutCalibrator(analysis, [analysis.Cuts[10].Position]);

        Assert.Contains("saw no frames", Assert.Throws<PipelineInputException>(calibrator.Result).Message);
        var broken = new ChannelCovarianceState("t", 3, 10, [1, 2, 3], [1, 2]);
        Assert.Contains("inconsistent channel covariance for 't'",
            Assert.Throws<PipelineInputException>(() => ChannelCovariance.FromState(broken, "calibration.json")).Message);
    }

    private static ModelAnalysis BlazeFace() =>
        ModelAnalysis.Analyze(OnnxModelFile.Load(RepositoryFiles.Model("blazeface-back-256.onnx")));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }
}
