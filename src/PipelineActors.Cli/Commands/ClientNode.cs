using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// Joins a cluster, possibly on other machines, as a member that takes no part in placement (the monitor, the job
/// verbs): binds and advertises the address that routes to the seed unless told otherwise (review C5).
/// </summary>
internal static class ClientNode
{
    public static async Task<PipelineNode> JoinAsync(string seedUri, string? host, string? publicHost, int port, TimeSpan timeout, string name)
    {
        var seed = MonitorAddress.ParseSeed(seedUri);
        var endpoint = MonitorAddress.Choose(seed, host, publicHost);
        PipelineNode node;
        try
        {
            node = PipelineNode.Start(new NodeOptions
            {
                Roles = [Roles.Monitor],
                Seeds = [seedUri],
                Host = endpoint.Bind,
                PublicHostname = endpoint.Advertised == endpoint.Bind ? null : endpoint.Advertised,
                Port = port,
                LogFile = PrivateFiles.LogFile(name),
            });
        }
        catch (Akka.Remote.RemoteTransportException e)
        {
            throw new PipelineInputException(
                $"The {name} cannot listen on {endpoint.Bind}:{port} ({(e.InnerException ?? e).Message.Split('\n')[0]}); "
                + "give --host an address of this machine and --port a free port.");
        }

        try
        {
            await node.WaitUntilUpAsync(timeout);
        }
        catch (TimeoutException)
        {
            await node.DisposeAsync();
            throw new PipelineInputException(
                $"Could not join the cluster at {seedUri} within {timeout.TotalSeconds:0.#} s; is a node running there, "
                + $"and can it reach this {name} at {endpoint.Advertised}:{node.Address.Port} (--host, --public-host, --port)?");
        }

        return node;
    }
}
