using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Jobs;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.ControlPath.Jobs;

/// <summary>The job registry watches its job hosts; a host that stops is lost, and the registry itself lives on.</summary>
public sealed class JobRegistrySpecs : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("pa-registry-");

    public JobRegistrySpecs()
        : base(TestNodes.Config(Roles.Coordinator), PipelineConfig.SystemName)
    {
    }

    [Fact]
    public void A_job_host_that_stops_is_lost_and_the_registry_is_not_restarted()
    {
        var settings = PipelineSettings.From(Sys.Settings.Config) with
        {
            StateFolder = _folder.FullName, ModelCacheFolder = Path.Combine(_folder.FullName, "cache"),
        };
        var registry = Sys.ActorOf(JobRegistry.Props(settings), JobRegistry.Name);
        var host = CreateTestProbe();
        registry.Tell(new JobHostReport(host.Ref, [], []), host.Ref);
        registry.Tell(ListJobs.Instance, TestActor);
        ExpectMsg<JobList>(); // the registry has started (its PreStart made the model store) and taken the report
        // The registry's model store is its child: a restarted registry makes a new one (another incarnation, another ref).
        var models = Models();

        Sys.Stop(host.Ref);
        // Its Terminated has arrived once a message sent after it is answered (both go through the registry's mailbox).
        AwaitAssert(() =>
        {
            registry.Tell(ListJobs.Instance, TestActor);
            ExpectMsg<JobList>(TimeSpan.FromSeconds(3));
            Assert.Equal(models, Models());
        }, TimeSpan.FromSeconds(5));
        ExpectNoMsg(TimeSpan.FromSeconds(1));
        Assert.Equal(models, Models());
    }

    public new void Dispose()
    {
        base.Dispose();
        _folder.Delete(recursive: true);
    }

    private IActorRef Models() =>
        Sys.ActorSelection($"/user/{JobRegistry.Name}/models").ResolveOne(TimeSpan.FromSeconds(3)).GetAwaiter().GetResult();
}
