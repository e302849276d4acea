using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace PipelineActors.Harness.Tests.Emulation;

/// <summary>Child processes and TCP transfers that the emulation specs measure.</summary>
internal static class Probe
{
    /// <summary>Starts a command (already wrapped by the emulation) with its output kept for diagnostics.</summary>
    public static Process Start(string program, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in arguments)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start.");
    }

    public static Process Start((string Program, IReadOnlyList<string> Arguments) command) => Start(command.Program, command.Arguments);

    /// <summary>A shell loop that burns one core and ends by itself after <paramref name="seconds"/> (a bound should the test die).</summary>
    public static string[] BusyLoop(int seconds) => ["-c", $"end=$((SECONDS+{seconds})); while [ $SECONDS -lt $end ]; do :; done"];

    /// <summary>bash's /dev/tcp as a sender: no tool beyond bash and coreutils, so CI needs nothing new.</summary>
    public static string[] SendZeros(IPAddress host, int port, long bytes) =>
        ["-c", $"head -c {bytes} /dev/zero > /dev/tcp/{host}/{port}"];

    public static void Stop(Process? process)
    {
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        process.Dispose();
    }

    /// <summary>A listening socket; <paramref name="socket"/> decides the namespace it lives in.</summary>
    public static Socket Listen(Socket socket, IPAddress address)
    {
        socket.Bind(new IPEndPoint(address, 0));
        socket.Listen(1);
        return socket;
    }

    public static int PortOf(Socket listener) => ((IPEndPoint)listener.LocalEndPoint!).Port;

    /// <summary>
    /// Accepts one connection and reads to its end; the rate counts from the first byte on, less that first read, so the
    /// handshake and one tbf burst do not flatter it. Returns bytes and Mbit/s.
    /// </summary>
    public static async Task<(long Bytes, double Mbit)> ReceiveAsync(Socket listener, CancellationToken cancellation)
    {
        using var connection = await listener.AcceptAsync(cancellation);
        var buffer = new byte[64 * 1024];
        long total = 0;
        long first = 0;
        var clock = new Stopwatch();
        while (true)
        {
            var read = await connection.ReceiveAsync(buffer, SocketFlags.None, cancellation);
            if (read == 0)
            {
                break;
            }

            if (total == 0)
            {
                clock.Start();
                first = read;
            }

            total += read;
        }

        var seconds = clock.Elapsed.TotalSeconds;
        return (total, seconds > 0 ? (total - first) * 8 / seconds / 1e6 : double.PositiveInfinity);
    }

    /// <summary>Connects <paramref name="socket"/> (in whichever namespace it was made) and sends zeros, then closes.</summary>
    public static async Task SendAsync(Socket socket, IPAddress host, int port, long bytes, CancellationToken cancellation)
    {
        using (socket)
        {
            await socket.ConnectAsync(new IPEndPoint(host, port), cancellation);
            var buffer = new byte[64 * 1024];
            for (long sent = 0; sent < bytes;)
            {
                var n = (int)Math.Min(buffer.Length, bytes - sent);
                sent += await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, cancellation);
            }

            socket.Shutdown(SocketShutdown.Send);
        }
    }

    /// <summary>Waits for a child to finish and fails with its stderr when it did not succeed.</summary>
    public static async Task ExpectSuccessAsync(Process process, CancellationToken cancellation)
    {
        await process.WaitForExitAsync(cancellation);
        var error = await process.StandardError.ReadToEndAsync(cancellation);
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {error}");
    }
}
