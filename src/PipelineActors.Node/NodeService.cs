using System.Diagnostics;
using Akka.Actor;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using PipelineActors.Harness;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;

namespace PipelineActors.Node;

/// <summary>
/// Runs one cluster node for the life of the host. SIGTERM (systemd stop, Ctrl-C) leaves the
/// cluster gracefully through CoordinatedShutdown, so the supervisor moves this node's stages
/// elsewhere; if the cluster downs this node, the process exits so that systemd can restart it.
/// </summary>
public sealed class NodeService(NodeOptions options, NodeTransport transport, IConfiguration configuration, IHostApplicationLifetime lifetime)
    : IHostedService, IDisposable
{
    private PipelineNode? _node;
    private Timer? _parentWatch;
    private MetricsEndpoint? _metrics;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (NodeArguments.MetricsPort(configuration) is { } metricsPort)
        {
            _metrics = MetricsEndpoint.Start(metricsPort, NodeArguments.MetricsAddress(configuration));
        }

        if (transport.Tls is null)
        {
            // Every start, not only the first: whoever reads this node's log must not miss that it is open to anyone.
            Console.Error.WriteLine(TransportSecurity.InsecureWarning);
        }

        _node = PipelineNode.Start(options, tls: transport.Tls);
        _node.System.WhenTerminated.ContinueWith(_ => lifetime.StopApplication(), TaskScheduler.Default);
        Console.WriteLine($"node {_node.SeedUri} roles {string.Join(",", options.Roles)} seeds {string.Join(",", options.Seeds)}");

        // Started by 'pipeline run': exit with the parent, whatever killed it.
        if (int.TryParse(configuration["parent-pid"], out var parent))
        {
            _parentWatch = new Timer(_ =>
            {
                if (!IsAlive(parent))
                {
                    // The parent (pipeline run) is gone, and with it the cluster this node served:
                    // try to leave, but do not linger.
                    lifetime.StopApplication();
                    _ = Task.Delay(TimeSpan.FromSeconds(3)).ContinueWith(_ => Environment.Exit(0), TaskScheduler.Default);
                }
            }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_parentWatch is not null)
        {
            await _parentWatch.DisposeAsync();
        }

        if (_node is not null)
        {
            await _node.ShutDown();
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _parentWatch?.Dispose();
        _metrics?.Dispose();
        transport.Tls?.Dispose();
    }
}

/// <summary>The node's TLS (null: plain TCP, asked for with --insecure), chosen and checked before the host starts.</summary>
public sealed record NodeTransport(ClusterTls? Tls);
