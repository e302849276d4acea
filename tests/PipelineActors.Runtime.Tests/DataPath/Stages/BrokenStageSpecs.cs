using Akka.Actor;
using Akka.TestKit;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.DataPath.Stages;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Stages;

/// <summary>
/// A stage that cannot go on (here: a worker whose chunk size is 0, so no computed frame can leave for a remote
/// successor) rejects the frame it holds, stops, and its worker agent leaves it out of its reports at once, so the
/// supervisor sees the stage gone instead of failing every later frame on a stage that looks alive.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BrokenStageSpecs : Akka.TestKit.Xunit2.TestKit, IClassFixture<TinyNetStages>
{
    private const int Parts = 3;
    private readonly TinyNetStages _stages;
    private readonly ActorSystem _nextNode;
    private readonly string _cacheFolder = Directory.CreateTempSubdirectory("pa-broken-").FullName;

    public BrokenStageSpecs(TinyNetStages stages)
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
        _stages = stages;
        _nextNode = ActorSystem.Create(PipelineConfig.SystemName, TestNodes.Config(Roles.Worker));
    }

    [Fact]
    public void A_stage_whose_results_cannot_be_sent_rejects_the_frame_stops_and_drops_out_of_its_workers_reports()
    {
        var cache = new ModelCache(_cacheFolder);
        File.Copy(_stages.MiddlePath, cache.PathOf(_stages.Middle.File.Sha256));
        var supervisor = CreateTestProbe();
        var agent = Sys.ActorOf(WorkerAgent.Props(supervisor.Ref, cache, 1, chunkBytes: 0));
        agent.Tell(new DeployStage("job", 1, Parts, _stages.Middle, supervisor.Ref));
        var stage = ExpectMsg<StageDeployed>(TimeSpan.FromSeconds(20)).Stage;
        supervisor.FishForMessage<WorkerStatus>(s => s.Hosted.Any(h => h.Stage.Equals(stage)), TimeSpan.FromSeconds(5));

        var next = CreateTestProbe(_nextNode);
        var address = ((ExtendedActorSystem)_nextNode).Provider.DefaultAddress;
        var remoteNext = ((ExtendedActorSystem)Sys).Provider.ResolveActorRef(next.Ref.Path.ToStringWithAddress(address));
        var ingest = CreateTestProbe();
        var wiring = CreateTestProbe();
        stage.Tell(new WireStage("job", 1, [remoteNext], ingest.Ref), wiring.Ref);
        wiring.ExpectMsg<StageWired>(TimeSpan.FromSeconds(5));
        Watch(stage);

        stage.Tell(_stages.FrameFor(4, 1, seed: 12, attempt: 2));

        var rejected = ingest.ExpectMsg<FrameRejected>(TimeSpan.FromSeconds(10));
        Assert.Equal((4L, 2, _stages.Middle.Index), (rejected.FrameId, rejected.Attempt, rejected.StageIndex));
        Assert.Contains("could not be sent", rejected.Reason, StringComparison.Ordinal);
        ExpectTerminated(stage, TimeSpan.FromSeconds(5));
        var status = supervisor.FishForMessage<WorkerStatus>(s => s.Hosted.All(h => !h.Stage.Equals(stage)), TimeSpan.FromSeconds(3));
        Assert.Empty(status.Hosted);
        next.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // nothing half-sent

        // The worker hosts the stage again when the supervisor asks: a fresh actor, not the broken one.
        agent.Tell(new DeployStage("job", 2, Parts, _stages.Middle, supervisor.Ref));
        Assert.NotEqual(stage, ExpectMsg<StageDeployed>(TimeSpan.FromSeconds(20)).Stage);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _nextNode.Terminate().Wait(TimeSpan.FromSeconds(10));
        }

        base.Dispose(disposing);
        if (disposing)
        {
            Directory.Delete(_cacheFolder, recursive: true);
        }
    }
}
