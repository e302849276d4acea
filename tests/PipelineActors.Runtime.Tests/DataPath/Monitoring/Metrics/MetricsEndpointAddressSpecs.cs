using PipelineActors.Onnx;
using PipelineActors.Runtime.DataPath.Monitoring.Metrics;
using PipelineActors.Runtime.Tests.DataPath.Sources;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Monitoring.Metrics;

/// <summary>The unauthenticated metrics endpoint stays on this machine unless told otherwise (review S7).</summary>
public sealed class MetricsEndpointAddressSpecs
{
    [Fact]
    public async Task Without_an_address_the_endpoint_listens_on_loopback_only_and_answers_there()
    {
        var port = TestPorts.Free();
        using var endpoint = MetricsEndpoint.Start(port);

        Assert.Equal("127.0.0.1", SourceSafetySpecs.WaitForListener(port, TimeSpan.FromSeconds(5)));
        using var http = new HttpClient();
        var answer = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        Assert.True(answer.IsSuccessStatusCode, answer.StatusCode.ToString());
    }

    [Fact]
    public void An_address_given_is_the_one_bound_and_all_interfaces_only_when_asked()
    {
        var loopback = TestPorts.Free();
        var everywhere = TestPorts.Free();
        using var one = MetricsEndpoint.Start(loopback, "127.0.0.1");
        using var all = MetricsEndpoint.Start(everywhere, "0.0.0.0");

        Assert.Equal("127.0.0.1", SourceSafetySpecs.WaitForListener(loopback, TimeSpan.FromSeconds(5)));
        Assert.Equal("0.0.0.0", SourceSafetySpecs.WaitForListener(everywhere, TimeSpan.FromSeconds(5)));
    }

    [Theory]
    [InlineData("not an address")]
    [InlineData("http://0.0.0.0")]
    public void An_address_that_is_none_is_refused_in_one_sentence(string address)
    {
        var e = Assert.Throws<PipelineInputException>(() => MetricsEndpoint.Start(TestPorts.Free(), address));

        Assert.Contains($"'{address}' is not an IP address or host name", e.Message, StringComparison.Ordinal);
    }
}
