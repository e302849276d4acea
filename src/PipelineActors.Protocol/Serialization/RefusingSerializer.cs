using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// Takes the place of Akka's JSON serializer (name <c>json</c>, identifier 1, bound to <c>System.Object</c>): it writes
/// nothing and reads nothing. A polymorphic JSON reader turns bytes from any peer into any CLR type its manifest names,
/// so no node keeps one: a message of a type bound to no binary serializer is dropped by the sender's remoting (it logs
/// the error below), and bytes a peer sends under identifier 1 are refused here before anything is built from them.
/// </summary>
public sealed class RefusingSerializer : SerializerWithStringManifest
{
    /// <summary>The identifier of the JSON serializer it replaces, so bytes sent as JSON reach this refusal.</summary>
    public const int Id = 1;

    public RefusingSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    /// <summary>Akka passes <c>akka.actor.serialization-settings.json</c> when it has one; nothing in it applies here.</summary>
    public RefusingSerializer(ExtendedActorSystem system, Config settings)
        : base(system)
    {
        _ = settings;
    }

    public override int Identifier => Id;

    // A string manifest: the type name a peer writes is never resolved to a type here (Akka would load it for a plain Serializer).
    public override string Manifest(object o) => throw Unbound(o);

    public override byte[] ToBinary(object obj) => throw Unbound(obj);

    public override object FromBinary(byte[] bytes, string manifest) =>
        throw new SerializationException(
            $"Refused a message of {bytes.Length} bytes sent as JSON (manifest '{Shortened(manifest)}'); this node reads binary-serialized "
            + "messages only.");

    private static SerializationException Unbound(object? o) =>
        new($"{o?.GetType().FullName ?? "null"} is bound to no binary serializer, and this node sends nothing as JSON; bind it in "
            + "akka.actor.serialization-bindings or keep it on this node.");

    // The manifest is the peer's text: a line in the log, not a page.
    private static string Shortened(string manifest) => manifest.Length <= 120 ? manifest : manifest[..120] + "...";
}
