using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Integration.Tests;

/// <summary>Several ActorSystems on 127.0.0.1 form a cluster and stream frames through stage actors.</summary>
[Collection(ClusterCollection.Name)]
public sealed class InProcessClusterSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-cluster-").FullName;

    [Fact]
    public async Task Three_actor_systems_stream_every_frame_through_two_stages_in_order_with_the_whole_models_outputs()
    {
        var prepared = ZooJobs.Prepare(_folder, "squeezenet", parts: 2);
        await using var cluster = await TestCluster.StartAsync(new TestClusterOptions { Workers = 2 });

        const int frames = 30;
        var writer = new CollectingResultWriter();
        var source = new SyntheticSource(prepared.SourceInputs, 0, frames);
        var session = IngestSession.Start(cluster.Head, prepared, source, writer, TestStreams.Settings(), "t1");
        var ingest = await TestStreams.FinishAsync(session, TimeSpan.FromSeconds(90), output);

        Assert.Equal(2, ingest.Plan!.Parts);
        var outcomes = writer.Snapshot();
        WholeModelOracle.AssertExactlyOnceInOrder(outcomes, frames);
        WholeModelOracle.AssertMatchesWholeModel(prepared, outcomes);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
