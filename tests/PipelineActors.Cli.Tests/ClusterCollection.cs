namespace PipelineActors.Cli.Tests;

/// <summary>Runs that start worker processes, cgroups and namespaces load the machine; they run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "cluster";
}
