using System.Diagnostics;
using Xunit;

namespace PipelineActors.TestSupport;

/// <summary>Waits for what other threads make true (a cluster's membership, a broker's log), checking every 50 ms.</summary>
public static class Poll
{
    /// <summary>Returns once <paramref name="condition"/> holds; fails the test with <paramref name="failure"/> after <paramref
    /// name="timeout"/>.</summary>
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string failure)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < timeout, failure);
            await Task.Delay(50);
        }
    }
}
