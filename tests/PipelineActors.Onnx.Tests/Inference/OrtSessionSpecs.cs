using Microsoft.ML.OnnxRuntime;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Inference;
using PipelineActors.Onnx.Proto;

namespace PipelineActors.Onnx.Tests.Inference;

/// <summary>The one ONNX Runtime session wrapper, on the repository's real models.</summary>
public class OrtSessionSpecs
{
    private static byte[] Model(string file) => File.ReadAllBytes(Path.Combine(TestModels.ModelsFolder, file));

    /// <summary>The first input as the model declares it (every dimension fixed).</summary>
    private static TensorInfo FirstInput(OrtSession session)
    {
        var input = session.InputMetadata[session.InputNames[0]];
        return new TensorInfo(session.InputNames[0], (TensorProto.Types.DataType)input.ElementDataType, [.. input.Dimensions.Select(d => (long)d)]);
    }

    [Fact]
    public void Runs_through_kept_buffers_give_the_same_bytes_as_runs_that_allocate_each_time()
    {
        using var session = new OrtSession(Model("blazeface-back-256.onnx"), intraOpThreads: 1, optimize: true);
        var info = FirstInput(session);

        for (var seed = 0; seed < 4; seed++)
        {
            var frame = HostTensor.Deterministic(info, seed);
            var fresh = session.Run(new Dictionary<string, HostTensor> { [frame.Name] = frame });
            var reused = session.RunReusing([frame]);

            Assert.Equal(session.OutputNames, reused.Select(t => t.Name));
            Assert.All(reused, t => Assert.Equal(fresh[t.Name], t));
        }

        // Fixed output shapes: after the first frame every output is written into a buffer of the session's own.
        Assert.Equal(session.OutputNames, session.ReusedOutputs);
        Assert.False(session.Broken);
    }

    [Fact]
    public void A_frame_of_another_size_binds_new_buffers_and_still_matches_a_fresh_run()
    {
        // The text-direction classifier takes any width: each width change rebinds the input and its outputs.
        using var session = new OrtSession(Model("paddleocr-textdir-cls.onnx"), intraOpThreads: 1, optimize: true);
        var name = session.InputNames[0];
        long[] widths = [192, 320, 192];
        for (var i = 0; i < widths.Length; i++)
        {
            var frame = HostTensor.Deterministic(new TensorInfo(name, TensorProto.Types.DataType.Float, [1, 3, 48, widths[i]]), i);
            var fresh = session.Run(new Dictionary<string, HostTensor> { [name] = frame });
            var reused = session.RunReusing([frame]);

            Assert.All(reused, t => Assert.Equal(fresh[t.Name], t));
        }
    }

    [Fact]
    public void A_frame_without_the_models_input_is_refused_with_the_names_it_has_and_the_next_frame_runs()
    {
        using var session = new OrtSession(Model("blazeface-back-256.onnx"), intraOpThreads: 1, optimize: true);
        var info = FirstInput(session);
        var stray = HostTensor.Deterministic(info with { Name = "not-an-input" }, 1);

        var error = Assert.Throws<InvalidOperationException>(() => session.RunReusing([stray]));
        Assert.Contains($"'{info.Name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not-an-input", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => session.Run(new Dictionary<string, HostTensor> { [stray.Name] = stray }));

        Assert.False(session.Broken);
        Assert.Equal(session.OutputNames.Count, session.RunReusing([HostTensor.Deterministic(info, 2)]).Count);
    }

    [Fact]
    public void Settings_that_name_a_file_get_it_written_the_optimised_model_and_the_profile()
    {
        var folder = Directory.CreateTempSubdirectory("pipelineactors-ortsession-");
        try
        {
            var optimized = Path.Combine(folder.FullName, "optimized.onnx");
            var settings = new OrtSessionSettings(1, GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
            {
                OptimizedModelPath = optimized,
                ProfilePrefix = Path.Combine(folder.FullName, "profile"),
            };
            string profile;
            using (var session = new OrtSession(Path.Combine(TestModels.ModelsFolder, "blazeface-back-256.onnx"), settings))
            {
                session.RunReusing([HostTensor.Deterministic(FirstInput(session), 1)]);
                profile = session.EndProfiling();
            }

            Assert.True(ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Count > 0);
            var profilePath = Path.IsPathRooted(profile) ? profile : Path.GetFullPath(profile);
            Assert.StartsWith(folder.FullName, profilePath, StringComparison.Ordinal);
            Assert.Contains("model_run", File.ReadAllText(profilePath), StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
