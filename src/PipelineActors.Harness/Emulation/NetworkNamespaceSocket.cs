using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace PipelineActors.Harness.Emulation;

/// <summary>
/// Opens sockets inside a named network namespace from this process: a dedicated thread enters the namespace with setns(2),
/// creates the socket (a socket stays in the namespace it was made in) and goes back, so no child process is needed.
/// </summary>
internal static partial class NetworkNamespaceSocket
{
    private const int CloneNewNet = 0x40000000;

    public static Socket Create(string networkNamespace, AddressFamily family, SocketType type, ProtocolType protocol)
    {
        Socket? socket = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                socket = CreateOnThisThread(networkNamespace, family, type, protocol);
            }
            catch (Exception e)
            {
                failure = e;
            }
        })
        {
            IsBackground = true,
            Name = $"netns {networkNamespace}",
        };
        thread.Start();
        thread.Join();
        return failure is not null
            ? throw new InvalidOperationException($"Could not open a socket in network namespace {networkNamespace}: {failure.Message}", failure)
            : socket!;
    }

    private static Socket CreateOnThisThread(string networkNamespace, AddressFamily family, SocketType type, ProtocolType protocol)
    {
        using var home = File.OpenHandle("/proc/thread-self/ns/net");
        using var target = File.OpenHandle(Path.Combine("/run/netns", networkNamespace));
        Enter(target.DangerousGetHandle().ToInt32(), networkNamespace);
        try
        {
            return new Socket(family, type, protocol);
        }
        finally
        {
            // The thread ends right after; going back keeps it honest should the runtime ever reuse it.
            Enter(home.DangerousGetHandle().ToInt32(), "the root namespace");
        }
    }

    private static void Enter(int fd, string what)
    {
        if (SetNs(fd, CloneNewNet) != 0)
        {
            throw new InvalidOperationException($"setns into {what} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);
}
