using Akka.Configuration;
using PipelineActors.Onnx;
using PipelineActors.Runtime.ControlPath.Supervision;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.Hosting;

namespace PipelineActors.Runtime.Tests.Hosting;

/// <summary>The defaults come from reference.conf alone; a user's HOCON and the command line override them; bad values are refused.</summary>
public sealed class PipelineSettingsSpecs
{
    [Fact]
    public void The_defaults_are_those_written_in_reference_conf()
    {
        var settings = PipelineSettings.From(PipelineConfig.Build(new NodeOptions { Roles = [Roles.Worker] }));

        Assert.Equal(1, settings.IntraOpThreads);
        Assert.Equal(65536, settings.ChunkBytes);
        Assert.Equal(256000, settings.MaximumFrameSize);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), settings.Ingest.MinDeadline);
        Assert.Equal(4, settings.Ingest.MaxAttempts);
        Assert.Equal(2, settings.Ingest.MaxCrashes);
        // The ingest's own default (settings built in code, as tests do) agrees with reference.conf.
        Assert.Equal(new IngestSettings(1, TimeSpan.FromSeconds(1), 1, 4096).MaxCrashes, settings.Ingest.MaxCrashes);
        Assert.Equal(TimeSpan.FromSeconds(1), settings.Supervisor.RebalanceDelay);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.Supervisor.DeployTimeout);
        Assert.Equal(TimeSpan.FromMinutes(5), settings.Supervisor.Exclusion);
        Assert.Equal(settings.Supervisor, SupervisorSettings.From(PipelineConfig.Reference));
        Assert.Null(settings.LogFile);
        Assert.Equal(TimeSpan.Zero, settings.LinkDelay);
        Assert.EndsWith(Path.Combine("pipelineactors", "models"), settings.ModelCacheFolder, StringComparison.Ordinal);
        Assert.Equal(0, settings.CacheMaxBytes);
        Assert.Equal(Protocol.Serialization.WireLimits.Default, settings.Limits.Wire);
        Assert.Equal((1_000_000L, 64, TimeSpan.FromSeconds(30)),
            (settings.Limits.EpochStep, settings.Limits.PartialFramesPerSender, settings.Limits.PartialFrameTimeout));
    }

    [Fact]
    public void A_users_hocon_overrides_the_defaults_and_the_command_line_overrides_the_users_hocon()
    {
        var options = new NodeOptions
        {
            Roles = [Roles.Worker, Roles.Ingest],
            IntraOpThreads = 3,
            ExtraHocon = "pipeline.intra-op-threads = 2\npipeline.ingest.max-attempts = 7\npipeline.supervisor.deploy-timeout = 5s\n"
                + "pipeline.supervisor.exclusion = 90s\npipeline.cache.max-bytes = 2GiB",
        };

        var settings = PipelineSettings.From(PipelineConfig.Build(options));

        Assert.Equal(3, settings.IntraOpThreads);
        Assert.Equal(7, settings.Ingest.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.Supervisor.DeployTimeout);
        Assert.Equal(TimeSpan.FromSeconds(90), settings.Supervisor.Exclusion);
        Assert.Equal(2L << 30, settings.CacheMaxBytes);
    }

    [Theory]
    [InlineData("pipeline.chunk-bytes = 0", "pipeline.chunk-bytes")]
    [InlineData("pipeline.chunk-bytes = 300000", "maximum-frame-size")]
    [InlineData("pipeline.intra-op-threads = 0", "pipeline.intra-op-threads")]
    [InlineData("pipeline.ingest.min-deadline = 0s", "pipeline.ingest.min-deadline")]
    [InlineData("pipeline.ingest.max-attempts = 0", "pipeline.ingest.max-attempts")]
    [InlineData("pipeline.ingest.max-attempts = -3", "pipeline.ingest.max-attempts")]
    [InlineData("pipeline.ingest.max-attempts = four", "pipeline.ingest.max-attempts")]
    [InlineData("pipeline.ingest.min-deadline = -1s", "pipeline.ingest.min-deadline")]
    [InlineData("pipeline.ingest.min-deadline = soon", "pipeline.ingest.min-deadline")]
    [InlineData("pipeline.chunk-bytes = lots", "pipeline.chunk-bytes")]
    [InlineData("pipeline.supervisor.exclusion = 0s", "pipeline.supervisor.exclusion")]
    [InlineData("pipeline.supervisor.exclusion = -5m", "pipeline.supervisor.exclusion")]
    [InlineData("pipeline.supervisor.rebalance-delay = later", "pipeline.supervisor.rebalance-delay")]
    [InlineData("pipeline.ingest.max-crashes = -1", "pipeline.ingest.max-crashes")]
    [InlineData("pipeline.supervisor.deploy-timeout = 0s", "pipeline.supervisor.deploy-timeout")]
    [InlineData("pipeline.link-delay = -5ms", "pipeline.link-delay")]
    [InlineData("pipeline.link-delay = 2m", "pipeline.link-delay")]
    [InlineData("pipeline.cache.max-bytes = plenty", "pipeline.cache.max-bytes")]
    [InlineData("pipeline.cache.max-bytes = -1", "pipeline.cache.max-bytes")]
    [InlineData("pipeline.limits.frame-bytes = 12b", "pipeline.limits.frame-bytes")]
    [InlineData("pipeline.limits.frame-bytes = 3GiB", "pipeline.limits.frame-bytes")]
    [InlineData("pipeline.limits.tensors = 0", "pipeline.limits.tensors")]
    [InlineData("pipeline.limits.list-items = many", "pipeline.limits.list-items")]
    [InlineData("pipeline.limits.epoch-step = 0", "pipeline.limits.epoch-step")]
    [InlineData("pipeline.limits.partial-frames-per-sender = 0", "pipeline.limits.partial-frames-per-sender")]
    [InlineData("pipeline.limits.partial-frame-timeout = 0s", "pipeline.limits.partial-frame-timeout")]
    public void A_value_that_would_fail_inside_an_actor_is_refused_in_one_sentence_naming_the_key(string hocon, string named)
    {
        var config = PipelineConfig.Build(new NodeOptions { Roles = [Roles.Worker], ExtraHocon = hocon });

        var error = Assert.Throws<PipelineInputException>(() => PipelineSettings.From(config));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Raising_the_frame_size_makes_room_for_a_larger_chunk()
    {
        var config = PipelineConfig.Build(new NodeOptions
        {
            Roles = [Roles.Worker],
            ExtraHocon = "pipeline.chunk-bytes = 300000\nakka.remote.dot-netty.tcp.maximum-frame-size = 400000b",
        });

        Assert.Equal(300000, PipelineSettings.From(config).ChunkBytes);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    public void A_port_out_of_range_is_refused(int port) =>
        Assert.Contains(port.ToString(System.Globalization.CultureInfo.InvariantCulture), Assert.Throws<PipelineInputException>(
            () => PipelineConfig.Build(new NodeOptions { Roles = [Roles.Worker], Port = port })).Message, StringComparison.Ordinal);

    [Theory]
    [InlineData("/var/lib/pipeline node/models")]
    [InlineData("C:\\cache\\models")]
    [InlineData("a \"quoted\" # not a comment ${?HOME}")]
    public void Paths_with_spaces_backslashes_quotes_and_hashes_reach_the_settings_unchanged(string folder)
    {
        var settings = PipelineSettings.From(PipelineConfig.Build(new NodeOptions { Roles = [Roles.Worker], ModelCache = folder }));

        Assert.Equal(folder, settings.ModelCacheFolder);
    }

    [Fact]
    public void Quoted_hocon_strings_read_back_as_the_text_that_was_quoted()
    {
        const string text = "tab\tnew\nline \"q\" back\\slash \u0001 end";

        var config = ConfigurationFactory.ParseString($"value = {Hocon.Quote(text)}\nlist = {Hocon.List(["a,b", "c\"d"])}");

        Assert.Equal(text, config.GetString("value"));
        Assert.Equal(["a,b", "c\"d"], config.GetStringList("list"));
    }

    [Theory]
    [InlineData(20, 20_000)]
    [InlineData(12.5, 12_500)]
    [InlineData(0, 0)]
    public void A_link_delay_from_the_node_options_reaches_the_settings_to_the_microsecond(double ms, long microseconds)
    {
        var options = new NodeOptions { Roles = [Roles.Worker], LinkDelay = TimeSpan.FromMilliseconds(ms), ExtraHocon = "pipeline.link-delay = 3s" };

        var settings = PipelineSettings.From(PipelineConfig.Build(options));

        Assert.Equal(microseconds, (long)settings.LinkDelay.TotalMicroseconds);
    }
}
