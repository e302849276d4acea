using Akka.Actor;
using Akka.Configuration;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// Takes the place of Akka's protobuf serializer (name <c>proto</c>, identifier 2, bound to <c>Google.Protobuf.IMessage</c>):
/// it writes nothing and reads nothing. That serializer parses bytes from any peer as whichever protobuf type the manifest
/// names, and our assemblies hold many (an ONNX ModelProto among them), so a peer could make a node parse a model of its
/// choosing. None of Akka's own messages goes through it in 1.5.74 (remoting and the cluster have serializers of their own
/// and write their protobuf types themselves; UnboundMessageSpecs checks the bindings), so nothing is lost by refusing.
/// </summary>
public sealed class RefusingProtobufSerializer : RefusingSerializerBase
{
    /// <summary>The identifier of the serializer it replaces, so bytes sent that way reach this refusal.</summary>
    public const int Id = 2;

    public RefusingProtobufSerializer(ExtendedActorSystem system)
        : base(system, Id, "as a bare protobuf message", "is a protobuf message, and this node sends none as one; wrap it in a protocol message "
            + "or keep it on this node.")
    {
    }

    /// <summary>Akka passes the replaced serializer's <c>serialization-settings</c> when it has some; nothing in them applies here.</summary>
    public RefusingProtobufSerializer(ExtendedActorSystem system, Config settings)
        : this(system)
    {
        _ = settings;
    }
}
