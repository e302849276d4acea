using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Cli.Commands;

/// <summary>The address the monitor binds, and the one it gives the cluster to reach it at.</summary>
internal sealed record MonitorEndpoint(string Bind, string Advertised);

/// <summary>
/// Where a monitor on another machine listens: the cluster connects back to the address a member advertises, so 127.0.0.1 works only
/// beside the seed. By default the monitor takes the local address its machine would send from to reach the seed (the routing table
/// picks the NIC), for binding and advertising alike; <c>--host</c> and <c>--public-host</c> override it behind NAT.
/// </summary>
internal static class MonitorAddress
{
    /// <summary>The seed as an Akka address, checked: <c>akka.ssl.tcp://pipeline@HOST:PORT</c> (<c>akka.tcp://</c> with --insecure).</summary>
    public static Address ParseSeed(string seed)
    {
        var expected = $"akka.ssl.tcp://{PipelineConfig.SystemName}@HOST:PORT (akka.tcp:// with --insecure)";
        if (!ActorPath.TryParseAddress(seed, out var address) || address.Host is null || address.Port is null)
        {
            throw new PipelineInputException($"--seed '{seed}' is not a node address; write it as {expected}.");
        }

        if (address.Protocol is not ("akka.tcp" or "akka.ssl.tcp") || address.System != PipelineConfig.SystemName)
        {
            throw new PipelineInputException(
                $"--seed '{seed}' is not a node of this cluster; the monitor joins {expected} "
                + $"(protocol akka.tcp or akka.ssl.tcp, system '{PipelineConfig.SystemName}').");
        }

        return address;
    }

    /// <summary>The bind and advertised addresses for a monitor that joins <paramref name="seed"/>.</summary>
    public static MonitorEndpoint Choose(Address seed, string? host, string? publicHost)
    {
        if (!string.IsNullOrWhiteSpace(publicHost))
        {
            return new MonitorEndpoint(string.IsNullOrWhiteSpace(host) ? "0.0.0.0" : host, publicHost);
        }

        if (string.IsNullOrWhiteSpace(host))
        {
            var routed = RouteTo(seed.Host!, seed.Port!.Value).ToString();
            return new MonitorEndpoint(routed, routed);
        }

        // A wildcard is no address to give others: advertise the one that reaches the seed.
        return IPAddress.TryParse(host, out var bind) && (bind.Equals(IPAddress.Any) || bind.Equals(IPAddress.IPv6Any))
            ? new MonitorEndpoint(host, RouteTo(seed.Host!, seed.Port!.Value).ToString())
            : new MonitorEndpoint(host, host);
    }

    /// <summary>
    /// The local address this machine sends from to reach <paramref name="host"/>: a UDP socket's connect only asks the routing table,
    /// so nothing is sent and nothing needs to listen there.
    /// </summary>
    public static IPAddress RouteTo(string host, int port)
    {
        if (!IPAddress.TryParse(host, out var target))
        {
            IPAddress[] found;
            try
            {
                found = Dns.GetHostAddresses(host);
            }
            catch (SocketException e)
            {
                throw new PipelineInputException(
                    $"The seed's host '{host}' does not resolve ({e.Message}); give its IP address or a name DNS knows.");
            }

            target = found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? found.FirstOrDefault()
                ?? throw new PipelineInputException($"The seed's host '{host}' resolves to no address; give its IP address.");
        }

        try
        {
            using var probe = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            probe.Connect(target, port);
            return ((IPEndPoint)probe.LocalEndPoint!).Address;
        }
        catch (SocketException e)
        {
            throw new PipelineInputException(
                $"This machine has no route to the seed's host {target} ({e.Message}); check the address, or give --host and --public-host.");
        }
    }
}
