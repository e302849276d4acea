using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// A serializer that writes nothing and reads nothing, put in the place of one of Akka's (under its identifier, so bytes a
/// peer sends that way reach this refusal). It has a string manifest: the type name a peer writes is never resolved to a
/// type here, as Akka would for a plain serializer. The two refusals differ only in their identifier and their words.
/// </summary>
public abstract class RefusingSerializerBase(ExtendedActorSystem system, int identifier, string refusedAs, string unboundAdvice)
    : SerializerWithStringManifest(system)
{
    public override int Identifier => identifier;

    public override string Manifest(object o) => throw Unbound(o);

    public override byte[] ToBinary(object obj) => throw Unbound(obj);

    public override object FromBinary(byte[] bytes, string manifest) =>
        throw new SerializationException($"Refused a message of {bytes.Length} bytes sent {refusedAs} (manifest '{Shortened(manifest)}'); "
            + "this node reads binary-serialized messages of its own protocol only.");

    private SerializationException Unbound(object? o) => new($"{o?.GetType().FullName ?? "null"} {unboundAdvice}");

    // The manifest is the peer's text: a line in the log, not a page.
    private static string Shortened(string manifest) => manifest.Length <= 120 ? manifest : manifest[..120] + "...";
}
