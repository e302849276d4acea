using PipelineActors.Onnx;
using PipelineActors.Transfer.Calibration;

namespace PipelineActors.Transfer.Tests.Calibration;

/// <summary>calibration.json beside a split: saved and loaded whole, looked up by cut and tensor, and refused clearly when wrong.</summary>
public sealed class CutCalibrationSpecs : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"pa-calibration-{Guid.NewGuid():N}");

    [Fact]
    public void A_saved_calibration_loads_with_the_same_statistics_per_cut_and_tensor()
    {
        long[] shape = [1, 4, 8, 8];
        var a = TensorStatistics.Of("a", TestTensors.PostRelu(shape, seed: 1), shape);
        var b = TensorStatistics.Of("b", TestTensors.Gaussians(256, seed: 2), shape);
        var calibration = new CutCalibration(CutCalibration.CurrentFormat, "abc", [new(12, "layer1.0.relu2", [a]), new(30, "layer3.0.relu2", [b])]);

        calibration.Save(_folder);
        var back = CutCalibration.Load(_folder);

        Assert.Equal(a.ToJson(), back.For(12, "a").ToJson());
        Assert.Equal(b.ToJson(), back.For(30, "b").ToJson());
        Assert.Equal("abc", back.SourceSha256);
        Assert.Contains("covers cuts 12, 30", Assert.Throws<PipelineInputException>(() => back.For(13, "a")).Message);
        Assert.Contains("no statistics for tensor 'b'", Assert.Throws<PipelineInputException>(() => back.For(12, "b")).Message);
    }

    [Fact]
    public void A_missing_broken_or_foreign_calibration_file_is_an_input_error()
    {
        Assert.Contains("There is no calibration.json", Assert.Throws<PipelineInputException>(() => CutCalibration.Load(_folder)).Message);

        Directory.CreateDirectory(_folder);
        var path = Path.Combine(_folder, CutCalibration.FileName);
        File.WriteAllText(path, "{\"format\":");
        Assert.Contains("is not valid calibration JSON", Assert.Throws<PipelineInputException>(() => CutCalibration.Load(_folder)).Message);
        File.WriteAllText(path, "{\"format\":\"pipelineactors.split/1\",\"boundaries\":[]}");
        Assert.Contains("not 'pipelineactors.calibration/1'", Assert.Throws<PipelineInputException>(() => CutCalibration.Load(_folder)).Message);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }
}
