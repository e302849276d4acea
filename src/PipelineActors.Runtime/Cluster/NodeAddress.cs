using Akka.Actor;

namespace PipelineActors.Runtime.Cluster;

/// <summary>The host:port a node is known by in tables and logs.</summary>
public static class NodeAddress
{
    public static string Of(ActorSystem system) => Of(Akka.Cluster.Cluster.Get(system).SelfAddress);

    public static string Of(Address address) => $"{address.Host}:{address.Port}";
}
