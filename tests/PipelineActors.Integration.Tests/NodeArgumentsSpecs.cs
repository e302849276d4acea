using Microsoft.Extensions.Configuration;
using PipelineActors.Node;
using PipelineActors.Onnx;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;

namespace PipelineActors.Integration.Tests;

/// <summary>pipeline-node's options from the command line, the environment and the --config file, with the checks each gets.</summary>
public sealed class NodeArgumentsSpecs : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"pipeline-node-args-{Guid.NewGuid():N}.conf");

    [Fact]
    public void The_config_files_host_port_public_hostname_and_seeds_stand_in_for_options_not_given()
    {
        File.WriteAllText(_file, """
            akka.remote.dot-netty.tcp { hostname = "0.0.0.0", port = 4053, public-hostname = "10.0.0.10" }
            akka.cluster.seed-nodes = ["akka.tcp://pipeline@10.0.0.10:4053"]
            """);

        var options = NodeArguments.From(Arguments(("config", _file)));

        Assert.Equal(("0.0.0.0", 4053, "10.0.0.10"), (options.Host, options.Port, options.PublicHostname));
        Assert.Equal(["akka.tcp://pipeline@10.0.0.10:4053"], options.Seeds);
        var config = PipelineConfig.Build(options);
        Assert.Equal(4053, config.GetInt("akka.remote.dot-netty.tcp.port"));
        Assert.Equal(["akka.tcp://pipeline@10.0.0.10:4053"], config.GetStringList("akka.cluster.seed-nodes"));
    }

    [Fact]
    public void The_command_line_wins_over_the_config_file()
    {
        File.WriteAllText(_file, "akka.remote.dot-netty.tcp.port = 4053\nakka.cluster.seed-nodes = [\"akka.tcp://pipeline@10.0.0.10:4053\"]");

        var options = NodeArguments.From(Arguments(("config", _file), ("port", "4060"), ("seeds", "akka.tcp://pipeline@10.0.0.11:4060")));

        Assert.Equal(4060, options.Port);
        Assert.Equal(["akka.tcp://pipeline@10.0.0.11:4060"], options.Seeds);
    }

    [Theory]
    [InlineData("akka.remote.dot-netty.tcp.port = 4O53\nakka.cluster.seed-nodes = [\"akka.tcp://pipeline@10.0.0.10:4053\"]", "tcp.port")]
    [InlineData("akka.cluster.seed-nodes = []", "No seed nodes")]
    [InlineData("akka.cluster.seed-nodes = [\"10.0.0.10:4053\"]", "not a node address")]
    [InlineData("a = ${nothing.here}", "not valid HOCON")] // Akka's parser lets unclosed braces and strings pass; not this
    public void A_bad_value_in_the_config_file_is_one_sentence_naming_it(string hocon, string named)
    {
        File.WriteAllText(_file, hocon);

        var error = Assert.Throws<PipelineInputException>(() => NodeArguments.From(Arguments(("config", _file))));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData(",")]
    [InlineData(" ")]
    public void Seeds_that_are_only_separators_are_no_seeds(string seeds)
    {
        var error = Assert.Throws<PipelineInputException>(() => NodeArguments.From(Arguments(("seeds", seeds))));

        Assert.Contains("No seed nodes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_TLS_folder_comes_from_the_config_file_and_the_command_line_wins()
    {
        using var certificates = new TestCertificates();
        var (fromFile, fromCommandLine) = (certificates.Issue("worker"), certificates.Issue("worker", "ingest"));
        File.WriteAllText(_file, $"pipeline.tls.folder = \"{fromFile}\"\nakka.cluster.seed-nodes = [\"akka.ssl.tcp://pipeline@10.0.0.10:4053\"]");

        var file = Arguments(("config", _file));
        using var tls = NodeArguments.Tls(file, NodeArguments.From(file));
        var both = Arguments(("config", _file), ("tls", fromCommandLine));
        using var given = NodeArguments.Tls(both, NodeArguments.From(both));

        Assert.Equal(["worker"], tls!.Roles);
        Assert.Equal(["ingest", "worker"], given!.Roles.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Insecure_is_plain_TCP_and_neither_it_nor_a_TLS_folder_is_one_sentence()
    {
        var insecure = Arguments(("insecure", "true"), ("seeds", "akka.tcp://pipeline@10.0.0.10:4053"));
        var neither = Arguments(("seeds", "akka.ssl.tcp://pipeline@10.0.0.10:4053"));

        Assert.Null(NodeArguments.Tls(insecure, NodeArguments.From(insecure)));
        var error = Assert.Throws<PipelineInputException>(() => NodeArguments.Tls(neither, NodeArguments.From(neither)));
        Assert.Contains("pipeline certs init", error.Message, StringComparison.Ordinal);
        Assert.Equal(["--insecure=true", "--port", "1"], NodeArguments.NormaliseSwitches(["--insecure", "--port", "1"]));
    }

    public void Dispose()
    {
        if (File.Exists(_file))
        {
            File.Delete(_file);
        }
    }

    private static IConfiguration Arguments(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();
}
