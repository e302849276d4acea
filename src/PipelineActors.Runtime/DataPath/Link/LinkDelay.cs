using System.Diagnostics;
using System.Threading.Channels;
using Akka.Actor;

namespace PipelineActors.Runtime.DataPath.Link;

/// <summary>
/// A fixed one-way delay on what a node sends to remote actors (<c>pipeline.link-delay</c>): netem is missing on the machines
/// that emulate links, so the application adds the latency instead of the kernel.
/// </summary>
/// <remarks>
/// Messages wait here, off the sender's thread, so a delay adds latency without taking compute time from the stage; one
/// reader releases them first in, first out, and the delay is the same for all, so their order is kept.
/// </remarks>
public sealed class LinkDelay : IDisposable
{
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly long _delayTicks;
    private readonly Task _pump;

    public LinkDelay(TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(delay), delay, "A link delay must be positive; without one, send directly.");
        }

        Delay = delay;
        _delayTicks = (long)(delay.TotalSeconds * Stopwatch.Frequency);
        _pump = Task.Run(PumpAsync);
    }

    public TimeSpan Delay { get; }

    /// <summary>Hands <paramref name="messages"/> to Akka, in order, once the delay has passed.</summary>
    public void Send(IActorRef target, IReadOnlyList<object> messages, IActorRef sender) =>
        _queue.Writer.TryWrite(new Pending(Stopwatch.GetTimestamp() + _delayTicks, target, messages, sender));

    /// <summary>Takes no more messages; those already waiting still go out when their time comes.</summary>
    public void Dispose() => _queue.Writer.TryComplete();

    /// <summary>Waits until every message taken has gone out (tests).</summary>
    public Task Drained => _pump;

    private async Task PumpAsync()
    {
        await foreach (var pending in _queue.Reader.ReadAllAsync())
        {
            var wait = pending.Due - Stopwatch.GetTimestamp();
            if (wait > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds(wait / (double)Stopwatch.Frequency));
            }

            foreach (var message in pending.Messages)
            {
                pending.Target.Tell(message, pending.Sender);
            }
        }
    }

    private sealed record Pending(long Due, IActorRef Target, IReadOnlyList<object> Messages, IActorRef Sender);
}
