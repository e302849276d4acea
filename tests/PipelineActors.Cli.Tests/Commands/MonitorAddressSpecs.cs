using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using PipelineActors.Cli.Commands;
using PipelineActors.Onnx;

namespace PipelineActors.Cli.Tests.Commands;

/// <summary>The monitor binds and advertises the address that reaches the seed, so it can join a cluster on other machines.</summary>
public sealed class MonitorAddressSpecs
{
    [Fact]
    public void Beside_a_seed_on_loopback_the_monitor_binds_and_advertises_loopback()
    {
        var seed = MonitorAddress.ParseSeed("akka.tcp://pipeline@127.0.0.1:4053");

        Assert.Equal(new MonitorEndpoint("127.0.0.1", "127.0.0.1"), MonitorAddress.Choose(seed, null, null));
        var byName = MonitorAddress.ParseSeed("akka.tcp://pipeline@localhost:4053");
        Assert.Equal(new MonitorEndpoint("127.0.0.1", "127.0.0.1"), MonitorAddress.Choose(byName, null, null));
    }

    [Fact]
    public void A_seed_on_an_address_of_a_network_card_is_reached_from_that_cards_address_not_loopback()
    {
        // The routing table, asked for each of this machine's own addresses, answers with that address: a seed elsewhere on that
        // network would be reached from it, and 127.0.0.1 (what the monitor advertised before) would be wrong.
        var addresses = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(u => u.Address)
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
            .ToList();
        foreach (var address in addresses)
        {
            var seed = MonitorAddress.ParseSeed($"akka.tcp://pipeline@{address}:4053");
            Assert.Equal(new MonitorEndpoint(address.ToString(), address.ToString()), MonitorAddress.Choose(seed, null, null));
        }
    }

    [Fact]
    public void A_wildcard_bind_advertises_the_routed_address_and_a_public_host_wins_behind_nat()
    {
        var seed = MonitorAddress.ParseSeed("akka.tcp://pipeline@127.0.0.1:4053");

        Assert.Equal(new MonitorEndpoint("0.0.0.0", "127.0.0.1"), MonitorAddress.Choose(seed, "0.0.0.0", null));
        Assert.Equal(new MonitorEndpoint("0.0.0.0", "10.0.0.7"), MonitorAddress.Choose(seed, "0.0.0.0", "10.0.0.7"));
        Assert.Equal(new MonitorEndpoint("0.0.0.0", "10.0.0.7"), MonitorAddress.Choose(seed, null, "10.0.0.7"));
        Assert.Equal(new MonitorEndpoint("192.168.1.5", "192.168.1.5"), MonitorAddress.Choose(seed, "192.168.1.5", null));
    }

    [Theory]
    [InlineData("127.0.0.1:4053", "not a node address")]
    [InlineData("akka.tcp://pipeline@127.0.0.1", "not a node address")]
    [InlineData("akka.tcp://other@127.0.0.1:4053", "system 'pipeline'")]
    [InlineData("akka.udp://pipeline@127.0.0.1:4053", "protocol akka.tcp")]
    public void A_seed_that_is_not_a_node_of_this_cluster_is_one_sentence(string seed, string named)
    {
        var error = Assert.Throws<PipelineInputException>(() => MonitorAddress.ParseSeed(seed));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains(seed, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_seed_host_that_does_not_resolve_is_one_sentence()
    {
        var error = Assert.Throws<PipelineInputException>(() => MonitorAddress.RouteTo("no-such-seed.invalid", 4053));

        Assert.Contains("'no-such-seed.invalid' does not resolve", error.Message, StringComparison.Ordinal);
    }
}
