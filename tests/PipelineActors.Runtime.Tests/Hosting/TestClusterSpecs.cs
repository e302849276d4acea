using Akka.Cluster;
using PipelineActors.Protocol;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.Hosting;

/// <summary>
/// The shared in-process cluster the cluster specs start their nodes with: every node Up in one cluster on its own 127.0.0.1
/// port with the roles asked for and the project's serializers; after it is disposed every system has stopped and its folder is gone.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TestClusterSpecs
{
    [Fact]
    public async Task A_head_and_two_workers_are_up_in_one_cluster_on_loopback_ports_and_all_stop_when_it_is_disposed()
    {
        var cluster = await TestCluster.StartAsync(new TestClusterOptions { Workers = 2, LogToFiles = true });
        var nodes = cluster.Nodes.ToList();
        try
        {
            Assert.Equal(3, nodes.Count);
            Assert.Equal(3, nodes.Select(n => n.Address.Port).Distinct().Count());
            Assert.All(nodes, n => Assert.Equal("127.0.0.1", n.Address.Host));
            Assert.All(nodes, n => Assert.NotEqual(0, n.Address.Port));
            Assert.Equal([Roles.Coordinator, Roles.Ingest], Cluster.Get(cluster.Head.System).SelfRoles.Order(StringComparer.Ordinal));
            Assert.All(cluster.Workers, w => Assert.Equal([Roles.Worker], Cluster.Get(w.System).SelfRoles));
            foreach (var node in nodes)
            {
                var state = Cluster.Get(node.System).State;
                Assert.Equal(3, state.Members.Count(m => m.Status == MemberStatus.Up));
                Assert.IsType<FrameSerializer>(node.System.Serialization.FindSerializerFor(new FrameReceived(1, 1)));
                Assert.IsType<ControlSerializer>(node.System.Serialization.FindSerializerFor(new JobAccepted("job")));
                Assert.IsType<JobSerializer>(node.System.Serialization.FindSerializerFor(new JobSubmitted("job", "")));
            }

            // Each node's log went to its own file, not the console.
            Assert.All(["head.log", "worker-0.log", "worker-1.log"], f => Assert.True(File.Exists(Path.Combine(cluster.Folder, f)), f));
        }
        finally
        {
            await cluster.DisposeAsync();
        }

        foreach (var node in nodes)
        {
            await node.System.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.False(Directory.Exists(cluster.Folder));
    }

    [Fact]
    public async Task A_head_that_hosts_stages_forms_a_cluster_of_its_own_with_a_model_cache_in_the_clusters_folder()
    {
        var options = new TestClusterOptions { HeadRoles = [Roles.Coordinator, Roles.Ingest, Roles.Worker] };
        await using var cluster = await TestCluster.StartAsync(options);

        Assert.Empty(cluster.Workers);
        Assert.NotNull(cluster.Head.Agent);
        Assert.Single(Cluster.Get(cluster.Head.System).State.Members, m => m.Status == MemberStatus.Up);
        Assert.StartsWith(cluster.Folder, cluster.Head.Settings.ModelCacheFolder, StringComparison.Ordinal);
    }
}
