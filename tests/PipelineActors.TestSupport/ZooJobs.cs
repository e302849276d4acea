using PipelineActors.Onnx;
using PipelineActors.Onnx.Cuts;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Runtime.ControlPath.Planning;

namespace PipelineActors.TestSupport;

/// <summary>A zoo model written into a test's folder and cut into stages as a job's model is.</summary>
public static class ZooJobs
{
    /// <summary>
    /// Builds zoo model <paramref name="name"/> into <c>FOLDER/NAME.onnx</c> and prepares its cuts into 1 to
    /// <paramref name="parts"/> stages (stage files in <c>FOLDER/store</c>). <paramref name="byFlops"/> balances the cuts
    /// by FLOPs, which is the same on every machine; without it the cuts follow stage times measured here.
    /// </summary>
    public static PreparedModel Prepare(string folder, string name, int parts, bool byFlops = false)
    {
        var path = Path.Combine(folder, $"{name}.onnx");
        OnnxModelFile.Save(ModelZoo.Build(name), path);
        return JobBuilder.Prepare(path, null, parts, Path.Combine(folder, "store"), byFlops ? (a, n) => Balancer.Balance(a, n) : null);
    }
}
