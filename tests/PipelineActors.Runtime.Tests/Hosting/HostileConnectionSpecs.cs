using System.Buffers.Binary;
using System.Net.Sockets;
using Akka.Cluster;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Runtime.Tests.Hosting;

/// <summary>
/// Raw bytes at the remoting ports of a running two-node cluster (real sockets on 127.0.0.1) while it streams a clip:
/// noise, length prefixes that claim gigabytes, frames cut short, and connections opened and dropped. Both nodes stay Up
/// and reachable, and every frame's result comes through once, in order, as the whole model computes it.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class HostileConnectionSpecs(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pa-hostile-port-").FullName;

    [Fact]
    public async Task Noise_huge_lengths_and_truncated_frames_at_both_ports_leave_the_nodes_up_and_the_stream_whole()
    {
        var prepared = ZooJobs.Prepare(_folder, "tinynet", parts: 1);
        await using var cluster = await TestCluster.StartAsync(new TestClusterOptions { Workers = 1 });
        var (head, worker) = (cluster.Head, cluster.Workers[0]);

        const int frames = 60;
        var writer = new CollectingResultWriter();
        var source = new SyntheticSource(prepared.SourceInputs, 12, frames, live: false);
        var session = IngestSession.Start(head, prepared, source, writer, TestStreams.Settings(), "hostile");

        var random = new Random(21);
        var sent = 0;
        var attack = Task.Run(async () =>
        {
            for (var round = 0; round < 10; round++)
            {
                foreach (var port in new[] { head.Address.Port!.Value, worker.Address.Port!.Value })
                {
                    sent += await SendAsync(port, Noise(random, random.Next(1, 64 * 1024)));
                    sent += await SendAsync(port, LengthPrefixed(int.MaxValue, Noise(random, 64)));
                    sent += await SendAsync(port, LengthPrefixed(100_000, Noise(random, 1_000)));
                    sent += await SendAsync(port, LengthPrefixed(-5, Noise(random, 16)));
                    sent += await SendAsync(port, []);
                }

                await Task.Delay(200);
            }
        });

        var finished = TestStreams.FinishAsync(session, TimeSpan.FromSeconds(120), output);
        await attack;
        output.WriteLine($"{sent} hostile bytes over 100 connections");
        await finished;
        WholeModelOracle.AssertExactlyOnceInOrder(writer.Snapshot(), frames);
        WholeModelOracle.AssertMatchesWholeModel(prepared, writer.Snapshot());
        foreach (var node in new[] { head, worker })
        {
            var state = Cluster.Get(node.System).State;
            Assert.Equal(2, state.Members.Count(m => m.Status == MemberStatus.Up));
            Assert.Empty(state.Unreachable);
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Connects, writes, and closes; a node that resets the connection first is answering correctly.</summary>
    private static async Task<int> SendAsync(int port, byte[] bytes)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port);
        try
        {
            await socket.SendAsync(bytes, SocketFlags.None);
        }
        catch (SocketException)
        {
            // The node closed the connection on the first bad bytes.
        }

        return bytes.Length;
    }

    private static byte[] Noise(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A frame as Akka's transport reads them (a 4-byte length, then the bytes), in both byte orders, cut short or lying.</summary>
    private static byte[] LengthPrefixed(int length, byte[] body)
    {
        var bytes = new byte[8 + body.Length];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, length);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), length);
        body.CopyTo(bytes, 8);
        return bytes;
    }
}
