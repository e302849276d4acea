using PipelineActors.Onnx;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sources;
using PipelineActors.TestSupport;

namespace PipelineActors.Runtime.Tests.DataPath.Sources;

/// <summary>
/// A source spec may take its camera credentials from the ingest node's environment (<c>rtsp://user:${CAMERA_PASS}@host/</c>):
/// the spec, the registry and jobs.json hold only the variable's name; ffmpeg's arguments on the ingest node get the value.
/// </summary>
public sealed class SourceEnvironmentSpecs
{
    private static readonly Dictionary<string, string> Variables = new(StringComparer.Ordinal)
    {
        ["CAMERA_PASS"] = "p@ss:w/rd",
        ["CAMERA_USER"] = "door",
    };

    private static string? Lookup(string name) => Variables.GetValueOrDefault(name);

    [Fact]
    public void A_reference_in_the_user_information_is_expanded_percent_encoded_and_the_shown_form_holds_neither()
    {
        const string Spec = "rtsp://${CAMERA_USER}:${CAMERA_PASS}@10.0.0.7:8554/stream";

        Assert.Equal("rtsp://door:p%40ss%3Aw%2Frd@10.0.0.7:8554/stream", SourceCredentials.ExpandEnvironment(Spec, Lookup));
        Assert.Equal("rtsp://***@10.0.0.7:8554/stream", SourceCredentials.Redact(Spec));
        Assert.Equal("http://cam.local/feed.mjpg", SourceCredentials.ExpandEnvironment("http://cam.local/feed.mjpg", Lookup));
        Assert.Equal("rtsp://u:plain@h/s", SourceCredentials.ExpandEnvironment("rtsp://u:plain@h/s", Lookup));
    }

    [Fact]
    public void A_variable_not_set_on_the_ingest_node_is_one_sentence_naming_it_without_the_rest_of_the_credentials()
    {
        var error = Assert.Throws<PipelineInputException>(
            () => SourceCredentials.ExpandEnvironment("rtsp://door:${CAMERA_SECRET}@10.0.0.7/stream", Lookup));

        Assert.Contains("environment variable CAMERA_SECRET, which is not set on ingest node", error.Message, StringComparison.Ordinal);
        Assert.Contains("rtsp://***@10.0.0.7/stream", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("door", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_reference_outside_the_user_information_or_a_malformed_one_is_refused()
    {
        Assert.Contains("outside its user:password part", Assert.Throws<PipelineInputException>(
            () => SourceCredentials.ExpandEnvironment("rtsp://u:p@${CAMERA_HOST}/stream", Lookup)).Message, StringComparison.Ordinal);
        Assert.Contains("not a reference", Assert.Throws<PipelineInputException>(
            () => SourceCredentials.ExpandEnvironment("rtsp://u:${1BAD}@h/stream", Lookup)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parsing_a_camera_source_on_the_ingest_node_expands_it_and_a_missing_variable_fails_there_in_one_sentence()
    {
        const string Name = "PA_SOURCE_ENV_SPEC_UNSET";
        Environment.SetEnvironmentVariable(Name, null);
        var profile = ModelProfileFor();

        var error = Assert.Throws<PipelineInputException>(() => SourceSpec.Parse($"rtsp://door:${{{Name}}}@127.0.0.1:9/stream", profile));
        Assert.Contains($"environment variable {Name}", error.Message, StringComparison.Ordinal);
    }

    private static ModelProfile ModelProfileFor() =>
        ModelProfile.Parse(
            File.ReadAllText(RepositoryFiles.Model("blazeface-back-256.profile.json")), "the blazeface profile");
}
