using Akka.Actor;

namespace PipelineActors.Runtime.Hosting;

/// <summary>The host:port a node is known by in tables and logs.</summary>
public static class NodeAddress
{
    public static string Of(ActorSystem system) => Of(Akka.Cluster.Cluster.Get(system).SelfAddress);

    public static string Of(Address address) => $"{address.Host}:{address.Port}";

    /// <summary>The cluster address of the node an actor lives on (a local reference's address has no host).</summary>
    public static Address NodeOf(ActorSystem system, IActorRef actor) =>
        actor.Path.Address.HasLocalScope ? Akka.Cluster.Cluster.Get(system).SelfAddress : actor.Path.Address;
}
