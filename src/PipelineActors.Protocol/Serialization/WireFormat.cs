using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;

namespace PipelineActors.Protocol.Serialization;

/// <summary>The wire format's version: the first byte of every message that either serializer writes.</summary>
public static class WireFormat
{
    /// <summary>Raise it with any change to a message layout: nodes of another version refuse the messages.</summary>
    public const byte Version = 5;

    /// <summary>Bytes in front of every message body (the version).</summary>
    public const int HeaderBytes = 1;

    /// <summary>True when <paramref name="bytes"/> start with this node's version.</summary>
    public static bool IsCurrent(ReadOnlySpan<byte> bytes) => bytes.Length > 0 && bytes[0] == Version;
}

/// <summary>
/// What a serializer hands Akka in place of a message written by a node of another wire-format version. Akka.Remote's
/// endpoint reader logs a warning for every message whose deserialization throws a SerializationException (a storm at
/// frame rate) and fails the association on any other exception; a placeholder that nobody handles is dropped quietly
/// (unhandled, like a dead letter), and <see cref="WireVersionGuard"/> has said why, once.
/// </summary>
public sealed record RefusedMessage(byte Version, string Manifest) : INoSerializationVerificationNeeded, IDeadLetterSuppression;

/// <summary>
/// Checks the version byte of every incoming message and logs one error per foreign version per actor system, shared by
/// both serializers so a mismatched node is reported in one line, not one per message or per serializer.
/// </summary>
public sealed class WireVersionGuard : IExtension
{
    private readonly ConcurrentDictionary<byte, bool> _reported = new();
    private readonly Lazy<ILoggingAdapter> _log;
    private long _refused;

    public WireVersionGuard(ExtendedActorSystem system)
    {
        // Serializers are built while the system starts, before a logger can be; the first refusal comes later.
        _log = new Lazy<ILoggingAdapter>(() => Logging.GetLogger(system, typeof(WireVersionGuard)));
    }

    /// <summary>Messages refused since the system started, any version.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    public static WireVersionGuard For(ActorSystem system) => system.WithExtension<WireVersionGuard, WireVersionGuardProvider>();

    /// <summary>Counts a message that failed <see cref="WireFormat.IsCurrent"/>, reports its version once, and gives the placeholder.</summary>
    public RefusedMessage Refuse(ReadOnlySpan<byte> bytes, string manifest)
    {
        var version = bytes.Length == 0 ? (byte)0 : bytes[0];
        Interlocked.Increment(ref _refused);
        if (_reported.TryAdd(version, true))
        {
            _log.Value.Error(
                "Refusing messages from a node that writes wire format version {0}; this node reads version {1} only. Run the same "
                + "PipelineActors build on every node. Its messages are dropped (first: manifest '{2}'); this is said once.",
                version,
                WireFormat.Version,
                manifest);
        }

        return new RefusedMessage(version, manifest);
    }
}

/// <summary>Creates the one <see cref="WireVersionGuard"/> of an actor system.</summary>
public sealed class WireVersionGuardProvider : ExtensionIdProvider<WireVersionGuard>
{
    public override WireVersionGuard CreateExtension(ExtendedActorSystem system) => new(system);
}
