using Akka.TestKit;
using Akka.TestKit.Xunit2;
using PipelineActors.Protocol;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>
/// The one-message exploits of review S1, sent while a stream runs by a second actor system on 127.0.0.1 that reaches the
/// nodes' ports (plain TCP: who may connect at all is TLS's business; these are the checks behind it): a plan with epoch
/// long.MaxValue to the ingest, from the attacker and with the supervisor's node forged as its sender; a confirmation with
/// unbounded credit; a deploy that would make a worker fetch and load the attacker's model; a forged failure to the sink.
/// Each is refused and counted, nothing reaches the attacker, and the stream's results are exactly what they would be.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ForgedMessageSpecs(ITestOutputHelper output)
{
    private const string JobId = "forged";

    [Fact]
    public async Task Forged_plans_credit_deploys_and_failures_from_a_peer_are_refused_and_the_stream_is_unchanged()
    {
        await using var stream = await AttackedStream.StartAsync(JobId);
        var (attacker, session, frames) = (stream.Attacker, stream.Session, AttackedStream.Frames);
        var probe = new TestProbe(attacker, new XunitAssertions());
        var store = new TestProbe(attacker, new XunitAssertions());
        var ingest = stream.Remote(session.Ingest, stream.Head);
        var sink = stream.Remote(session.Sink, stream.Head);
        var agent = stream.Remote(stream.Worker.Agent!, stream.Worker);
        var spoofedSupervisor = stream.Remote(stream.Head.Supervisor, stream.Head);
        var before = Counts();

        // 1. Every camera frame to the attacker, for ever: refused as not from the supervisor's node, and, with that node
        //    forged as the sender, refused again for its epoch.
        ingest.Tell(new PlanActivated(JobId, long.MaxValue, 1, [probe.Ref], [], PlanReason.Recovery), probe.Ref);
        ingest.Tell(new PlanActivated(JobId, long.MaxValue, 1, [probe.Ref], [], PlanReason.Recovery), spoofedSupervisor);

        // 2. Unbounded credit (every unconfirmed frame dropped, then memory without bound).
        ingest.Tell(new FrameReceived(0, long.MaxValue), probe.Ref);

        // 3. A worker made to fetch the attacker's "model" from the attacker's store and load it in ONNX Runtime.
        var file = new StageFile(new string('e', 64), 1_000);
        agent.Tell(new DeployStage(JobId, 1, 1, new StageSpec(0, file, ["x"], ["y"], [], 1, "0..1"), store.Ref), probe.Ref);
        agent.Tell(new PrefetchFiles(JobId, [file], store.Ref), probe.Ref);
        agent.Tell(new StopStage(JobId, 1, 0), probe.Ref);

        // 4. Results thrown away: a frame the ingest never gave up on, failed at the sink.
        sink.Tell(new FrameFailed(frames - 1, "forged"), probe.Ref);

        var stats = await TestStreams.FinishAsync(session, TimeSpan.FromSeconds(120), output);
        WholeModelOracle.AssertExactlyOnceInOrder(stream.Writer.Snapshot(), frames);
        WholeModelOracle.AssertMatchesWholeModel(stream.Prepared, stream.Writer.Snapshot());
        Assert.InRange(stats.Epoch, 0, 1_000);
        Assert.DoesNotContain(stats.Plans, p => p.Epoch == long.MaxValue);
        Assert.Equal(0, stats.Failed);

        var after = Counts();
        Assert.Equal(1, after["plan-not-from-supervisor"] - before["plan-not-from-supervisor"]);
        Assert.Equal(1, after["plan-out-of-step"] - before["plan-out-of-step"]);
        Assert.Equal(1, after["credit-not-from-sink"] - before["credit-not-from-sink"]);
        Assert.Equal(3, after["deploy-not-from-supervisor"] - before["deploy-not-from-supervisor"]);
        Assert.Equal(1, after["failure-not-from-ingest"] - before["failure-not-from-ingest"]);

        // Nothing came back to the attacker: no frame, no acknowledgement, no deploy answer, no fetch of its file.
        await probe.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500));
        await store.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    private static Dictionary<string, long> Counts() =>
        new[] { "plan-not-from-supervisor", "plan-out-of-step", "credit-not-from-sink", "deploy-not-from-supervisor", "failure-not-from-ingest" }
            .ToDictionary(r => r, MessageGuard.RefusedSoFar);
}
