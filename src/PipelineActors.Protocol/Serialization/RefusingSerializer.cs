using Akka.Actor;
using Akka.Configuration;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// Takes the place of Akka's JSON serializer (name <c>json</c>, identifier 1, bound to <c>System.Object</c>): it writes
/// nothing and reads nothing. A polymorphic JSON reader turns bytes from any peer into any CLR type its manifest names,
/// so no node keeps one: a message of a type bound to no binary serializer is dropped by the sender's remoting (it logs
/// the error below), and bytes a peer sends under identifier 1 are refused here before anything is built from them.
/// </summary>
public sealed class RefusingSerializer : RefusingSerializerBase
{
    /// <summary>The identifier of the serializer it replaces, so bytes sent that way reach this refusal.</summary>
    public const int Id = 1;

    public RefusingSerializer(ExtendedActorSystem system)
        : base(system, Id, "as JSON", "is bound to no binary serializer, and this node sends nothing as JSON; bind it in "
            + "akka.actor.serialization-bindings or keep it on this node.")
    {
    }

    /// <summary>Akka passes the replaced serializer's <c>serialization-settings</c> when it has some; nothing in them applies here.</summary>
    public RefusingSerializer(ExtendedActorSystem system, Config settings)
        : this(system)
    {
        _ = settings;
    }
}
