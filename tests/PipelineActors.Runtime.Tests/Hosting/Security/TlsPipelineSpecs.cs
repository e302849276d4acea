using Akka.Cluster;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>Three pipeline nodes with certificates from one CA stream frames over akka.ssl.tcp, guards running.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TlsPipelineSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-tls-pipeline-").FullName;
    private readonly TestCertificates _certificates = new();

    [Fact]
    public async Task Three_TLS_nodes_stream_every_frame_through_two_stages_in_order()
    {
        var prepared = ZooJobs.Prepare(_folder, "tinynet", parts: 2);
        await using var cluster = await TestCluster.StartAsync(new TestClusterOptions { Workers = 2, Certificates = _certificates });
        var head = cluster.Head;
        Assert.StartsWith("akka.ssl.tcp://", head.SeedUri, StringComparison.Ordinal);

        const int frames = 12;
        var writer = new CollectingResultWriter();
        var source = new SyntheticSource(prepared.SourceInputs, 0, frames);
        var session = IngestSession.Start(head, prepared, source, writer, TestStreams.Settings(), "tls");
        var ingest = await TestStreams.FinishAsync(session, TimeSpan.FromSeconds(120), output);

        Assert.Equal(2, ingest.Plan!.Parts);
        WholeModelOracle.AssertExactlyOnceInOrder(writer.Snapshot(), frames);
        // Every member proved its roles to the guards: all three are still Up.
        Assert.Equal(3, Cluster.Get(head.System).State.Members.Count(m => m.Status == MemberStatus.Up));
    }

    public void Dispose()
    {
        _certificates.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
