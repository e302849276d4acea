using System.Runtime.Serialization;
using System.Text;
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

    public static List<T> ReadList<T>(WireReader r, Func<WireReader, T> read)
    {
        // Every element takes at least a byte: a count past what is left is a corrupt or hostile message, refused before allocating.
        var count = r.ReadCount(Math.Min(r.Limits.ListItems, r.Remaining), "A list's length");
        var list = new List<T>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add(read(r));
        }

        return list;
    }

    public static void WriteStrings(BinaryWriter w, IReadOnlyList<string> items) => WriteList(w, items, (x, s) => x.Write(s));

    public static List<string> ReadStrings(WireReader r) => ReadList(r, x => x.ReadString());

    public static void WriteRef(BinaryWriter w, IActorRef actor) => w.Write(Akka.Serialization.Serialization.SerializedActorPath(actor));

    public static IActorRef ReadRef(ExtendedActorSystem system, WireReader r) => system.Provider.ResolveActorRef(r.ReadString());

    /// <summary>
    /// Reads one message body with <paramref name="read"/> and insists it used every byte. Whatever goes wrong becomes a
    /// <see cref="SerializationException"/> naming the message: Akka.Remote drops such a message and logs it, while another
    /// exception type (an end of stream, a bad UTF-8 length) may fail the whole association with the peer.
    /// </summary>
    public static object Read(byte[] bytes, string manifest, WireLimits limits, string serializer, Func<WireReader, object> read)
    {
        try
        {
            using var r = new WireReader(bytes, limits);
            var message = read(r);
            if (r.Remaining != 0)
            {
                throw new SerializationException($"{r.Remaining} bytes follow the last field.");
            }

            return message;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw Malformed(serializer, manifest, bytes.Length, e);
        }
    }

    /// <summary>One sentence for a refused message: which serializer, which manifest, how long, and why.</summary>
    public static SerializationException Malformed(string serializer, string manifest, int length, Exception why) =>
        new($"{serializer} refused a '{Printable(manifest)}' message of {length} bytes: {why.Message.TrimEnd('.')}.", why);

    // A manifest is the peer's text: short and printable in a log line.
    private static string Printable(string manifest) =>
        new(manifest.Take(40).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}

/// <summary>
/// A <see cref="BinaryReader"/> over one message body (after the version byte) that checks every length it reads against
/// the bytes left and the node's <see cref="WireLimits"/> before allocating for it. The layout is BinaryWriter's, so the
/// format is unchanged: a string is its UTF-8 length (7-bit encoded) and its bytes.
/// </summary>
internal sealed class WireReader(byte[] bytes, WireLimits limits)
    : BinaryReader(new MemoryStream(bytes, WireFormat.HeaderBytes, bytes.Length - WireFormat.HeaderBytes, writable: false), Encoding.UTF8)
{
    public WireLimits Limits { get; } = limits;

    public long Remaining => BaseStream.Length - BaseStream.Position;

    public override string ReadString()
    {
        var length = ReadCountOf(Read7BitEncodedInt(), Math.Min(Limits.StringBytes, Remaining), "A string's length");
        return Encoding.UTF8.GetString(ReadBytes(length));
    }

    public override byte[] ReadBytes(int count)
    {
        // BinaryReader allocates the count first and returns a short array at the end of the stream: check, then read.
        ReadCountOf(count, Remaining, "A byte field's length");
        return base.ReadBytes(count);
    }

    /// <summary>A count or length of at most <paramref name="limit"/>, read as an Int32.</summary>
    public int ReadCount(long limit, string what) => ReadCountOf(ReadInt32(), limit, what);

    /// <summary>A SHA-256 in lowercase hex (64 characters), or with <paramref name="emptyAllowed"/> an empty string ("not known").</summary>
    public string ReadSha256(bool emptyAllowed = false)
    {
        var text = ReadString();
        return (emptyAllowed && text.Length == 0) || IsSha256(text)
            ? text
            : throw new SerializationException($"'{Shortened(text)}' is not a SHA-256 (64 lowercase hex digits).");
    }

    /// <summary>An epoch: -1 (none yet) or more.</summary>
    public long ReadEpoch()
    {
        var epoch = ReadInt64();
        return epoch >= -1 ? epoch : throw new SerializationException($"An epoch is {epoch}; epochs start at 0 (-1: none yet).");
    }

    /// <summary>How many stages a split has.</summary>
    public int ReadParts() => ReadCountOf(ReadInt32(), Limits.Parts, "A split's stage count") is var parts && parts >= 1
        ? parts
        : throw new SerializationException("A split has 0 stages.");

    /// <summary>A stage's index, from 0.</summary>
    public int ReadIndex() => ReadCountOf(ReadInt32(), Limits.Parts - 1, "A stage index");

    /// <summary>Whether <paramref name="text"/> is 64 lowercase hex digits, as SHA-256s are written everywhere in this system.</summary>
    public static bool IsSha256(string text) => text.Length == 64 && text.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    private static int ReadCountOf(int value, long limit, string what) => (int)WireLimits.Check(value, limit, what);

    private static string Shortened(string text) =>
        new(text.Take(80).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
