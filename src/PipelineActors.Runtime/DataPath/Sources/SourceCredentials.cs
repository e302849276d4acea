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

    [GeneratedRegex(@"(?<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?<info>[^/\s]*)@")]
    private static partial Regex UserInfo();
}
