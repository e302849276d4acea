using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace PipelineActors.Runtime.Hosting;

/// <summary>
/// Writes Akka's log to the file named by <c>pipeline.log-file</c> instead of the console, so an
/// interactive command shows its summary, not remoting chatter about a node it killed on purpose. The file is opened
/// without following a link (a link planted in its place is refused, review S4) and made 0600 if it is new.
/// </summary>
public sealed class FileLogger : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private readonly StreamWriter? _writer;

    public FileLogger()
    {
        var path = Context.System.Settings.Config.GetString("pipeline.log-file");
        if (!string.IsNullOrEmpty(path))
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            if (!Directory.Exists(folder))
            {
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(folder);
                }
                else
                {
                    Directory.CreateDirectory(folder, PrivateFiles.OwnerOnly);
                }
            }

            _writer = new StreamWriter(PrivateFiles.OpenAppend(path)) { AutoFlush = true };
        }

        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e => _writer?.WriteLine($"{e.Timestamp:O} {e.LogLevel()} {e.LogSource} "
            + $"{e.Message}{(e.Cause is null ? string.Empty : " " + e.Cause.Message)}"));
    }

    protected override void PostStop() => _writer?.Dispose();
}

/// <summary>Akka's logger of last resort (start-up and shutdown) when the log goes to a file: silent, so command output stays clean.</summary>
public sealed class SilentStdoutLogger : MinimalLogger
{
    protected override void Log(object message)
    {
    }
}
