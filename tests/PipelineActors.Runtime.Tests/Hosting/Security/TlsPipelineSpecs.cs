using System.Security.Cryptography.X509Certificates;
using PipelineActors.Onnx;
using PipelineActors.Onnx.Zoo;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Onnx.Stages;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Sink;
using Xunit.Abstractions;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>Three pipeline nodes with certificates from one CA stream frames over akka.ssl.tcp, guards running.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TlsPipelineSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-tls-pipeline-").FullName;
    private readonly X509Certificate2 _ca = ClusterCertificates.CreateAuthority("cluster");
    private readonly List<ClusterTls> _tls = [];

    [Fact]
    public async Task Three_TLS_nodes_stream_every_frame_through_two_stages_in_order()
    {
        var modelPath = Path.Combine(_folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), modelPath);
        var prepared = JobBuilder.Prepare(modelPath, null, 2, Path.Combine(_folder, "store"));

        var headTls = Tls("head", Roles.Coordinator, Roles.Ingest);
        await using var head = PipelineNode.Start(new NodeOptions { Roles = [Roles.Coordinator, Roles.Ingest] }, tls: headTls);
        await head.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        await using var workerA = PipelineNode.Start(Worker(head, "cache-a"), tls: Tls("a", Roles.Worker));
        await using var workerB = PipelineNode.Start(Worker(head, "cache-b"), tls: Tls("b", Roles.Worker));
        await workerA.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        await workerB.WaitUntilUpAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("akka.ssl.tcp://", head.SeedUri, StringComparison.Ordinal);

        const int frames = 12;
        var writer = new CollectingResultWriter();
        var source = new SyntheticSource(prepared.SourceInputs, 0, frames);
        var session = IngestSession.Start(head, prepared, source, writer, new IngestSettings(4, TimeSpan.FromSeconds(3), 4, 65536), "tls");
        var done = await Task.WhenAny(session.Completed, Task.Delay(TimeSpan.FromSeconds(120)));
        var ingest = await session.IngestStatsAsync();
        foreach (var e in ingest.Events)
        {
            output.WriteLine(e.Text);
        }

        Assert.True(done == session.Completed, "the run did not complete in time");
        Assert.Equal(2, ingest.Plan!.Parts);
        WholeModelOracle.AssertExactlyOnceInOrder(writer.Snapshot(), frames);
        // Every member proved its roles to the guards: all three are still Up.
        Assert.Equal(3, Akka.Cluster.Cluster.Get(head.System).State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up));
    }

    public void Dispose()
    {
        _tls.ForEach(t => t.Dispose());
        _ca.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private NodeOptions Worker(PipelineNode head, string cache) =>
        new() { Roles = [Roles.Worker], Seeds = [head.SeedUri], ModelCache = Path.Combine(_folder, cache) };

    private ClusterTls Tls(string name, params string[] roles)
    {
        var tls = ClusterTls.From(X509CertificateLoader.LoadCertificate(_ca.RawData), ClusterCertificates.IssueNode(_ca, name, "127.0.0.1", roles));
        _tls.Add(tls);
        return tls;
    }
}
