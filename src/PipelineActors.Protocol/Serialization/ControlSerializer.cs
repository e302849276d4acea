using System.Text;
using Akka.Actor;
using Akka.Serialization;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// The wire format of every <see cref="IControlMessage"/> (control, files, monitoring): positional
/// <see cref="BinaryWriter"/> fields after the version byte. These travel seconds apart, so clarity beats copies here;
/// Akka falls back to JSON silently for unbound types, so a test checks the binding of every message type.
/// </summary>
public sealed class ControlSerializer : SerializerWithStringManifest
{
    public const int Id = 432;

    private const string JobManifest = "PJ";
    private const string JobAcceptedManifest = "JA";
    private const string JobEndedManifest = "JE";
    private const string PlanAcknowledgedManifest = "PK";
    private const string WorkerStatusManifest = "WS";
    private const string PrefetchManifest = "PF";
    private const string DeployManifest = "DS";
    private const string DeployedManifest = "SD";
    private const string DeployFailedManifest = "SF";
    private const string WireManifest = "WI";
    private const string WiredManifest = "SW";
    private const string StopManifest = "SS";
    private const string PlanManifest = "PA";
    private const string FetchChunkManifest = "FX";
    private const string FileChunkManifest = "FK";
    private const string UnavailableManifest = "FU";
    private const string GetStatsManifest = "GS";
    private const string StatsManifest = "ST";
    private const string StageReportManifest = "SR";
    private const string PipelineReportManifest = "PR";
    private const string EventManifest = "PE";

    private readonly WireLimits _limits;

