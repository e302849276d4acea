using System.Text;
using Akka.Configuration;
using PipelineActors.Onnx;

namespace PipelineActors.Runtime.DataPath.Sink.Destinations;

/// <summary>
/// The broker that the <c>mqtt</c> result destination publishes to, and how it publishes (<c>pipeline.mqtt</c>; the
/// defaults live in <c>hocon/reference.conf</c> only). Its text form never shows the password.
/// </summary>
public sealed record MqttSettings(
    string Host,
    int Port,
    string? Username,
    string? Password,
    string TopicPrefix,
    int QueueCapacity,
    TimeSpan RetryMin,
    TimeSpan RetryMax,
    TimeSpan DrainTimeout)
{
    public static MqttSettings From(Config config)
    {
        var host = config.GetString("pipeline.mqtt.host");
        var port = config.GetInt("pipeline.mqtt.port");
        var user = config.GetString("pipeline.mqtt.username");
        var password = config.GetString("pipeline.mqtt.password");
        var prefix = config.GetString("pipeline.mqtt.topic-prefix");
        var queue = config.GetInt("pipeline.mqtt.queue-capacity");
        var retryMin = config.GetTimeSpan("pipeline.mqtt.retry-min");
        var retryMax = config.GetTimeSpan("pipeline.mqtt.retry-max");
        var drain = config.GetTimeSpan("pipeline.mqtt.drain-timeout");
        Require(!string.IsNullOrWhiteSpace(host), "pipeline.mqtt.host is empty; give the broker's host name or address.");
        Require(port is >= 1 and <= 65535, $"pipeline.mqtt.port is {port}; give a port from 1 to 65535 (1883 is MQTT's).");
        Require(TopicNameIsPlain(prefix), $"pipeline.mqtt.topic-prefix '{prefix}' holds '+', '#' or nothing; give a topic such as pipeline/jobs.");
        Require(queue >= 1, $"pipeline.mqtt.queue-capacity is {queue}; give at least 1 result.");
        Require(
            retryMin > TimeSpan.Zero && retryMax >= retryMin,
            $"pipeline.mqtt.retry-min ({retryMin}) must be positive and at most retry-max ({retryMax}).");
        Require(drain >= TimeSpan.Zero, $"pipeline.mqtt.drain-timeout is {drain}; give zero or a positive time.");
        return new MqttSettings(
            host,
            port,
            string.IsNullOrEmpty(user) ? null : user,
            string.IsNullOrEmpty(password) ? null : password,
            prefix.TrimEnd('/'),
            queue,
            retryMin,
            retryMax,
            drain);
    }

    /// <summary>The topic a job's results go to: <c>PREFIX/JOB/results</c>.</summary>
    public string TopicFor(string jobName) => $"{TopicPrefix}/{jobName}/results";

    /// <summary>A topic name MQTT accepts for publishing: not empty, no wildcards, no NUL.</summary>
    internal static bool TopicNameIsPlain(string? topic) =>
        !string.IsNullOrEmpty(topic) && topic.IndexOfAny(['+', '#', '\0']) < 0;

    // The record's generated text would print the password; this one says only whether there is one.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Host = ").Append(Host).Append(", Port = ").Append(Port)
            .Append(", Username = ").Append(Username).Append(", Password = ").Append(Password is null ? "(none)" : "(set)")
            .Append(", TopicPrefix = ").Append(TopicPrefix).Append(", QueueCapacity = ").Append(QueueCapacity)
            .Append(", RetryMin = ").Append(RetryMin).Append(", RetryMax = ").Append(RetryMax).Append(", DrainTimeout = ").Append(DrainTimeout);
        return true;
    }

    private static void Require(bool condition, string sentence)
    {
        if (!condition)
        {
            throw new PipelineInputException(sentence);
        }
    }
}
