namespace PipelineActors.Planning;

/// <summary>One block of the model's chain: its time on each device type and the bytes its output puts on the wire.</summary>
/// <param name="ActivationBytes">Working memory while the block runs; without it, what it reads plus what it writes.</param>
/// <param name="Codecs">Codecs its output may cross a hop with instead of <see cref="OutputBytes"/> exact (table <c>codecs</c>).</param>
public sealed record PlanBlock(
    string Name,
    long OutputBytes,
    IReadOnlyDictionary<string, double> Ms,
    long WeightBytes = 0,
    long? ActivationBytes = null,
    IReadOnlyList<PlanCodec>? Codecs = null);

/// <summary>
/// A codec a block's output may cross a hop with: its bytes a frame, its encode and decode time a frame, and the model's
/// fidelity with this cut coded (<c>pipeline fidelity</c>'s figure; 1 for a lossless codec).
/// </summary>
public sealed record PlanCodec(string Name, long OutputBytes, double EncodeMs = 0, double DecodeMs = 0, double Fidelity = 1);

/// <summary>
/// What a hop costs with the codec it crosses with: the bytes a frame, the link's busy time for them, and one frame's time on
/// the hop (link latency, encode, transfer and decode).
/// </summary>
public readonly record struct HopPrice(string Codec, long Bytes, double TransferMs, double HopMs);

/// <summary>A device that may host a stage; exactly one is the frame source.</summary>
/// <param name="MemoryMiB">What a stage may use on it; null for no limit.</param>
public sealed record PlanDevice(string Name, string Type, bool IsSource = false, double? MemoryMiB = null);

/// <summary>Bandwidth and one-way latency of a link.</summary>
public readonly record struct LinkFigures(double Mbps, double LatencyMs)
{
    /// <summary>How long <paramref name="bytes"/> keep the link busy: <c>b * 8 / (mbps * 1000)</c> ms.</summary>
    public double TransferMs(long bytes) => bytes * 8.0 / (Mbps * 1000.0);

    /// <summary>One frame's time on the hop: <c>latencyMs + b * 8 / (mbps * 1000)</c> ms.</summary>
    public double HopMs(long bytes) => LatencyMs + TransferMs(bytes);
}

/// <summary>A directional link from one device to another.</summary>
public sealed record PlanLink(string From, string To, double Mbps, double LatencyMs);

/// <summary>
/// What the planner plans for: a chain of blocks, devices with one source, directional links, an
/// optional default link for pairs not listed and an optional sink that receives the results.
/// Built by <see cref="PlanTable"/> (which checks it) or directly by code and tests.
/// </summary>
public sealed class PlanProblem
{
    private readonly LinkFigures?[,] _links;
    private readonly double[][] _cumulativeMs;
    private readonly long[] _cumulativeWeights;

    public PlanProblem(
        long inputBytes,
        IReadOnlyList<PlanBlock> blocks,
        IReadOnlyList<PlanDevice> devices,
        IReadOnlyList<PlanLink> links,
        LinkFigures? defaultLink = null,
        string? sink = null,
        string? model = null,
        double? fidelityBudget = null)
    {
        if (blocks.Count == 0 || devices.Count == 0)
        {
            throw new ArgumentException("A plan problem needs at least one block and one device.");
        }

        Model = model;
        FidelityBudget = fidelityBudget;
        InputBytes = inputBytes;
        Blocks = blocks;
        Devices = devices;
        Links = links;
        DefaultLink = defaultLink;
        Sink = sink;
        SourceIndex = devices.Select((d, i) => d.IsSource ? i : -1).Single(i => i >= 0);
        SinkIndex = sink is null ? -1 : IndexOf(sink);

        // Cut k sits before block k: cut 0 carries the frame, cut k the output of block k - 1.
        CutBytes = [inputBytes, .. blocks.Select(b => b.OutputBytes)];

        _links = new LinkFigures?[devices.Count, devices.Count];
        for (var a = 0; a < devices.Count; a++)
        {
            for (var b = 0; b < devices.Count; b++)
            {
                _links[a, b] = a == b ? null : defaultLink;
            }
        }

        foreach (var link in links)
        {
            _links[IndexOf(link.From), IndexOf(link.To)] = new LinkFigures(link.Mbps, link.LatencyMs);
        }

        _cumulativeMs = devices.Select(d =>
        {
            var sums = new double[blocks.Count + 1];
            for (var k = 0; k < blocks.Count; k++)
            {
                sums[k + 1] = sums[k] + blocks[k].Ms[d.Type];
            }

            return sums;
        }).ToArray();
        _cumulativeWeights = new long[blocks.Count + 1];
        for (var k = 0; k < blocks.Count; k++)
        {
            _cumulativeWeights[k + 1] = _cumulativeWeights[k] + blocks[k].WeightBytes;
        }
    }

