using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// Takes the place of Akka's protobuf serializer (name <c>proto</c>, identifier 2, bound to <c>Google.Protobuf.IMessage</c>):
/// it writes nothing and reads nothing. That serializer parses bytes from any peer as whichever protobuf type the manifest
/// names, and our assemblies hold many (an ONNX ModelProto among them), so a peer could make a node parse a model of its
/// choosing. None of Akka's own messages goes through it in 1.5.74 (remoting and the cluster have serializers of their own
/// and write their protobuf types themselves; UnboundMessageSpecs checks the bindings), so nothing is lost by refusing.
/// </summary>
public sealed class RefusingProtobufSerializer : SerializerWithStringManifest
{
    /// <summary>The identifier of the protobuf serializer it replaces, so bytes sent as protobuf reach this refusal.</summary>
    public const int Id = 2;

    public RefusingProtobufSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    /// <summary>Akka passes <c>akka.actor.serialization-settings.proto</c> when it has one; nothing in it applies here.</summary>
    public RefusingProtobufSerializer(ExtendedActorSystem system, Config settings)
        : base(system)
    {
        _ = settings;
    }

    public override int Identifier => Id;

    // A string manifest: the type name a peer writes is never resolved to a type here.
    public override string Manifest(object o) => throw Unbound(o);

    public override byte[] ToBinary(object obj) => throw Unbound(obj);

    public override object FromBinary(byte[] bytes, string manifest) =>
        throw new SerializationException(
            $"Refused a message of {bytes.Length} bytes sent as a bare protobuf message (manifest '{Shortened(manifest)}'); this node "
            + "reads only its own protocol's serializers.");

    private static SerializationException Unbound(object? o) =>
        new($"{o?.GetType().FullName ?? "null"} is a protobuf message, and this node sends none as one; wrap it in a protocol message "
            + "or keep it on this node.");

    // The manifest is the peer's text: a line in the log, not a page.
    private static string Shortened(string manifest) => manifest.Length <= 120 ? manifest : manifest[..120] + "...";
}
