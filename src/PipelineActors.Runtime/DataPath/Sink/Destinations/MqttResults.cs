using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using MQTTnet;
using MQTTnet.Protocol;

namespace PipelineActors.Runtime.DataPath.Sink.Destinations;

/// <summary>Where an MQTT destination publishes: the broker, the credentials (never printed) and the topic.</summary>
public sealed record MqttTarget(string Host, int Port, string? Username, string? Password, string Topic)
{
    /// <summary><c>mqtt://[user@]host:port/topic</c>: the password is never part of it.</summary>
    public string Name => $"mqtt://{(Username is null ? string.Empty : Username + "@")}{Host}:{Port}/{Topic}";

    public override string ToString() => Name;
}

/// <summary>
/// Publishes each result's JSON line to one MQTT topic at QoS 1. <see cref="Write"/> only queues (a bounded queue),
/// so the sink never waits on the network; a background publisher sends in order and takes a result off the queue
/// only when the broker acknowledged it. A broker that goes away is reported once per outage and retried with
/// backoff; while it is away the queue fills, and results that find it full are dropped, counted and reported.
/// </summary>
public sealed class MqttResults : IResultDestination
{
    private static readonly TimeSpan ReportEvery = TimeSpan.FromSeconds(5);
    private readonly MqttTarget _target;
    private readonly MqttSettings _settings;
    private readonly Func<FrameOutcome, string> _format;
    private readonly Action<string> _report;
    private readonly Channel<byte[]> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly IMqttClient _client;
    private readonly Task _publisher;
    private long _written;
    private long _failed;
    private long _dropped;
    private long _waiting;
    private long _droppedReported;
    private long _lastDropReportTicks;
    private int _disposed;

    public MqttResults(MqttTarget target, MqttSettings settings, Func<FrameOutcome, string> format, Action<string> report)
    {
        _target = target;
        _settings = settings;
        _format = format;
        _report = report;
        _queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(settings.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait, SingleReader = true, SingleWriter = false,
        });
        _client = new MqttClientFactory().CreateMqttClient();
        _publisher = Task.Run(PublishAsync);
    }

    public string Name => _target.Name;

    /// <summary>Whether the publisher holds a connection to the broker now.</summary>
    public bool IsConnected => _client.IsConnected;

    public ResultDestinationCounters Counters => new(
        Name, Interlocked.Read(ref _written), Interlocked.Read(ref _failed), Interlocked.Read(ref _dropped), Interlocked.Read(ref _waiting), 0);

    public void Write(FrameOutcome outcome)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var payload = Encoding.UTF8.GetBytes(_format(outcome));
        Interlocked.Increment(ref _waiting);
        if (_queue.Writer.TryWrite(payload))
        {
            return;
        }

        Interlocked.Decrement(ref _waiting);
        var dropped = Interlocked.Increment(ref _dropped);
        var now = Stopwatch.GetTimestamp();
        if (dropped == 1 || Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastDropReportTicks), now) >= ReportEvery)
        {
            Interlocked.Exchange(ref _lastDropReportTicks, now);
            var fresh = dropped - Interlocked.Exchange(ref _droppedReported, dropped);
            _report($"results to {Name}: the queue of {_settings.QueueCapacity} results is full (the broker is not taking them); "
                + $"dropped {fresh} more, {dropped} in all");
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Let what is queued reach the broker for a while, then give up on the rest.
        _queue.Writer.TryComplete();
        if (!_publisher.Wait(_settings.DrainTimeout))
        {
            _stopping.Cancel();
            _publisher.Wait(TimeSpan.FromSeconds(5));
        }

        var left = 0L;
        while (_queue.Reader.TryRead(out _))
        {
            left++;
        }

        if (left > 0)
        {
            Interlocked.Add(ref _dropped, left);
            Interlocked.Add(ref _waiting, -left);
            _report($"results to {Name}: stopped with {left} results the broker never took");
        }

        if (_client.IsConnected)
        {
            try
            {
                _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build()).Wait(TimeSpan.FromSeconds(2));
            }
            catch (AggregateException)
            {
                // The broker went away as we left; nothing is waiting on this connection.
            }
        }

        _client.Dispose();
        _stopping.Dispose();
    }

    private async Task PublishAsync()
    {
        var token = _stopping.Token;
        var retry = _settings.RetryMin;
        var outageStarted = 0L;
        try
        {
            while (await _queue.Reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (_queue.Reader.TryPeek(out var payload))
                {
                    try
                    {
                        if (!_client.IsConnected)
                        {
                            await ConnectAsync(token).ConfigureAwait(false);
                        }

                        var message = new MqttApplicationMessageBuilder()
                            .WithTopic(_target.Topic)
                            .WithPayload(payload)
                            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                            .Build();
                        var published = await _client.PublishAsync(message, token).ConfigureAwait(false);
                        if (!published.IsSuccess)
                        {
                            throw new InvalidOperationException($"the broker refused the result ({published.ReasonCode}: {published.ReasonString})");
                        }
                    }
                    catch (Exception e) when (!token.IsCancellationRequested && e is not ObjectDisposedException)
                    {
                        Interlocked.Increment(ref _failed);
                        if (outageStarted == 0)
                        {
                            outageStarted = Stopwatch.GetTimestamp();
                            _report($"results to {Name}: cannot publish ({Describe(e)}); "
                                + $"retrying with backoff up to {_settings.RetryMax.TotalSeconds:0.#} s, "
                                + $"{Interlocked.Read(ref _waiting)} results waiting");
                        }

                        await Task.Delay(retry, token).ConfigureAwait(false);
                        retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, _settings.RetryMax.Ticks));
                        continue;
                    }

                    _queue.Reader.TryRead(out _);
                    Interlocked.Decrement(ref _waiting);
                    Interlocked.Increment(ref _written);
                    retry = _settings.RetryMin;
                    if (outageStarted != 0)
                    {
                        _report($"results to {Name}: publishing again after {Stopwatch.GetElapsedTime(outageStarted).TotalSeconds:0.0} s; "
                            + $"{Interlocked.Read(ref _waiting)} results waiting, {Interlocked.Read(ref _dropped)} dropped in all");
                        outageStarted = 0;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Stopped with results left; Dispose counts them.
        }
    }

    private async Task ConnectAsync(CancellationToken token)
    {
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(_target.Host, _target.Port)
            .WithClientId($"pipeline-results-{Guid.NewGuid():N}")
            .WithCleanSession(true)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(5))
            .WithTimeout(TimeSpan.FromSeconds(5));
        if (_target.Username is not null)
        {
            options = options.WithCredentials(_target.Username, _target.Password ?? string.Empty);
        }

        var connected = await _client.ConnectAsync(options.Build(), token).ConfigureAwait(false);
        if (connected.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new InvalidOperationException($"the broker refused the connection ({connected.ResultCode})");
        }
    }

    // The exception's own words (a refused socket, bad credentials); MQTTnet's messages carry no password.
    private static string Describe(Exception e) => (e.InnerException is { } inner && e.Message.Length < 20 ? inner : e).Message.TrimEnd('.');
}
