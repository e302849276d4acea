using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Google.Protobuf;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Protocol.Tests.Serialization;

/// <summary>
/// Nothing crosses the network as JSON: Akka's JSON serializer (bound to System.Object, identifier 1) is replaced by
/// <see cref="RefusingSerializer"/>, so a type bound to no binary serializer is never sent, and bytes a peer sends as JSON
/// are never turned into objects. Akka's protobuf serializer (bound to Google.Protobuf.IMessage, identifier 2) goes the same
/// way (<see cref="RefusingProtobufSerializer"/>): it would parse any protobuf type a peer names, an ONNX ModelProto
/// among them, and none of Akka's own messages needs it. Two actor systems on 127.0.0.1 over real sockets; the peer's JSON serializer is put back
/// to play a node that still has one (or an attacker).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class UnboundMessageSpecs : Akka.TestKit.Xunit2.TestKit
{
    public UnboundMessageSpecs()
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
    }

    [Fact]
    public void A_type_bound_to_no_binary_serializer_finds_only_the_refusing_serializer_in_the_json_slot()
    {
        var serializer = Sys.Serialization.FindSerializerFor(new SmuggledCommand("rm -rf /"));

        Assert.IsType<RefusingSerializer>(serializer);
        Assert.Equal(1, serializer.Identifier);
        Assert.Throws<SerializationException>(() => serializer.ToBinary(new SmuggledCommand("rm -rf /")));
        var json = Encoding.UTF8.GetBytes("""{"$type":"System.IO.FileInfo, System.IO.FileSystem","fileName":"/etc/passwd"}""");
        var error = Assert.Throws<SerializationException>(() => Sys.Serialization.Deserialize(json, 1, "System.IO.FileInfo, System.IO.FileSystem"));
        Assert.Contains("sent as JSON", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_binding_of_akka_or_ours_leads_to_the_protobuf_slot_except_the_bare_protobuf_interface()
    {
        // Akka's remote and cluster messages are bound to their own serializers; only the bare IMessage binding names
        // 'proto'. Had Akka bound a message of its own there, refusing it would break remoting, so this would fail first.
        var bindings = Sys.Settings.Config.GetConfig("akka.actor.serialization-bindings").AsEnumerable()
            .Select(b => (Type: b.Key.Trim('"'), Serializer: b.Value.GetString()))
            .ToList();
        Assert.Equal(["Google.Protobuf.IMessage, Google.Protobuf"], bindings.Where(b => b.Serializer == "proto").Select(b => b.Type));

        var serializer = Sys.Serialization.FindSerializerFor(new ModelProto { ProducerName = "forged" });
        Assert.IsType<RefusingProtobufSerializer>(serializer);
        Assert.Equal(2, serializer.Identifier);
        Assert.Throws<SerializationException>(() => serializer.ToBinary(new ModelProto()));
        var model = new ModelProto { ProducerName = "forged", Graph = new GraphProto { Name = "g" } }.ToByteArray();
        var error = Assert.Throws<SerializationException>(() => Sys.Serialization.Deserialize(model, 2, typeof(ModelProto).AssemblyQualifiedName!));
        Assert.Contains("bare protobuf message", error.Message, StringComparison.Ordinal);

        // The cluster's and remoting's own messages still find their own serializers.
        Assert.IsNotType<RefusingProtobufSerializer>(Sys.Serialization.FindSerializerFor(Akka.Remote.RemoteWatcher.Heartbeat.Instance));
        Assert.IsNotType<RefusingProtobufSerializer>(Sys.Serialization.FindSerializerFor(new Identify(1)));
    }

    [Fact]
    public async Task Protobuf_from_a_peer_is_dropped_a_protobuf_message_is_never_sent_and_bound_messages_still_cross()
    {
        var peer = ActorSystem.Create(
            PipelineConfig.SystemName,
            TestNodes.Config("""akka.actor.serializers.proto = "Akka.Remote.Serialization.ProtobufSerializer, Akka.Remote" """, Roles.Worker));
        try
        {
            var here = CreateTestProbe();
            var there = new Akka.TestKit.TestProbe(peer, new Akka.TestKit.Xunit2.XunitAssertions());
            var (hereProvider, peerProvider) = (((ExtendedActorSystem)Sys).Provider, ((ExtendedActorSystem)peer).Provider);
            var hereFromPeer = peerProvider.ResolveActorRef(here.Ref.Path.ToStringWithAddress(hereProvider.DefaultAddress));
            var thereFromHere = hereProvider.ResolveActorRef(there.Ref.Path.ToStringWithAddress(peerProvider.DefaultAddress));
            var forged = new ModelProto { ProducerName = "forged", Graph = new GraphProto { Name = "not-your-model" } };
            Assert.Equal(2, peer.Serialization.FindSerializerFor(forged).Identifier);
            Assert.IsNotType<RefusingProtobufSerializer>(peer.Serialization.FindSerializerFor(forged));

            for (var i = 0; i < 3; i++)
            {
                hereFromPeer.Tell(forged);
                thereFromHere.Tell(forged);
            }

            hereFromPeer.Tell(new JobAccepted("after-protobuf"));
            thereFromHere.Tell(new JobAccepted("after-unsent-protobuf"));

            // Per pair of systems Akka keeps order: had a ModelProto got through, it would arrive first.
            Assert.Equal("after-protobuf", (await here.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(15))).JobId);
            Assert.Equal("after-unsent-protobuf", (await there.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(15))).JobId);
            await here.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
            await there.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
        }
        finally
        {
            await peer.Terminate();
        }
    }

    [Fact]
    public async Task Json_from_a_peer_is_dropped_an_unbound_type_is_never_sent_and_bound_messages_still_cross_both_ways()
    {
        var peer = ActorSystem.Create(
            PipelineConfig.SystemName,
            TestNodes.Config("""akka.actor.serializers.json = "Akka.Serialization.NewtonSoftJsonSerializer, Akka" """, Roles.Worker));
        try
        {
            var here = CreateTestProbe();
            var there = new Akka.TestKit.TestProbe(peer, new Akka.TestKit.Xunit2.XunitAssertions());
            var (hereProvider, peerProvider) = (((ExtendedActorSystem)Sys).Provider, ((ExtendedActorSystem)peer).Provider);
            var hereFromPeer = peerProvider.ResolveActorRef(here.Ref.Path.ToStringWithAddress(hereProvider.DefaultAddress));
            var thereFromHere = hereProvider.ResolveActorRef(there.Ref.Path.ToStringWithAddress(peerProvider.DefaultAddress));
            Assert.Equal(1, peer.Serialization.FindSerializerFor(new SmuggledCommand("x")).Identifier);
            Assert.IsNotType<RefusingSerializer>(peer.Serialization.FindSerializerFor(new SmuggledCommand("x")));

            for (var i = 0; i < 3; i++)
            {
                hereFromPeer.Tell(new SmuggledCommand($"from the peer {i}"));
                thereFromHere.Tell(new SmuggledCommand($"from here {i}"));
            }

            hereFromPeer.Tell(new JobAccepted("after-json"));
            thereFromHere.Tell(new JobAccepted("after-unbound"));

            // Per pair of systems Akka keeps order: had a smuggled message got through, it would arrive first.
            Assert.Equal("after-json", (await here.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(15))).JobId);
            Assert.Equal("after-unbound", (await there.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(15))).JobId);
            await here.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
            await there.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
        }
        finally
        {
            await peer.Terminate();
        }
    }
}

/// <summary>A message type no serializer is bound to (test only): what a peer might try to smuggle in as JSON.</summary>
public sealed record SmuggledCommand(string Text);
