using PipelineActors.Onnx;
using PipelineActors.Onnx.Stages;
using PipelineActors.Onnx.Zoo;

namespace PipelineActors.Harness.Tests;

/// <summary>Segment times measured on a device: the cache key, the cache file, the segment bounds and a block's price.</summary>
public sealed class DeviceStageTimesSpecs : IDisposable
{
    private static readonly DeviceTimesKey Key = new(new string('a', 64), 0.4, 1, [0, 10, 20, 30], "declared", "Xeon x2");

    private readonly string _folder = Directory.CreateTempSubdirectory("device-times-specs-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Equal_keys_name_the_same_file_and_every_field_changes_the_name()
    {
        Assert.Equal(Key.FileName, (Key with { Bounds = [0, 10, 20, 30] }).FileName);
        Assert.StartsWith("aaaaaaaaaaaa-", Key.FileName, StringComparison.Ordinal);
        var others = new[]
        {
            Key with { ModelSha256 = new string('b', 64) },
            Key with { Cpu = 1.0 },
            Key with { Cpu = null },
            Key with { IntraOpThreads = 2 },
            Key with { Bounds = [0, 10, 30] },
            Key with { InputSizes = "x=1,3,320,320" },
            Key with { Machine = "EPYC x2" },
        };
        Assert.Equal(others.Length + 1, others.Select(k => k.FileName).Append(Key.FileName).Distinct().Count());
    }

    [Fact]
    public void Input_sizes_give_the_same_key_in_any_order()
    {
        var a = DeviceTimesKey.DescribeInputSizes(new Dictionary<string, long[]> { ["x"] = [1, 3, 64, 64], ["y"] = [2] });
        var b = DeviceTimesKey.DescribeInputSizes(new Dictionary<string, long[]> { ["y"] = [2], ["x"] = [1, 3, 64, 64] });

        Assert.Equal("x=1,3,64,64 y=2", a);
        Assert.Equal(a, b);
        Assert.Equal("declared", DeviceTimesKey.DescribeInputSizes(null));
    }

    [Fact]
    public void The_cache_returns_what_was_written_for_that_key_only()
    {
        var cache = new DeviceTimesCache(_folder);
        Assert.Null(cache.TryRead(Key));

        cache.Write(Key, [12.5, 30, 7.25]);

        Assert.Equal([12.5, 30, 7.25], cache.TryRead(Key));
        Assert.Null(cache.TryRead(Key with { Cpu = 1.0 }));
    }

    [Fact]
    public void A_damaged_or_foreign_cache_file_is_measured_again()
    {
        var cache = new DeviceTimesCache(_folder);
        var other = Key with { Cpu = 1.0 };
        cache.Write(other, [1, 2, 3]);

        // Another key's entry under this key's name (a hash collision or a copied file) is not trusted.
        File.Copy(Path.Combine(_folder, other.FileName), Path.Combine(_folder, Key.FileName));
        Assert.Null(cache.TryRead(Key));

        File.WriteAllText(Path.Combine(_folder, Key.FileName), "{ not json");
        Assert.Null(cache.TryRead(Key));

        // The wrong number of segments for the bounds, or a time that is not a positive number.
        cache.Write(Key, [1, 2]);
        Assert.Null(cache.TryRead(Key));
        cache.Write(Key, [1, 0, 3]);
        Assert.Null(cache.TryRead(Key));
    }

    [Fact]
    public void Bounds_are_the_blocks_when_few_and_about_equal_cost_segments_when_many()
    {
        int[] few = [0, 5, 9, 20];
        Assert.Equal(few, DeviceStageTimes.ChooseBounds(few, (a, b) => b - a, maxSegments: 8));

        // 12 blocks of 10 nodes, each node costs 1: 4 segments of 3 blocks.
        var points = Enumerable.Range(0, 13).Select(k => k * 10).ToList();
        Assert.Equal([0, 30, 60, 90, 120], DeviceStageTimes.ChooseBounds(points, (a, b) => b - a, maxSegments: 4));

        // One expensive first block: it is a segment alone, the rest share the others; never more segments than asked.
        double Cost(int a, int b) => Enumerable.Range(a, b - a).Sum(n => n < 10 ? 50.0 : 1.0);
        var bounds = DeviceStageTimes.ChooseBounds(points, Cost, maxSegments: 4);
        Assert.Equal(10, bounds[1]);
        Assert.Equal(5, bounds.Count);
        Assert.Equal(120, bounds[^1]);
        Assert.All(bounds, b => Assert.Contains(b, points));
        Assert.True(bounds.Zip(bounds.Skip(1)).All(p => p.First < p.Second));
    }

    [Fact]
    public void A_block_costs_its_share_of_its_measured_segment()
    {
        var measured = new SegmentTimes(1, [0, 10, 30], [40, 100]);
        double Share(int a, int b) => b - a;

        Assert.Equal(40, DevicePlanning.BlockMs(measured, 0, 10, Share), 9);
        Assert.Equal(25, DevicePlanning.BlockMs(measured, 10, 15, Share), 9);
        Assert.Equal(75, DevicePlanning.BlockMs(measured, 15, 30, Share), 9);
        Assert.Throws<ArgumentException>(() => DevicePlanning.BlockMs(measured, 5, 15, Share));
    }

    [Fact]
    public void The_segment_loop_times_every_segment_file_in_order()
    {
        var model = Path.Combine(_folder, "tinynet.onnx");
        OnnxModelFile.Save(ModelZoo.Build("tinynet"), model);
        var analysis = ModelAnalysis.Analyze(OnnxModelFile.Load(model));
        var cut = analysis.Cuts.Select(c => c.Position).First(p => p > 0 && p < analysis.NodeCount);
        var segments = Directory.CreateDirectory(Path.Combine(_folder, "segments")).FullName;
        File.WriteAllBytes(Path.Combine(segments, "segment-00.onnx"),
            Google.Protobuf.MessageExtensions.ToByteArray(StageExtractor.ExtractRange(analysis, 0, cut).Model));
        File.WriteAllBytes(Path.Combine(segments, "segment-01.onnx"),
            Google.Protobuf.MessageExtensions.ToByteArray(StageExtractor.ExtractRange(analysis, cut, analysis.NodeCount).Model));

        var results = SegmentLoop.Run(segments, threads: 1, seconds: 0.1);

        Assert.Equal(["segment-00.onnx", "segment-01.onnx"], results.Select(r => r.File));
        Assert.All(results, r => Assert.True(r.MedianMs > 0 && r.Runs >= 3, $"{r.File}: {r.MedianMs} ms in {r.Runs} runs"));
    }
}
