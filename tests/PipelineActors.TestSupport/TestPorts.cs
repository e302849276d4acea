using System.Net;
using System.Net.Sockets;

namespace PipelineActors.TestSupport;

/// <summary>Ports for tests that must name one before a server takes it.</summary>
public static class TestPorts
{
    /// <summary>A TCP port nothing listens on just now.</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
