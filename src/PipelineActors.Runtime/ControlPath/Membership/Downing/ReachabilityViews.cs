using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;

namespace PipelineActors.Runtime.ControlPath.Membership.Downing;

/// <summary>Messages of the downing actors; bound to <see cref="ReachabilityViewsSerializer"/> in reference.conf.</summary>
public interface IDowningMessage;

/// <summary>A member incarnation on the wire: its address and uid.</summary>
public sealed record MemberId(string Address, int Uid);

/// <summary>
/// What one observer's failure detector says, numbered: <paramref name="Sequence"/> rises with every view the observer
/// makes, so a relayed copy never replaces a newer one, and a number that stops rising means the observer went silent.
/// </summary>
public sealed record ReachabilityView(MemberId Observer, long Sequence, IReadOnlyList<MemberId> Unreachable);

/// <summary>
/// The latest view of every observer this node knows, its own included, sent to every member a few times a second.
/// Relaying the others' views lets a node that cannot hear a member directly still learn that the member speaks.
/// </summary>
public sealed record ReachabilityViews(IReadOnlyList<ReachabilityView> Views) : IDowningMessage;

/// <summary>
/// Binary form of <see cref="ReachabilityViews"/>: counts and lengths are checked against small limits before anything
/// is allocated, as for every message a peer can send.
/// </summary>
public sealed class ReachabilityViewsSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 438;

    /// <summary>Far above any cluster this system runs (each view names members, and there is one view per member).</summary>
    public const int MaxMembers = 512;

    private const int MaxAddressBytes = 512;
    private const string Manifest_ = "V";

    public override int Identifier => Id;

    public override string Manifest(object o) => o is ReachabilityViews
        ? Manifest_
        : throw new ArgumentException($"ReachabilityViewsSerializer cannot serialize {o.GetType()}.", nameof(o));

    public override byte[] ToBinary(object obj)
    {
        if (obj is not ReachabilityViews views)
        {
            throw new ArgumentException($"ReachabilityViewsSerializer cannot serialize {obj.GetType()}.", nameof(obj));
        }

        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(views.Views.Count);
        foreach (var view in views.Views)
        {
            Write(w, view.Observer);
            w.Write(view.Sequence);
            w.Write(view.Unreachable.Count);
            foreach (var member in view.Unreachable)
            {
                Write(w, member);
            }
        }

        w.Flush();
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (manifest != Manifest_)
        {
            throw new SerializationException($"Unknown reachability manifest '{manifest}'.");
        }

        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
            var views = new List<ReachabilityView>();
            var count = Count(r);
            for (var i = 0; i < count; i++)
            {
                var observer = Read(r);
                var sequence = r.ReadInt64();
                var unreachable = new List<MemberId>();
                var subjects = Count(r);
                for (var j = 0; j < subjects; j++)
                {
                    unreachable.Add(Read(r));
                }

                views.Add(new ReachabilityView(observer, sequence, unreachable));
            }

            if (r.BaseStream.Position != bytes.Length)
            {
                throw new SerializationException($"A reachability message has {bytes.Length - r.BaseStream.Position} bytes after its last field.");
            }

            return new ReachabilityViews(views);
        }
        catch (EndOfStreamException)
        {
            throw new SerializationException("A reachability message ends inside a field.");
        }
    }

    private static void Write(BinaryWriter w, MemberId member)
    {
        w.Write(member.Address);
        w.Write(member.Uid);
    }

    private static MemberId Read(BinaryReader r)
    {
        // BinaryReader's string length is a 7-bit varint; read it ourselves so a huge one is refused before it allocates.
        var length = r.Read7BitEncodedInt();
        if (length < 0 || length > MaxAddressBytes)
        {
            throw new SerializationException($"A member address of {length} bytes is over the limit of {MaxAddressBytes}.");
        }

        var bytes = r.ReadBytes(length);
        if (bytes.Length != length)
        {
            throw new EndOfStreamException();
        }

        var address = Encoding.UTF8.GetString(bytes);
        return new MemberId(address, r.ReadInt32());
    }

    private static int Count(BinaryReader r)
    {
        var count = r.ReadInt32();
        return count is >= 0 and <= MaxMembers
            ? count
            : throw new SerializationException($"A reachability message counts {count} members; the limit is {MaxMembers}.");
    }
}
