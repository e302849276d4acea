using Akka.Configuration;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.TestSupport;

/// <summary>The configuration production nodes use (cluster provider, our serializer binding) on 127.0.0.1, port 0.</summary>
public static class TestNodes
{
    // A node that never joined a cluster waits out the cluster-leave phase on shutdown (5 s per
    // test system); tests terminate their systems without coordinated shutdown.
    private const string FastShutdown = "akka.coordinated-shutdown.run-by-actor-system-terminate = off";

    public static Config Config(params string[] roles) =>
        ConfigurationFactory.ParseString(FastShutdown).WithFallback(PipelineConfig.Build(new NodeOptions { Roles = roles }));

    /// <summary>The production configuration with test overrides on top.</summary>
    public static Config Config(string overrides, params string[] roles) =>
        ConfigurationFactory.ParseString(overrides).WithFallback(Config(roles));
}
