using System.Diagnostics;
using PipelineActors.Runtime.DataPath.Sink.Destinations;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using Xunit.Abstractions;
using static PipelineActors.Runtime.Tests.DataPath.Sink.Destinations.ResultFiles;

namespace PipelineActors.Runtime.Tests.DataPath.Sink.Destinations;

/// <summary>
/// Results published to a real Mosquitto broker reach a real subscriber once each, in order; a broker that goes
/// away is reported and retried, and the writer never makes the sink wait.
/// </summary>
public sealed class MqttResultsSpecs(ITestOutputHelper output) : IDisposable
{
    private const string Password = "pa55-word";
    private readonly MosquittoBroker _broker = MosquittoBroker.Start("camera-board", Password);
    private readonly (Action<string> Report, System.Collections.Concurrent.ConcurrentQueue<string> Events) _events = Events();

    [Fact]
    public async Task Every_result_reaches_the_subscriber_once_in_order_on_the_jobs_topic_with_the_credentials_of_the_spec()
    {
        await using var subscriber = await MqttResultSubscriber.ConnectAsync(_broker, "pipeline/jobs/cam-1/results");
        using (var results = Open($"mqtt://camera-board:{Password}@{_broker.Host}:{_broker.Port}", "cam-1"))
        {
            var clock = Stopwatch.StartNew();
            for (var id = 0; id < 200; id++)
            {
                results.Write(Outcome(id));
            }

            Assert.True(await subscriber.WaitForAsync(m => m.Count >= 200, TimeSpan.FromSeconds(20)), $"received {subscriber.Messages.Count} of 200");
            output.WriteLine($"200 results written to received in {clock.Elapsed.TotalMilliseconds:0} ms (polled every 50 ms)");
            var counters = results.Counters()[0];
            Assert.Equal($"mqtt://camera-board@{_broker.Host}:{_broker.Port}/pipeline/jobs/cam-1/results", counters.Name);
            Assert.Equal((200L, 0L, 0L), (counters.Written, counters.Dropped, counters.Failed));
        }

        await Task.Delay(300); // nothing more may arrive
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (long)i), subscriber.Messages.Select(IdOf));
        Assert.Empty(_events.Events);
    }

    [Fact]
    public async Task The_mqtt_spec_publishes_to_the_broker_and_topic_prefix_of_the_configuration()
    {
        await using var subscriber = await MqttResultSubscriber.ConnectAsync(_broker, "plant/line-1/cam-2/results");
        var config = $"pipeline.mqtt {{ host = \"{_broker.Host}\", port = {_broker.Port}, username = camera-board, password = \"{Password}\", "
            + "topic-prefix = plant/line-1 }";
        var settings = MqttSettings.From(TestNodes.Config(config, Roles.Ingest));
        using (var results = ResultDestinations.Open(["mqtt"], "cam-2", new ResultContext(settings, _events.Report)))
        {
            results.Write(Outcome(7));
            Assert.True(await subscriber.WaitForAsync(m => m.Count >= 1, TimeSpan.FromSeconds(10)));
        }

        Assert.Equal([7L], subscriber.Messages.Select(IdOf));
    }

    [Fact]
    public async Task A_broker_that_goes_away_is_reported_the_writer_does_not_block_and_results_arrive_once_after_it_returns()
    {
        await using var subscriber = await MqttResultSubscriber.ConnectAsync(_broker, "pipeline/jobs/cam-1/results");
        using var results = Open($"mqtt://camera-board:{Password}@{_broker.Host}:{_broker.Port}", "cam-1");
        for (var id = 0; id < 50; id++)
        {
            results.Write(Outcome(id));
        }

        // Every one acknowledged before the broker goes, so none is in doubt (QoS 1 is at least once).
        await Poll.UntilAsync(() => results.Counters()[0].Written == 50, TimeSpan.FromSeconds(20), "50 results were not written");
        _broker.Stop();

        var clock = Stopwatch.StartNew();
        for (var id = 50; id < 100; id++)
        {
            results.Write(Outcome(id));
        }

        var writeTime = clock.Elapsed;
        output.WriteLine($"50 writes with the broker away: {writeTime.TotalMilliseconds:0.0} ms");
        Assert.True(writeTime < TimeSpan.FromMilliseconds(500), $"50 writes with the broker away took {writeTime.TotalMilliseconds:0} ms");
        await Poll.UntilAsync(
            () => _events.Events.Any(e => e.Contains("cannot publish", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10),
            "no 'cannot publish' event");
        Assert.Equal(50L, results.Counters()[0].Waiting);

        _broker.Restart();
        var back = Stopwatch.StartNew();

        Assert.True(
            await subscriber.WaitForAsync(m => m.Count >= 100, TimeSpan.FromSeconds(30)),
            $"received {subscriber.Messages.Count} of 100, not "
            + $"{string.Join(",", Enumerable.Range(0, 100).Except(subscriber.Messages.Select(m => (int)IdOf(m))))}; "
            + $"events: {string.Join(" | ", _events.Events)}; broker log: {KeepLog()}");
        output.WriteLine($"broker back to the 50 queued results received: {back.Elapsed.TotalMilliseconds:0} ms (retry-max 500 ms)");
        await Poll.UntilAsync(
            () => _events.Events.Any(e => e.Contains("publishing again", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(5),
            "no 'publishing again' event");
        await Task.Delay(300);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), subscriber.Messages.Select(IdOf));
        var counters = results.Counters()[0];
        Assert.Equal((100L, 0L, 0L), (counters.Written, counters.Waiting, counters.Dropped));
        Assert.True(counters.Failed >= 1);
        Assert.All(_events.Events, e => Assert.DoesNotContain(Password, e, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Results_that_find_the_queue_full_are_dropped_counted_and_reported_and_the_queued_ones_still_arrive()
    {
        await using var subscriber = await MqttResultSubscriber.ConnectAsync(_broker, "pipeline/jobs/cam-1/results");
        _broker.Stop();
        var settings = Settings() with { QueueCapacity = 10 };
        using (var results = ResultDestinations.Open(
            [$"mqtt://camera-board:{Password}@{_broker.Host}:{_broker.Port}"], "cam-1", new ResultContext(settings, _events.Report)))
        {
            for (var id = 0; id < 30; id++)
            {
                results.Write(Outcome(id));
            }

            Assert.Equal((20L, 10L), (results.Counters()[0].Dropped, results.Counters()[0].Waiting));
            var full = Assert.Single(_events.Events, e => e.Contains("queue of 10 results is full", StringComparison.Ordinal));
            Assert.Contains("dropped 1 more", full, StringComparison.Ordinal);

            _broker.Restart();
            Assert.True(
                await subscriber.WaitForAsync(m => m.Count >= 10, TimeSpan.FromSeconds(30)),
                $"received {subscriber.Messages.Count} of 10: {string.Join(",", subscriber.Messages.Select(IdOf))}; broker log {KeepLog()}");
        }

        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), subscriber.Messages.Select(IdOf));
    }

    [Fact]
    public async Task A_broker_that_refuses_the_credentials_is_reported_without_the_password_and_nothing_is_lost_from_the_queue()
    {
        using var results = Open($"mqtt://camera-board:wrong-{Password}@{_broker.Host}:{_broker.Port}", "cam-1");
        results.Write(Outcome(0));

        await Poll.UntilAsync(() => !_events.Events.IsEmpty, TimeSpan.FromSeconds(10), "no event");
        var refused = Assert.Single(_events.Events);
        Assert.Contains("cannot publish", refused, StringComparison.Ordinal);
        Assert.Contains("the broker refused the connection (NotAuthorized)", refused, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, refused, StringComparison.Ordinal);
        var counters = results.Counters()[0];
        Assert.Equal((0L, 1L), (counters.Written, counters.Waiting));
    }

    public void Dispose() => _broker.Dispose();

    private string KeepLog()
    {
        var kept = Path.Combine(Path.GetTempPath(), $"mosquitto-{Guid.NewGuid():N}.log");
        File.Copy(_broker.LogFile, kept);
        return kept;
    }

    private static MqttSettings Settings() =>
        MqttSettings.From(TestNodes.Config("pipeline.mqtt { retry-min = 100ms, retry-max = 500ms, drain-timeout = 5s }", Roles.Ingest));

    private ResultDestinationSet Open(string spec, string job) => ResultDestinations.Open([spec], job, new ResultContext(Settings(), _events.Report));
}
