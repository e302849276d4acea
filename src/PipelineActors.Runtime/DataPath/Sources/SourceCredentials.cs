using System.Text.RegularExpressions;

namespace PipelineActors.Runtime.DataPath.Sources;

/// <summary>
/// Hides the user and password of camera URLs (<c>rtsp://user:pass@host/...</c>, <c>http(s)://user:pass@host/...</c>)
/// in any text: the source's id, log lines, events, result lines and what ffmpeg prints all carry
/// <c>rtsp://***@host/...</c>, and only ffmpeg's own arguments hold the real URL.
/// </summary>
public static partial class SourceCredentials
{
    /// <summary>What stands for the user and password.</summary>
    public const string Mask = "***";

    /// <summary>
    /// <paramref name="text"/> with every URL's user information replaced by <see cref="Mask"/>. The user information
    /// runs to the last '@' before the first '/' or white space, so a password holding an unescaped '@' is hidden whole.
    /// </summary>
    public static string Redact(string text) =>
        string.IsNullOrEmpty(text) || !text.Contains('@', StringComparison.Ordinal) ? text : UserInfo().Replace(text, "${scheme}" + Mask + "@");

    /// <summary>The user information of <paramref name="url"/> (<c>user:pass</c>), or null when it has none.</summary>
    public static string? UserInfoOf(string url)
    {
        var match = UserInfo().Match(url);
        return match.Success && match.Index == 0 && match.Groups["info"].Length > 0 ? match.Groups["info"].Value : null;
    }

    /// <summary>
    /// <paramref name="url"/> with each <c>${NAME}</c> in its user information replaced by that environment variable of
    /// this process, percent-encoded (so a password may hold '@', ':' or '/'): a job's spec, its registry and jobs.json
    /// then hold only the name, and the secret exists only on the ingest node that starts ffmpeg. A variable that is not
    /// set, or a reference outside the user information, is one sentence naming it.
    /// </summary>
    public static string ExpandEnvironment(string url, Func<string, string?>? variable = null)
    {
        if (!url.Contains("${", StringComparison.Ordinal))
        {
            return url;
        }

        variable ??= Environment.GetEnvironmentVariable;
        var match = UserInfo().Match(url);
        var info = match.Success && match.Index == 0 ? match.Groups["info"] : null;
        var outside = info is null ? url : url[..info.Index] + url[(info.Index + info.Length)..];
        if (outside.Contains("${", StringComparison.Ordinal))
        {
            throw new Onnx.PipelineInputException(
                $"Source '{Redact(url)}' refers to an environment variable outside its user:password part; only credentials come from "
                    + $"the ingest node's environment.");
        }

        var expanded = Reference().Replace(info!.Value, reference =>
        {
            var name = reference.Groups["name"].Value;
            var value = variable(name);
            return string.IsNullOrEmpty(value)
                ? throw new Onnx.PipelineInputException(
                    $"Source '{Redact(url)}' takes its credentials from environment variable {name}, which is not set on ingest node "
                        + $"{Environment.MachineName}; "
                    + "set it in that node's environment (its service unit) and submit the job again.")
                : Uri.EscapeDataString(value);
        });
        if (expanded.Contains("${", StringComparison.Ordinal))
        {
            throw new Onnx.PipelineInputException(
                $"Source '{Redact(url)}' has a '${{' that is not a reference such as ${{CAMERA_PASS}} (letters, digits and '_').");
        }

        return url[..info.Index] + expanded + url[(info.Index + info.Length)..];
    }

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex Reference();

    [GeneratedRegex(@"(?<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?<info>[^/\s]*)@")]
    private static partial Regex UserInfo();
}
