using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace PipelineActors.Runtime.Hosting;

/// <summary>
/// Writes Akka's log to the file named by <c>pipeline.log-file</c> instead of the console, so an
/// interactive command shows its summary, not remoting chatter about a node it killed on purpose.
/// </summary>
public sealed class FileLogger : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private readonly StreamWriter? _writer;

    public FileLogger()
    {
        var path = Context.System.Settings.Config.GetString("pipeline.log-file");
        if (!string.IsNullOrEmpty(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            _writer = new StreamWriter(path, append: true) { AutoFlush = true };
        }

        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e => _writer?.WriteLine($"{e.Timestamp:O} {e.LogLevel()} {e.LogSource} {e.Message}{(e.Cause is null ? string.Empty : " " + e.Cause.Message)}"));
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
