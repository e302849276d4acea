using PipelineActors.Onnx;
using PipelineActors.Runtime.DataPath.Sink.Destinations;
using PipelineActors.Runtime.Hosting;
using PipelineActors.TestSupport;
using static PipelineActors.Runtime.DataPath.Sink.Destinations.ResultDestinations;

namespace PipelineActors.Runtime.Tests.DataPath.Sink.Destinations;

/// <summary>Result destination specs name files, stdout or MQTT topics; a spec that cannot be used is one sentence that shows no password.</summary>
public sealed class ResultDestinationsSpecs
{
    private static readonly MqttSettings Mqtt = MqttSettings.From(TestNodes.Config(
        "pipeline.mqtt { host = broker.plant, port = 1884, username = cam, password = s3cret, topic-prefix = \"plant/line-1/\" }", Roles.Ingest));

    [Fact]
    public void Paths_file_specs_stdout_and_mqtt_are_told_apart()
    {
        Assert.Equal(new FileSpec(Path.GetFullPath("out/r.jsonl")), Parse("out/r.jsonl", "cam-1", Mqtt));
        Assert.Equal(new FileSpec("/var/results/r.jsonl"), Parse("file:/var/results/r.jsonl", "cam-1", Mqtt));
        Assert.IsType<StdoutSpec>(Parse("-", "cam-1", Mqtt));
        Assert.IsType<StdoutSpec>(Parse("stdout", "cam-1", Mqtt));

        Assert.Equal(
            new MqttTarget("broker.plant", 1884, "cam", "s3cret", "plant/line-1/cam-1/results"), ((MqttSpec)Parse("mqtt", "cam-1", Mqtt)).Target);
        Assert.Equal(
            new MqttTarget("10.0.0.5", 1999, "u s", "p@ss:w", "plant/line-1/cam-1/results"),
            ((MqttSpec)Parse("mqtt://u%20s:p%40ss%3Aw@10.0.0.5:1999", "cam-1", Mqtt)).Target);
        Assert.Equal(
            new MqttTarget("10.0.0.5", DefaultMqttPort, null, null, "plant/line-1/cam-1/results"),
            ((MqttSpec)Parse("mqtt://10.0.0.5", "cam-1", Mqtt)).Target);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("file:", "names no file")]
    [InlineData("kafka://broker:9092", "not a known kind")]
    [InlineData("mqtt://user:hunter2@broker:1883/some/topic", "has a path")]
    [InlineData("mqtt://user:hunter2@:1883", "is not mqtt://")]
    [InlineData("mqtts://broker:8883", "not supported")]
    public void A_spec_that_cannot_be_used_is_one_sentence_without_the_password(string spec, string expected)
    {
        var error = Assert.Throws<PipelineInputException>(() => Parse(spec, "cam-1", Mqtt));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        Assert.Single(error.Message.Split(". ", StringSplitOptions.None));
    }

    [Theory]
    [InlineData("line/1")]
    [InlineData("cam+")]
    [InlineData("#")]
    public void A_job_name_that_cannot_be_part_of_a_topic_is_refused_for_mqtt(string job)
    {
        var error = Assert.Throws<PipelineInputException>(() => Parse("mqtt", job, Mqtt));
        Assert.Contains("cannot be part of an MQTT topic", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_file_twice_is_refused_before_anything_is_opened()
    {
        var folder = Directory.CreateTempSubdirectory("results-").FullName;
        try
        {
            var path = Path.Combine(folder, "r.jsonl");
            var error = Assert.Throws<PipelineInputException>(() => Open([path, $"file:{path}"], "cam-1", new ResultContext(Mqtt, _ => { })));
            Assert.Contains("named twice", error.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(path));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Mqtt_settings_come_from_configuration_are_checked_and_never_print_the_password()
    {
        Assert.Equal(("broker.plant", 1884, "plant/line-1"), (Mqtt.Host, Mqtt.Port, Mqtt.TopicPrefix));
        Assert.DoesNotContain("s3cret", Mqtt.ToString(), StringComparison.Ordinal);
        Assert.Contains("Password = (set)", Mqtt.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", new MqttTarget("h", 1, "cam", "s3cret", "t").ToString(), StringComparison.Ordinal);
        Assert.Equal("mqtt://u:***@host:1883", Redacted("mqtt://u:s3cret@host:1883"));

        var defaults = MqttSettings.From(TestNodes.Config(Roles.Ingest));
        Assert.Equal(
            ("127.0.0.1", 1883, (string?)null, "pipeline/jobs/cam-1/results"),
            (defaults.Host, defaults.Port, defaults.Password, defaults.TopicFor("cam-1")));

        var port = Assert.Throws<PipelineInputException>(() => MqttSettings.From(TestNodes.Config("pipeline.mqtt.port = 70000", Roles.Ingest)));
        Assert.Contains("pipeline.mqtt.port is 70000", port.Message, StringComparison.Ordinal);
        var prefix = Assert.Throws<PipelineInputException>(
            () => MqttSettings.From(TestNodes.Config("pipeline.mqtt.topic-prefix = \"a/#\"", Roles.Ingest)));
        Assert.Contains("topic-prefix", prefix.Message, StringComparison.Ordinal);
    }
}
