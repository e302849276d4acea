using System.Diagnostics;
using System.Net.Sockets;

namespace PipelineActors.TestSupport;

/// <summary>
/// A real Mosquitto broker (Debian package <c>mosquitto</c>) on 127.0.0.1 and a free port, in a folder of its own,
/// for tests that publish or subscribe; <see cref="Stop"/> and <see cref="Restart"/> take it away and bring it back
/// on the same port, with its persisted sessions (a subscriber's queued messages survive). Disposing stops it and
/// deletes the folder. Without Mosquitto installed, <see cref="Start"/> fails with how to install it.
/// </summary>
public sealed class MosquittoBroker : IDisposable
{
    private static readonly string[] Candidates = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"];
    private readonly string _folder;
    private readonly string _config;
    private readonly string _binary;
    private Process? _process;

    private MosquittoBroker(string binary, string folder, string config, int port, string? username, string? password)
    {
        _binary = binary;
        _folder = folder;
        _config = config;
        Port = port;
        Username = username;
        Password = password;
    }

    public string Host { get; } = "127.0.0.1";

    public int Port { get; }

    /// <summary>The one user the broker accepts, or null when it allows anonymous clients.</summary>
    public string? Username { get; }

    public string? Password { get; }

    /// <summary>The broker's log (connections, refusals), for a failing test's message.</summary>
    public string LogFile => Path.Combine(_folder, "mosquitto.log");

    /// <summary>Starts a broker; with a user and password it accepts only that user (a password file made by mosquitto_passwd).</summary>
    public static MosquittoBroker Start(string? username = null, string? password = null)
    {
        var binary = Candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("mosquitto is not installed; install it with: sudo apt-get install mosquitto mosquitto-clients");
        var folder = Directory.CreateTempSubdirectory("mosquitto-").FullName;
        var port = TestPorts.Free();
        var lines = new List<string>
        {
            $"listener {port} 127.0.0.1",
            "persistence true",
            $"persistence_location {folder}/",
            $"log_dest file {Path.Combine(folder, "mosquitto.log")}",
            "log_type all",
        };

        // Run as root, mosquitto would switch to the 'mosquitto' user, who cannot read this folder.
        if (Environment.UserName == "root")
        {
            lines.Add("user root");
        }

        if (username is null)
        {
            lines.Add("allow_anonymous true");
        }
        else
        {
            var passwords = Path.Combine(folder, "passwords");
            Run("mosquitto_passwd", "-b", "-c", passwords, username, password ?? string.Empty);
            lines.Add("allow_anonymous false");
            lines.Add($"password_file {passwords}");
        }

        var config = Path.Combine(folder, "mosquitto.conf");
        File.WriteAllLines(config, lines);
        var broker = new MosquittoBroker(binary, folder, config, port, username, password);
        broker.Restart();
        return broker;
    }

    /// <summary>Stops the broker as a service manager would (SIGTERM: it saves its sessions, then exits).</summary>
    public void Stop()
    {
        if (_process is null)
        {
            return;
        }

        if (!_process.HasExited)
        {
            Run("kill", "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (!_process.WaitForExit(10_000))
            {
                _process.Kill();
                _process.WaitForExit();
            }
        }

        _process.Dispose();
        _process = null;
    }

    /// <summary>Starts the broker again on the same port (or for the first time) and waits until it accepts connections.</summary>
    public void Restart()
    {
        Stop();
        var start = new ProcessStartInfo(_binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(_config);
        _process = Process.Start(start) ?? throw new InvalidOperationException($"{_binary} did not start");
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"mosquitto exited with code {_process.ExitCode} on port {Port}: {Log()}");
            }

            try
            {
                using var probe = new TcpClient();
                probe.Connect(Host, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(50);
            }
        }

        throw new InvalidOperationException($"mosquitto did not listen on {Host}:{Port} within 10 s: {Log()}");
    }

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A broker that has not quite let go of its files; the temp folder is cleaned later.
        }
    }

    private string Log() => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "(no log)";

    private static void Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start");
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} failed with code {process.ExitCode}: {error}");
        }
    }
}
