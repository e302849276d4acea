using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Prometheus;

namespace PipelineActors.Runtime.DataPath.Monitoring.Metrics;

/// <summary>
/// An opt-in Prometheus scrape endpoint (<c>http://HOST:PORT/metrics</c>) for this process's
/// <see cref="PipelineMetrics"/>: a MeterListener copies every measurement of our meter into a
/// prometheus-net metric of the same name (counters, histograms, and gauges for up-down counters),
/// labelled by the measurement's tags. It has no authentication, so it binds 127.0.0.1 unless an address is given
/// (<c>--metrics-address</c>): a loopback cluster's metrics stay on the machine.
/// </summary>
public sealed class MetricsEndpoint : IDisposable
{
    private static readonly double[] MillisecondBuckets = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
    private readonly MetricServer _server;
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, Collector> _collectors = new();

    private MetricsEndpoint(MetricServer server)
    {
        _server = server;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PipelineMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>The address the endpoint binds when none is given.</summary>
    public const string DefaultAddress = "127.0.0.1";

    /// <summary>Serves <c>http://ADDRESS:PORT/metrics</c>; <paramref name="address"/> null or empty: <see cref="DefaultAddress"/>.</summary>
    public static MetricsEndpoint Start(int port, string? address = null)
    {
        var host = ListenHost(address);
        // Only our meter, through our bridge; prometheus-net's own meter adapter stays off.
        Prometheus.Metrics.ConfigureMeterAdapter(o => o.InstrumentFilterPredicate = _ => false);
        var server = new MetricServer(hostname: host, port: port);
        try
        {
            server.Start();
        }
        catch (System.Net.HttpListenerException e)
        {
            throw new Onnx.PipelineInputException(
                $"Cannot serve metrics on {host}:{port}: {e.Message.TrimEnd('.')}; give another --metrics-port or --metrics-address.");
        }

        return new MetricsEndpoint(server);
    }

    /// <summary>
    /// The host part of the listener's prefix: an IP address (IPv6 in brackets), a name, or <c>*</c> for every interface
    /// (0.0.0.0 and :: say the same: .NET's listener takes <c>*</c> for that and refuses 0.0.0.0 itself); one sentence
    /// for anything that is not an address.
    /// </summary>
    public static string ListenHost(string? address)
    {
        if (string.IsNullOrWhiteSpace(address))
        {
            return DefaultAddress;
        }

        var text = address.Trim();
        if (text is "*" or "+" or "0.0.0.0" or "::" or "[::]")
        {
            return "*";
        }

        if (System.Net.IPAddress.TryParse(text.Trim('[', ']'), out var ip))
        {
            return ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        }

        return Uri.CheckHostName(text) == UriHostNameType.Dns
            ? text
            : throw new Onnx.PipelineInputException(
                $"The metrics address '{address}' is not an IP address or host name; give one such as 127.0.0.1 or 0.0.0.0.");
    }

    public void Dispose()
    {
        _listener.Dispose();
        _server.Dispose();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var names = new string[tags.Length];
        var values = new string[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            names[i] = tags[i].Key;
            values[i] = tags[i].Value?.ToString() ?? string.Empty;
        }

        var collector = _collectors.GetOrAdd(instrument.Name, _ => instrument switch
        {
            Histogram<double> => Prometheus.Metrics.CreateHistogram(instrument.Name, instrument.Description ?? instrument.Name,
                new HistogramConfiguration { LabelNames = names, Buckets = MillisecondBuckets }),
            UpDownCounter<long> => Prometheus.Metrics.CreateGauge(instrument.Name, instrument.Description ?? instrument.Name, names),
            _ => (Collector)Prometheus.Metrics.CreateCounter(instrument.Name, instrument.Description ?? instrument.Name, names),
        });
        switch (collector)
        {
            case Prometheus.Histogram h:
                h.WithLabels(values).Observe(value);
                break;
            case Prometheus.Gauge g:
                g.WithLabels(values).Inc(value);
                break;
            case Prometheus.Counter c:
                c.WithLabels(values).Inc(value);
                break;
        }
    }
}
