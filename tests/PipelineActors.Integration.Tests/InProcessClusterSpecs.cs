using Google.Protobuf;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Inference;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.TestSupport;

namespace PipelineActors.Integration.Tests;

/// <summary>Several ActorSystems on 127.0.0.1 form a cluster and stream frames through stage actors.</summary>
[Collection(ClusterCollection.Name)]
public sealed class InProcessClusterSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-cluster-").FullName;

    [Fact]
    public async Task Three_actor_systems_stream_every_frame_through_two_stages_in_order_with_the_whole_models_outputs()
    {
        var modelPath = Path.Combine(_folder, "squeezenet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("squeezenet"), modelPath);
        var prepared = JobBuilder.Prepare(modelPath, null, 2, Path.Combine(_folder, "store"));

        await using var head = PipelineNode.Start(new NodeOptions { Roles = [Roles.Coordinator, Roles.Ingest] });
        await head.WaitUntilUpAsync(TimeSpan.FromSeconds(20));
        await using var workerA = PipelineNode.Start(new NodeOptions { Roles = [Roles.Worker], Seeds = [head.SeedUri], ModelCache = Path.Combine(_folder, "cache-a") });
        await using var workerB = PipelineNode.Start(new NodeOptions { Roles = [Roles.Worker], Seeds = [head.SeedUri], ModelCache = Path.Combine(_folder, "cache-b") });
        await workerA.WaitUntilUpAsync(TimeSpan.FromSeconds(20));
        await workerB.WaitUntilUpAsync(TimeSpan.FromSeconds(20));

        const int frames = 30;
        var writer = new CollectingResultWriter();
        var session = IngestSession.Start(head, prepared, new SyntheticSource(prepared.SourceInputs, 0, frames), writer, new IngestSettings(4, TimeSpan.FromSeconds(3), 4, 65536), "t1");
        var done = await Task.WhenAny(session.Completed, Task.Delay(TimeSpan.FromSeconds(90)));
        var ingest = await session.IngestStatsAsync();
        foreach (var e in ingest.Events)
        {
            output.WriteLine(e.Text);
        }

        Assert.True(done == session.Completed, "the run did not complete in time");
        Assert.Equal(2, ingest.Plan!.Parts);
        var outcomes = writer.Snapshot();
        WholeModelOracle.AssertExactlyOnceInOrder(outcomes, frames);
        WholeModelOracle.AssertMatchesWholeModel(prepared, outcomes);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