    public ControlSerializer(ExtendedActorSystem system)
        : base(system)
    {
        _limits = WireLimits.From(system.Settings.Config);
    }

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        PipelineJob => JobManifest,
        JobAccepted => JobAcceptedManifest,
        JobEnded => JobEndedManifest,
        PlanAcknowledged => PlanAcknowledgedManifest,
        WorkerStatus => WorkerStatusManifest,
        PrefetchFiles => PrefetchManifest,
        DeployStage => DeployManifest,
        StageDeployed => DeployedManifest,
        StageDeployFailed => DeployFailedManifest,
        WireStage => WireManifest,
        StageWired => WiredManifest,
        StopStage => StopManifest,
        PlanActivated => PlanManifest,
        FetchFileChunk => FetchChunkManifest,
        FileChunk => FileChunkManifest,
        FileUnavailable => UnavailableManifest,
        GetStageStats => GetStatsManifest,
        StageStats => StatsManifest,
        StageReport => StageReportManifest,
        PipelineReport => PipelineReportManifest,
        PipelineEvent => EventManifest,
        _ => throw new ArgumentException($"ControlSerializer cannot serialize {o.GetType()}.", nameof(o)),
    };

    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(WireFormat.Version);
        switch (obj)
        {
            case PipelineJob m:
                w.Write(m.JobId);
                WriteList(w, m.Splits, WriteSplit);
                WriteRef(w, m.ModelStore); WriteRef(w, m.Ingest); WriteRef(w, m.Sink); w.Write(m.FrameWindow); w.Write(m.LastEpoch);
                break;
            case JobAccepted m:
                w.Write(m.JobId);
                break;
            case JobEnded m:
                w.Write(m.JobId);
                break;
            case PlanAcknowledged m:
                w.Write(m.JobId); w.Write(m.Epoch);
                break;
            case WorkerStatus m:
                WriteRef(w, m.Agent); w.Write(m.Cores); w.Write(m.IntraOpThreads); w.Write(m.MemoryBytes);
                WriteList(w, m.CachedFiles, (x, s) => x.Write(s));
                WriteList(w, m.Hosted, (x, h) =>
                {
                    x.Write(h.JobId); x.Write(h.Parts); x.Write(h.Index); WriteRef(x, h.Stage); x.Write(h.WiredEpoch); x.Write(h.Sha256);
                });
                break;
            case PrefetchFiles m:
                w.Write(m.JobId); WriteList(w, m.Files, WriteFile); WriteRef(w, m.ModelStore);
                break;
            case DeployStage m:
                w.Write(m.JobId); w.Write(m.Epoch); w.Write(m.Parts); WriteSpec(w, m.Spec); WriteRef(w, m.ModelStore);
                break;
            case StageDeployed m:
                w.Write(m.JobId); w.Write(m.Epoch); w.Write(m.Parts); w.Write(m.Index); WriteRef(w, m.Stage); w.Write(m.WarmupMs);
                break;
            case StageDeployFailed m:
                w.Write(m.JobId); w.Write(m.Epoch); w.Write(m.Parts); w.Write(m.Index); w.Write(m.Reason);
                break;
            case WireStage m:
                w.Write(m.JobId); w.Write(m.Epoch); WriteList(w, m.Successors, WriteRef); WriteRef(w, m.Ingest);
                break;
            case StageWired m:
                w.Write(m.JobId); w.Write(m.Epoch); w.Write(m.Parts); w.Write(m.Index);
                break;
            case StopStage m:
                w.Write(m.JobId); w.Write(m.Parts); w.Write(m.Index); w.Write(m.Sha256);
                break;
            case PlanActivated m:
                w.Write(m.JobId); w.Write(m.Epoch); w.Write(m.Parts); WriteList(w, m.Heads, WriteRef);
                WriteList(w, m.Placements, WritePlacement);
                w.Write(m.Reason.Text()); // as text, the bytes nodes sent when the reason was a string
                break;
            case FetchFileChunk m:
                w.Write(m.Sha256); w.Write(m.Index);
                break;
            case FileChunk m:
                w.Write(m.Sha256); w.Write(m.Index); w.Write(m.Count); w.Write(m.TotalBytes); WriteBytes(w, m.Data);
                break;
            case FileUnavailable m:
                w.Write(m.Sha256);
                break;
            case GetStageStats:
                break;
            case StageReport m:
                w.Write(m.UnixMs); WriteStats(w, m.Stats); w.Write(m.PartialFrames); WriteRef(w, m.Stage);
                break;
            case PipelineReport m:
                w.Write(m.UnixMs); w.Write(m.JobId); w.Write(m.FramesIn); w.Write(m.ResultsOut); w.Write(m.Skipped); w.Write(m.Failed);
                w.Write(m.Resent); w.Write(m.Replayed); w.Write(m.DuplicatesDropped); w.Write(m.OutOfOrder); w.Write(m.InFlight);
                w.Write(m.LatencyP50Ms); w.Write(m.LatencyP95Ms); w.Write(m.LatencyP99Ms); w.Write(m.Epoch);
                WriteList(w, m.Plan, WritePlacement);
                WriteList(w, m.RecentEvents, WriteEvent);
                break;
            case PipelineEvent m:
                WriteEvent(w, m);
                break;
            case StageStats m:
                WriteStats(w, m);
                break;
            default:
                throw new ArgumentException($"ControlSerializer cannot serialize {obj.GetType()}.", nameof(obj));
        }

        w.Flush();
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!WireFormat.IsCurrent(bytes))
        {
            return WireVersionGuard.For(system).Refuse(bytes, manifest);
        }

        return WireFields.Read(bytes, manifest, _limits, nameof(ControlSerializer), r => Read(r, manifest));
    }

    // Fields are read in order (C# evaluates arguments left to right); each length, count, SHA and index is checked as it is read.
    private object Read(WireReader r, string manifest) => manifest switch
    {
        JobManifest => new PipelineJob(r.ReadString(), ReadList(r, ReadSplit), ReadRef(r), ReadRef(r), ReadRef(r), ReadWindow(r), r.ReadEpoch()),
        JobAcceptedManifest => new JobAccepted(r.ReadString()),
        JobEndedManifest => new JobEnded(r.ReadString()),
        PlanAcknowledgedManifest => new PlanAcknowledged(r.ReadString(), r.ReadEpoch()),
        WorkerStatusManifest => new WorkerStatus(
            ReadRef(r),
            r.ReadInt32(),
            r.ReadInt32(),
            r.ReadInt64(),
            ReadList(r, x => x.ReadSha256()),
            ReadList(r, x => Within(new HostedStage(x.ReadString(), x.ReadParts(), x.ReadIndex(), ReadRef(x), x.ReadEpoch(),
                x.ReadSha256(emptyAllowed: true))))),
        PrefetchManifest => new PrefetchFiles(r.ReadString(), ReadList(r, ReadFile), ReadRef(r)),
        DeployManifest => Within(new DeployStage(r.ReadString(), r.ReadEpoch(), r.ReadParts(), ReadSpec(r), ReadRef(r))),
        DeployedManifest => Within(new StageDeployed(r.ReadString(), r.ReadEpoch(), r.ReadParts(), r.ReadIndex(), ReadRef(r), r.ReadDouble())),
        DeployFailedManifest => Within(new StageDeployFailed(r.ReadString(), r.ReadEpoch(), r.ReadParts(), r.ReadIndex(), r.ReadString())),
        WireManifest => new WireStage(r.ReadString(), r.ReadEpoch(), ReadList(r, ReadRef), ReadRef(r)),
        WiredManifest => Within(new StageWired(r.ReadString(), r.ReadEpoch(), r.ReadParts(), r.ReadIndex())),
        StopManifest => Within(new StopStage(r.ReadString(), r.ReadParts(), r.ReadIndex(), r.ReadSha256(emptyAllowed: true))),
        PlanManifest => new PlanActivated(
            r.ReadString(),
            r.ReadEpoch(),
            r.ReadParts(),
            ReadList(r, ReadRef),
            ReadList(r, ReadPlacement),
            PlanReasons.Parse(r.ReadString())),
        FetchChunkManifest => new FetchFileChunk(r.ReadSha256(), r.ReadCount(r.Limits.FileChunks - 1, "A file piece's index")),
        FileChunkManifest => ReadFileChunk(r),
        UnavailableManifest => new FileUnavailable(r.ReadSha256()),
        StatsManifest => ReadStats(r),
        GetStatsManifest => GetStageStats.Instance,
        StageReportManifest => new StageReport(r.ReadInt64(), ReadStats(r), r.ReadInt32(), ReadRef(r)),
        PipelineReportManifest => new PipelineReport(
            r.ReadInt64(), r.ReadString(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(),
            r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(),
            r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadInt64(), ReadList(r, ReadPlacement), ReadList(r, ReadEvent)),
        EventManifest => ReadEvent(r),
        _ => throw new System.Runtime.Serialization.SerializationException($"ControlSerializer does not know manifest '{manifest}'."),
    };

    private static int ReadWindow(WireReader r) => r.ReadCount(r.Limits.Window, "A job's frame window");

    private static FileChunk ReadFileChunk(WireReader r)
    {
        var sha = r.ReadSha256();
        var index = r.ReadCount(r.Limits.FileChunks - 1, "A file piece's index");
        var count = r.ReadCount(r.Limits.FileChunks, "A file's piece count");
        var total = WireLimits.Check(r.ReadInt64(), r.Limits.FileBytes, "A file's length");
        var data = r.ReadBytes(r.ReadCount(r.Limits.FileChunkBytes, "A file piece's length"));
        return index < count && data.Length <= total
            ? new FileChunk(sha, index, count, total, data)
            : throw new System.Runtime.Serialization.SerializationException(
                $"Piece {index} of {count} carries {data.Length} bytes of a {total}-byte file.");
    }

    private static HostedStage Within(HostedStage h) => h.Index < h.Parts ? h : throw OutsideSplit(h.Index, h.Parts);

    private static DeployStage Within(DeployStage d) => d.Spec.Index < d.Parts ? d : throw OutsideSplit(d.Spec.Index, d.Parts);

    private static StageDeployed Within(StageDeployed d) => d.Index < d.Parts ? d : throw OutsideSplit(d.Index, d.Parts);

    private static StageDeployFailed Within(StageDeployFailed d) => d.Index < d.Parts ? d : throw OutsideSplit(d.Index, d.Parts);

    private static StageWired Within(StageWired w) => w.Index < w.Parts ? w : throw OutsideSplit(w.Index, w.Parts);

    private static StopStage Within(StopStage s) => s.Index < s.Parts ? s : throw OutsideSplit(s.Index, s.Parts);

    private static System.Runtime.Serialization.SerializationException OutsideSplit(int index, int parts) =>
        new($"Stage {index} is outside a split of {parts} stages.");

    private static void WritePlacement(BinaryWriter x, StagePlacement p)
    {
        x.Write(p.Index);
        WriteRef(x, p.Stage);
        x.Write(p.Node);
        x.Write(p.Layers);
        x.Write(p.Flops);
    }

    private StagePlacement ReadPlacement(WireReader x) => new(x.ReadIndex(), ReadRef(x), x.ReadString(), x.ReadString(), x.ReadInt64());

    private static void WriteStats(BinaryWriter w, StageStats m)
    {
        w.Write(m.Parts); w.Write(m.Index); w.Write(m.Node); w.Write(m.Frames); w.Write(m.ComputeMsP50); w.Write(m.ComputeMsP95);
        w.Write(m.BusyFraction); w.Write(m.BytesIn); w.Write(m.BytesOut); w.Write(m.Dropped);
    }

    private static StageStats ReadStats(WireReader r) =>
        new(
            r.ReadInt32(), r.ReadInt32(), r.ReadString(), r.ReadInt64(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(),
            r.ReadInt64(), r.ReadInt64(), r.ReadInt64());

    private static void WriteEvent(BinaryWriter w, PipelineEvent e)
    {
        w.Write(e.UnixMs);
        w.Write(e.Source);
        w.Write(e.Text);
        w.Write(e.JobId);
    }

    private static PipelineEvent ReadEvent(WireReader r) => new(r.ReadInt64(), r.ReadString(), r.ReadString(), r.ReadString());

    private static void WriteBytes(BinaryWriter w, byte[] data)
    {
        w.Write(data.Length);
        w.Write(data);
    }

    private static void WriteList<T>(BinaryWriter w, IReadOnlyList<T> items, Action<BinaryWriter, T> write) => WireFields.WriteList(w, items, write);

    private static List<T> ReadList<T>(WireReader r, Func<WireReader, T> read) => WireFields.ReadList(r, read);

    private static void WriteRef(BinaryWriter w, IActorRef actor) => WireFields.WriteRef(w, actor);

    private IActorRef ReadRef(WireReader r) => WireFields.ReadRef(system, r);

    private static void WriteFile(BinaryWriter w, StageFile f)
    {
        w.Write(f.Sha256);
        w.Write(f.Bytes);
    }

    private static StageFile ReadFile(WireReader r)
        => new(r.ReadSha256(), WireLimits.Check(r.ReadInt64(), r.Limits.FileBytes, "A stage file's length"));

    private static void WriteSpec(BinaryWriter w, StageSpec s)
    {
        w.Write(s.Index);
        WriteFile(w, s.File);
        WriteList(w, s.Inputs, (x, v) => x.Write(v));
        WriteList(w, s.Outputs, (x, v) => x.Write(v));
        WriteList(w, s.Forwarded, (x, v) => x.Write(v));
        w.Write(s.Flops);
        w.Write(s.Layers);
        WriteList(w, s.Encodes ?? [], WriteCutCodec);
        WriteList(w, s.Decodes ?? [], WriteCutCodec);
    }

    private static StageSpec ReadSpec(WireReader r) =>
        new(r.ReadIndex(), ReadFile(r), ReadStrings(r), ReadStrings(r), ReadStrings(r), r.ReadInt64(), r.ReadString(),
            NullWhenEmpty(ReadList(r, ReadCutCodec)), NullWhenEmpty(ReadList(r, ReadCutCodec)));

    /// <summary>No coded tensors reads back as null, the exact wire, as a spec made without codecs has it.</summary>
    private static List<CutCodec>? NullWhenEmpty(List<CutCodec> codecs) => codecs.Count == 0 ? null : codecs;

    private static void WriteCutCodec(BinaryWriter w, CutCodec c)
    {
        w.Write(c.Tensor);
        w.Write(c.Codec);
        w.Write(c.ChannelAxis);
        w.Write(c.Scales.Length);
        foreach (var scale in c.Scales)
        {
            w.Write(scale);
        }

        w.Write(c.ZeroPoints.Length);
        w.Write(c.ZeroPoints);
    }

    private static CutCodec ReadCutCodec(WireReader r)
    {
        var tensor = r.ReadString();
        var codec = r.ReadString();
        var axis = r.ReadCount(byte.MaxValue, "A cut codec's channel axis");
        // Four bytes a scale: a count past what is left is refused before the array is made.
        var scales = new float[r.ReadCount(Math.Min(r.Limits.ListItems, r.Remaining / sizeof(float)), "A cut codec's scale count")];
        for (var i = 0; i < scales.Length; i++)
        {
            scales[i] = r.ReadSingle();
        }

        var zeroPoints = r.ReadBytes(r.ReadCount(Math.Min(r.Limits.ListItems, r.Remaining), "A cut codec's zero-point count"));
        return new CutCodec(tensor, codec, axis, scales, zeroPoints);
    }

    private static List<string> ReadStrings(WireReader r) => ReadList(r, x => x.ReadString());

    private static void WriteSplit(BinaryWriter w, SplitPlan p)
    {
        w.Write(p.Parts);
        WriteList(w, p.Stages, WriteSpec);
    }

    private static SplitPlan ReadSplit(WireReader r)
    {
        var split = new SplitPlan(r.ReadParts(), ReadList(r, ReadSpec));
        return split.Stages.Count == split.Parts && split.Stages.Select((s, i) => s.Index == i).All(x => x)
            ? split
            : throw new System.Runtime.Serialization.SerializationException($"A {split.Parts}-part split lists {split.Stages.Count} "
                + $"stages out of order or count.");
    }
}
