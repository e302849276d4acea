using Akka.Actor;
using Akka.Configuration;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.DataPath.Sink.Decoders;

namespace PipelineActors.Runtime.DataPath.Sink.Destinations;

/// <summary>
/// What result destinations need besides their spec: the node's MQTT settings (for <c>mqtt</c>), the model's
/// decoder (for the decoded part of each line), and where to report trouble (a full disk, a broker that went away).
/// </summary>
public sealed record ResultContext(MqttSettings Mqtt, Action<string> Report)
{
    /// <summary>The model profile's decoder, or null for the tensor summary only.</summary>
    public IResultDecoder? Decoder { get; init; }

    /// <summary>The picture and model-input sizes the decoder maps coordinates with; null without a decoder.</summary>
    public DecodeContext? DecodeContext { get; init; }

    /// <summary>Reports to the monitor topic as events of source <c>sink JOB</c>, with the MQTT settings of the node's configuration.</summary>
    public static ResultContext ForNode(ActorSystem system, string jobName) =>
        ForNode(system, jobName, system.Settings.Config);

    /// <summary>As <see cref="ForNode(ActorSystem, string)"/>, with the MQTT settings read from <paramref name="config"/>.</summary>
    public static ResultContext ForNode(ActorSystem system, string jobName, Config config) =>
        new(MqttSettings.From(config), text => MonitorTopic.Publish(system, new PipelineEvent(MonitorTopic.Now(), $"sink {jobName}", text)));

    internal string Format(FrameOutcome outcome) => ResultLine.Format(outcome, Decoder, DecodeContext);
}

/// <summary>One place results go: a JSON-lines file, stdout or an MQTT topic.</summary>
public interface IResultDestination : IResultWriter
{
    /// <summary>What it is, for events and status (never a password): a file path, <c>stdout</c>, <c>mqtt://user@host:port/topic</c>.</summary>
    string Name { get; }

    /// <summary>Its counters so far (safe to read from any thread).</summary>
    ResultDestinationCounters Counters { get; }
}

/// <summary>
/// A destination's counters: results written (for MQTT: acknowledged by the broker), results that could not be
/// written, results dropped because a queue was full or the writer stopped first, results waiting, and
/// results skipped because a resumed file already holds their id.
/// </summary>
public sealed record ResultDestinationCounters(string Name, long Written, long Failed, long Dropped, long Waiting, long SkippedAlreadyWritten);
