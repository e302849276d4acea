using System.CommandLine;
using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Cli.Commands;

/// <summary>
/// Joins a cluster, possibly on other machines, as a member that takes no part in placement (the monitor, the job
/// verbs): binds and advertises the address that routes to the seed unless told otherwise (review C5).
/// </summary>
internal static class ClientNode
{
    public static async Task<PipelineNode> JoinAsync(
        string seedUri, string? host, string? publicHost, int port, TimeSpan timeout, string name, ClientTransport transport)
    {
        var seed = MonitorAddress.ParseSeed(seedUri);
        var endpoint = MonitorAddress.Choose(seed, host, publicHost);
        var tls = transport.Load(seedUri);

        PipelineNode node;
        try
        {
            node = PipelineNode.Start(
                new NodeOptions
            {
                Roles = [Roles.Monitor],
                Seeds = [seedUri],
                Host = endpoint.Bind,
                PublicHostname = endpoint.Advertised == endpoint.Bind ? null : endpoint.Advertised,
                Port = port,
                LogFile = PrivateFiles.LogFile(name),
            },
                tls: tls);
        }
        catch (Akka.Remote.RemoteTransportException e)
        {
            tls?.Dispose();
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
            var refused = tls is { Rejected: > 0 } ? "; the seed's certificate was refused (is it from this folder's CA?)" : string.Empty;
            throw new PipelineInputException(
                $"Could not join the cluster at {seedUri} within {timeout.TotalSeconds:0.#} s{refused}; is a node running there, "
                + $"and can it reach this {name} at {endpoint.Advertised}:{node.Address.Port} (--host, --public-host, --port)"
                + (tls is null ? ", and is the cluster plain TCP (--insecure)?" : ", and does its CA match this --tls folder?"));
        }

        if (tls is null)
        {
            // Said once joined, so that a failure stays one sentence on stderr.
            Console.Error.WriteLine(TransportSecurity.InsecureWarning.Replace("this node", $"this {name}", StringComparison.Ordinal));
        }

        return node;
    }
}

/// <summary>
/// <c>--tls DIR</c> and <c>--insecure</c> for every verb that joins a cluster, as for <c>pipeline-node</c>: one of them is
/// required, and the seed must speak the same scheme. The verb joins with the monitor role, so its certificate must
/// grant it (<c>pipeline certs issue --roles monitor</c>).
/// </summary>
internal sealed class ClientTransport
{
    public Option<string?> Tls { get; } = new("--tls")
    {
        Description = "This command's TLS folder from 'pipeline certs issue --roles monitor' (default: PIPELINE_TLS); "
            + "the seed is then akka.ssl.tcp://pipeline@HOST:PORT.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PIPELINE_TLS") is { Length: > 0 } folder ? folder : null,
    };

    public Option<bool> Insecure { get; } = new("--insecure")
    {
        Description = "Join a plain-TCP cluster (akka.tcp://): no authentication, no encryption.",
    };

    private string? _folder;
    private bool _insecure;

    public void AddTo(Command command)
    {
        command.Options.Add(Tls);
        command.Options.Add(Insecure);
    }

    /// <summary>Takes the values the user gave.</summary>
    public ClientTransport Read(ParseResult parse)
    {
        _folder = parse.GetValue(Tls);
        _insecure = parse.GetValue(Insecure);
        return this;
    }

    /// <summary>The TLS to join <paramref name="seed"/> with, or null for plain TCP; one sentence when they do not fit.</summary>
    public ClusterTls? Load(string seed)
    {
        var tls = TransportSecurity.Choose(_folder, _insecure);
        try
        {
            TransportSecurity.CheckSeeds([seed], tls is not null, "--seed");
            if (tls is not null)
            {
                TransportSecurity.CheckRoles(tls, [Roles.Monitor], _folder!);
            }
        }
        catch
        {
            tls?.Dispose();
            throw;
        }

        return tls;
    }
}
