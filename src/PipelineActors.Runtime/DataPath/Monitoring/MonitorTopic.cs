using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using PipelineActors.Protocol;

namespace PipelineActors.Runtime.DataPath.Monitoring;

/// <summary>Publishing to the monitor topic from any actor.</summary>
public static class MonitorTopic
{
    public static void Publish(ActorSystem system, object message) =>
        DistributedPubSub.Get(system).Mediator
            .Tell(new Publish(Topics.Pipeline, message));

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}
