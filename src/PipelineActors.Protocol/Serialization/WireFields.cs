using Akka.Actor;

namespace PipelineActors.Protocol.Serialization;

/// <summary>The field encodings the control and job serializers share: length-prefixed lists and actor refs by path.</summary>
internal static class WireFields
{
    public static void WriteList<T>(BinaryWriter w, IReadOnlyList<T> items, Action<BinaryWriter, T> write)
    {
        w.Write(items.Count);
        foreach (var item in items)
        {
            write(w, item);
        }
    }

    public static List<T> ReadList<T>(BinaryReader r, Func<BinaryReader, T> read)
    {
        var count = r.ReadInt32();
        if (count < 0 || count > r.BaseStream.Length - r.BaseStream.Position)
        {
            // Every element takes at least a byte: a longer count is a corrupt or hostile message, refused before allocating.
            throw new System.Runtime.Serialization.SerializationException($"A list of {count} elements cannot fit in the message.");
        }

        var list = new List<T>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add(read(r));
        }

        return list;
    }

    public static void WriteStrings(BinaryWriter w, IReadOnlyList<string> items) => WriteList(w, items, (x, s) => x.Write(s));

    public static List<string> ReadStrings(BinaryReader r) => ReadList(r, x => x.ReadString());

    public static void WriteRef(BinaryWriter w, IActorRef actor) => w.Write(Akka.Serialization.Serialization.SerializedActorPath(actor));

    public static IActorRef ReadRef(ExtendedActorSystem system, BinaryReader r) => system.Provider.ResolveActorRef(r.ReadString());
}
