using System.Text;
using PipelineActors.Onnx.Cost;
using PipelineActors.Onnx.Zoo;
using Xunit.Abstractions;

namespace PipelineActors.Onnx.Tests.Cost;

/// <summary>Per-node times from ONNX Runtime's profiler, traced back through the optimizer's renaming to the model's nodes.</summary>
public class NodeTimesSpecs(ITestOutputHelper output)
{
    [Fact]
    public void The_node_times_of_resnet18_add_up_to_the_whole_model_and_sit_on_its_convolutions()
    {
        var analysis = ModelAnalysis.Analyze(ModelZoo.Build("resnet18"));

        var times = NodeTimes.Measure(analysis, intraOpThreads: 1, runs: 9);

        Assert.NotNull(times);
        var sum = times.SumMedianMs(0, analysis.NodeCount);
        output.WriteLine($"whole model {times.WholeModelMs:0.00} ms, nodes {sum:0.00} ms, traced {times.AttributedShare:P1}");
        Assert.True(times.AttributedShare >= 0.95, $"only {times.AttributedShare:P1} of the kernel time traced to nodes");
        // Kernel times leave out the gaps between kernels, and other tests running at once stretch a run's wall time
        // more than its kernels (seen: 47.6 of 129.8 ms at a load of 30 on 2 cores): the sum may fall well short of the
        // whole, but never exceeds it by much (timing segments as models of their own did, by 25 % on VGG-16).
        Assert.InRange(sum, times.WholeModelMs * 0.25, times.WholeModelMs * 1.1);

        // Every convolution costs time, either on itself or on the ReLU or Add fused into it.
        var order = analysis.Graph.Order;
        for (var position = 0; position < order.Count; position++)
        {
            if (order[position].OpType == "Conv")
            {
                var fused = Enumerable.Range(position, Math.Min(4, order.Count - position)).Sum(times.MedianMs);
                Assert.True(fused > 0, $"{order[position].Name}: no time on it or the nodes right after it");
            }
        }

        // The classifier is a kernel of its own, and the convolutions outweigh it many times over.
        var classifier = times.MedianMs(order.ToList().FindIndex(n => n.OpType == "Gemm"));
        Assert.InRange(classifier, 1e-6, sum / 20);
    }

    [Fact]
    public void Renamed_kernels_are_traced_to_their_nodes_and_an_untraceable_profile_is_refused()
    {
        var analysis = ModelAnalysis.Analyze(ModelZoo.Build("tinynet"));
        var order = analysis.Graph.Order.Select(n => n.Name).ToList();
        var convPosition = order.IndexOf("stem.conv");
        var reluPosition = order.IndexOf("stem.relu");
        var addPosition = order.IndexOf("block.add");

        // One warm-up run and three timed ones, as the runtime writes them (Chrome trace events).
        var events = new StringBuilder("[");
        void Event(string category, string name, long ts, long dur) =>
            events.Append(events.Length > 1 ? "," : "")
                .Append($$"""{"cat":"{{category}}","pid":1,"tid":1,"dur":{{dur}},"ts":{{ts}},"ph":"X","name":"{{name}}","args":{} }""");
        foreach (var (start, scale) in new[] { (0L, 9L), (1000L, 1L), (2000L, 3L), (3000L, 2L) })
        {
            Event("Session", "model_run", start, 900);
            Event("Node", "stem.relu.output_nchwc_kernel_time", start + 10, 100 * scale); // Conv+BN+ReLU in the blocked layout
            Event("Node", "fused block.add_kernel_time", start + 200, 20 * scale); // named after the node, with a prefix
            Event("Node", "stem.conv_kernel_time", start + 300, 10 * scale); // the plain name
            Event("Node", "ReorderInput_kernel_time", start + 400, 5 * scale); // inserted by the optimizer: no node
        }

        var profile = Encoding.UTF8.GetBytes(events.Append(']').ToString());
        var times = NodeTimes.Parse(analysis, profile, warmUp: 1, runs: 3, wholeModelMs: 1);

        Assert.NotNull(times);
        Assert.Equal(0.2, times.MedianMs(reluPosition), 6); // median of 0.1, 0.3 and 0.2 ms: the warm-up run (0.9) is left out
        Assert.Equal(0.04, times.MedianMs(addPosition), 6);
        Assert.Equal(0.02, times.MedianMs(convPosition), 6);
        Assert.Equal(780.0 / 810, times.AttributedShare, 6);

        var strange = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(profile).Replace("stem.relu.output_nchwc", "node_17", StringComparison.Ordinal));
        Assert.Null(NodeTimes.Parse(analysis, strange, warmUp: 1, runs: 3, wholeModelMs: 1)); // 180 of 810 traced
    }
}
