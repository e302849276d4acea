namespace PipelineActors.Integration.Tests;

/// <summary>Cluster tests bind real sockets and load the machine; they run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "cluster";
}
