using System.Collections.Concurrent;
using System.Diagnostics;
using MQTTnet;
using MQTTnet.Protocol;

namespace PipelineActors.TestSupport;

/// <summary>
/// A real MQTT client subscribed to one topic at QoS 1 that keeps every message it receives. Its session is
/// persistent (clean session off, a fixed client id), so a broker that restarts with its sessions keeps queuing
/// messages for it; it reconnects on its own after the broker comes back.
/// </summary>
public sealed class MqttResultSubscriber : IAsyncDisposable
{
    private readonly IMqttClient _client;
    private readonly MqttClientOptions _options;
    private readonly string _topic;
    private readonly ConcurrentQueue<string> _messages = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _reconnecting;

    private MqttResultSubscriber(IMqttClient client, MqttClientOptions options, string topic)
    {
        _client = client;
        _options = options;
        _topic = topic;
    }

    /// <summary>Messages received so far, in arrival order, as UTF-8 text.</summary>
    public IReadOnlyList<string> Messages => _messages.ToList();

    public static async Task<MqttResultSubscriber> ConnectAsync(MosquittoBroker broker, string topic)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(broker.Host, broker.Port)
            .WithClientId($"test-subscriber-{Guid.NewGuid():N}")
            .WithCleanSession(false)
            .WithSessionExpiryInterval(3600) // MQTT 5 ends a session at disconnect unless it is given a lifetime
            .WithTimeout(TimeSpan.FromSeconds(5));
        if (broker.Username is not null)
        {
            builder = builder.WithCredentials(broker.Username, broker.Password);
        }

        var subscriber = new MqttResultSubscriber(client, builder.Build(), topic);
        client.ApplicationMessageReceivedAsync += e =>
        {
            subscriber._messages.Enqueue(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        client.DisconnectedAsync += args =>
        {
            // Failed connection attempts raise this too: one reconnecting loop at a time, started by a real loss.
            if (args.ClientWasConnected
                && !subscriber._stopping.IsCancellationRequested
                && Interlocked.Exchange(ref subscriber._reconnecting, 1) == 0)
            {
                _ = Task.Run(subscriber.ReconnectAsync);
            }

            return Task.CompletedTask;
        };
        await subscriber.ConnectAndSubscribeAsync(CancellationToken.None);
        return subscriber;
    }

    /// <summary>Waits until the messages satisfy <paramref name="done"/>; false after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForAsync(Func<IReadOnlyList<string>, bool> done, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (done(Messages))
            {
                return true;
            }

            await Task.Delay(50);
        }

        return done(Messages);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_client.IsConnected)
        {
            await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build());
        }

        _client.Dispose();
        _stopping.Dispose();
    }

    private async Task ConnectAndSubscribeAsync(CancellationToken token)
    {
        await _client.ConnectAsync(_options, token);
        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(_topic).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
            .Build();
        await _client.SubscribeAsync(subscribe, token);
    }

    private async Task ReconnectAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested && !_client.IsConnected)
        {
            Volatile.Write(ref _reconnecting, 1);
            try
            {
                await ConnectAndSubscribeAsync(token);
            }
            catch (Exception) when (!token.IsCancellationRequested)
            {
                // The broker is still away; try again shortly.
                await Task.Delay(100, CancellationToken.None);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        Volatile.Write(ref _reconnecting, 0);
    }
}