    public string? Model { get; }

    /// <summary>The same problem held to another fidelity budget (<c>pipeline plan --fidelity</c>).</summary>
    public PlanProblem WithFidelity(double? budget) => new(InputBytes, Blocks, Devices, Links, DefaultLink, Sink, Model, budget);

    /// <summary>
    /// The least fidelity a hop's codec may have; null: every hop carries its exact bytes (the blocks' codecs are not used).
    /// </summary>
    public double? FidelityBudget { get; }

    public long InputBytes { get; }

    public IReadOnlyList<PlanBlock> Blocks { get; }

    public IReadOnlyList<PlanDevice> Devices { get; }

    public IReadOnlyList<PlanLink> Links { get; }

    public LinkFigures? DefaultLink { get; }

    public string? Sink { get; }

    public int SourceIndex { get; }

    /// <summary>The device results must reach, or -1 when they stay on the last stage's device.</summary>
    public int SinkIndex { get; }

    /// <summary>Bytes on the wire at each cut: index 0 is the input frame, index k the output of block k - 1.</summary>
    public IReadOnlyList<long> CutBytes { get; }

    public int BlockCount => Blocks.Count;

    public int DeviceCount => Devices.Count;

    public int IndexOf(string device)
    {
        for (var i = 0; i < Devices.Count; i++)
        {
            if (Devices[i].Name == device)
            {
                return i;
            }
        }

        throw new ArgumentException($"No device named '{device}'.", nameof(device));
    }

    /// <summary>The link from one device to another: the listed one, else the default, else null (not a hop).</summary>
    public LinkFigures? Link(int fromDevice, int toDevice) => _links[fromDevice, toDevice];

    /// <summary>
    /// A hop at cut <paramref name="cut"/> from one device to another, priced with the codec a frame spends least time on it
    /// with (link busy time plus encode plus decode; as the runtime chooses a hop's codec within a budget): the exact bytes,
    /// or, with a <see cref="FidelityBudget"/>, a codec of the block before the cut whose fidelity is within it. Null
    /// where there is no link. The period counts the link's busy time; a frame's latency counts encode and decode too.
    /// </summary>
    public HopPrice? Hop(int fromDevice, int toDevice, int cut)
    {
        if (Link(fromDevice, toDevice) is not { } link)
        {
            return null;
        }

        var bytes = CutBytes[cut];
        var best = new HopPrice("exact", bytes, link.TransferMs(bytes), link.HopMs(bytes));
        if (FidelityBudget is not { } budget || cut == 0 || Blocks[cut - 1].Codecs is not { Count: > 0 } codecs)
        {
            return best;
        }

        var bestTime = best.TransferMs;
        foreach (var codec in codecs)
        {
            var transfer = link.TransferMs(codec.OutputBytes);
            var time = transfer + codec.EncodeMs + codec.DecodeMs;
            if (codec.Fidelity >= budget && time < bestTime)
            {
                bestTime = time;
                best = new HopPrice(codec.Name, codec.OutputBytes, transfer, link.LatencyMs + time);
            }
        }

        return best;
    }

    /// <summary>Milliseconds of blocks [first, end) on a device.</summary>
    public double ComputeMs(int device, int first, int end) => _cumulativeMs[device][end] - _cumulativeMs[device][first];

    /// <summary>Milliseconds of the whole model on a device.</summary>
    public double WholeModelMs(int device) => _cumulativeMs[device][BlockCount];

    /// <summary>
    /// Memory blocks [first, end) need on one device: their weights plus the largest block's activations
    /// (its <c>activationBytes</c>, or what it reads plus what it writes), since blocks run one after another.
    /// </summary>
    public long StageBytes(int first, int end)
    {
        if (end <= first)
        {
            return 0;
        }

        long activations = 0;
        for (var k = first; k < end; k++)
        {
            activations = Math.Max(activations, ActivationBytes(k));
        }

        return _cumulativeWeights[end] - _cumulativeWeights[first] + activations;
    }

    public long ActivationBytes(int block) => Blocks[block].ActivationBytes ?? CutBytes[block] + CutBytes[block + 1];

    /// <summary>Whether blocks [first, end) fit a device's memory.</summary>
    public bool Fits(int device, int first, int end) =>
        Devices[device].MemoryMiB is not { } mib || StageBytes(first, end) <= mib * 1024 * 1024;
}
