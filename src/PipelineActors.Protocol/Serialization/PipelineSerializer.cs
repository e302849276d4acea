using System.Buffers.Binary;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// The binary wire format of every <see cref="IPipelineMessage"/>. Akka falls back to its JSON
/// serializer without a warning, which turns a 800 KiB tensor into megabytes of base64 and costs
/// 10-40x in throughput; this serializer is bound to the marker interface in
/// <c>hocon/reference.conf</c>, and a test checks the binding for every message type.
/// Frames are written straight into one exact-size array (one copy each way).
/// </summary>
public sealed class PipelineSerializer : SerializerWithStringManifest
{
    public const int Id = 431;

    public PipelineSerializer(ExtendedActorSystem system)
        : base(system)
    {
    }

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        Frame => "F",
        FrameChunk => "FC",
        FrameReceived => "FR",
        FrameRejected => "FJ",
        FrameFailed => "FF",
        PipelineJob => "PJ",
        JobAccepted => "JA",
        WorkerStatus => "WS",
        PrefetchFiles => "PF",
        DeployStage => "DS",
        StageDeployed => "SD",
        StageDeployFailed => "SF",
        WireStage => "WI",
        StageWired => "SW",
        StopStage => "SS",
        PlanActivated => "PA",
        FetchFileChunk => "FX",
        FileChunk => "FK",
        FileUnavailable => "FU",
        GetStageStats => "GS",
        StageStats => "ST",
        StageReport => "SR",
        PipelineReport => "PR",
        PipelineEvent => "PE",
        _ => throw new ArgumentException($"PipelineSerializer cannot serialize {o.GetType()}.", nameof(o)),
    };

    public override byte[] ToBinary(object obj)
    {
        if (obj is Frame frame)
        {
            return FrameCodec.Encode(frame);
        }

        if (obj is GetStageStats)
        {
            return [];
        }

        if (obj is FrameChunk chunk)
        {
            // The hot path: one exact-size array, one copy of the payload.
            var buffer = new byte[36 + chunk.Payload.Length];
            BinaryPrimitives.WriteInt64LittleEndian(buffer, chunk.FrameId);
            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(8), chunk.Epoch);
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(16), chunk.Attempt);
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(20), chunk.Index);
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(24), chunk.Count);
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(28), chunk.Payload.Length);
            chunk.Payload.CopyTo(buffer, 36);
            return buffer;
        }

        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        switch (obj)
        {
            case FrameReceived m:
                w.Write(m.FrameId); w.Write(m.DeliveredThrough);
                break;
            case FrameRejected m:
                w.Write(m.FrameId); w.Write(m.Attempt); w.Write(m.StageIndex); w.Write(m.Reason);
                break;
            case FrameFailed m:
                w.Write(m.FrameId); w.Write(m.Reason);
                break;
            case PipelineJob m:
                w.Write(m.JobId);
                WriteList(w, m.Splits, WriteSplit);
                WriteRef(w, m.ModelStore); WriteRef(w, m.Ingest); WriteRef(w, m.Sink); w.Write(m.FrameWindow);
                break;
            case JobAccepted m:
                w.Write(m.JobId);
                break;
            case WorkerStatus m:
                WriteRef(w, m.Agent); w.Write(m.Cores); w.Write(m.IntraOpThreads); w.Write(m.MemoryBytes);
                WriteList(w, m.CachedFiles, (x, s) => x.Write(s));
                WriteList(w, m.Hosted, (x, h) =>
                {
                    x.Write(h.Parts); x.Write(h.Index); WriteRef(x, h.Stage); x.Write(h.WiredEpoch); WriteList(x, h.Successors, WriteRef);
                });
                WriteList(w, m.Timings, (x, t) => { x.Write(t.Parts); x.Write(t.Index); x.Write(t.ComputeMsP50); });
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
                w.Write(m.Epoch); WriteList(w, m.Successors, WriteRef); WriteRef(w, m.Ingest);
                break;
            case StageWired m:
                w.Write(m.Epoch); w.Write(m.Parts); w.Write(m.Index);
                break;
            case StopStage m:
                w.Write(m.Parts); w.Write(m.Index);
                break;
            case PlanActivated m:
                w.Write(m.Epoch); w.Write(m.Parts); WriteList(w, m.Heads, WriteRef);
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
            case StageReport m:
                w.Write(m.UnixMs); WriteStats(w, m.Stats); w.Write(m.PartialFrames);
                break;
            case PipelineReport m:
                w.Write(m.UnixMs); w.Write(m.JobId); w.Write(m.FramesIn); w.Write(m.ResultsOut); w.Write(m.Skipped); w.Write(m.Failed);
                w.Write(m.Resent); w.Write(m.Replayed); w.Write(m.DuplicatesDropped); w.Write(m.OutOfOrder); w.Write(m.InFlight);
                w.Write(m.LatencyP50Ms); w.Write(m.LatencyP95Ms); w.Write(m.LatencyP99Ms); w.Write(m.Epoch);
                WriteList(w, m.Plan, WritePlacement);
                WriteList(w, m.RecentEvents, (x, e) => { x.Write(e.UnixMs); x.Write(e.Source); x.Write(e.Text); });
                break;
            case PipelineEvent m:
                w.Write(m.UnixMs); w.Write(m.Source); w.Write(m.Text);
                break;
            case StageStats m:
                w.Write(m.Parts); w.Write(m.Index); w.Write(m.Node); w.Write(m.Frames); w.Write(m.ComputeMsP50); w.Write(m.ComputeMsP95);
                w.Write(m.BusyFraction); w.Write(m.BytesIn); w.Write(m.BytesOut); w.Write(m.Dropped);
                break;
            default:
                throw new ArgumentException($"PipelineSerializer cannot serialize {obj.GetType()}.", nameof(obj));
        }

        w.Flush();
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (manifest == "F")
        {
            return FrameCodec.Decode(bytes);
        }

        if (manifest == "GS")
        {
            return GetStageStats.Instance;
        }

        if (manifest == "FC")
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(28));
            return new FrameChunk(
                BinaryPrimitives.ReadInt64LittleEndian(bytes),
                BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(8)),
                BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(16)),
                BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(20)),
                BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(24)),
                bytes.AsSpan(36, length).ToArray());
        }

        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        return manifest switch
        {
            "FR" => new FrameReceived(r.ReadInt64(), r.ReadInt64()),
            "FJ" => new FrameRejected(r.ReadInt64(), r.ReadInt32(), r.ReadInt32(), r.ReadString()),
            "FF" => new FrameFailed(r.ReadInt64(), r.ReadString()),
            "PJ" => new PipelineJob(r.ReadString(), ReadList(r, ReadSplit), ReadRef(r), ReadRef(r), ReadRef(r), r.ReadInt32()),
            "JA" => new JobAccepted(r.ReadString()),
            "WS" => new WorkerStatus(
                ReadRef(r),
                r.ReadInt32(),
                r.ReadInt32(),
                r.ReadInt64(),
                ReadList(r, x => x.ReadString()),
                ReadList(r, x => new HostedStage(x.ReadInt32(), x.ReadInt32(), ReadRef(x), x.ReadInt64(), ReadList(x, ReadRef))),
                ReadList(r, x => new StageTiming(x.ReadInt32(), x.ReadInt32(), x.ReadDouble()))),
            "PF" => new PrefetchFiles(r.ReadString(), ReadList(r, ReadFile), ReadRef(r)),
            "DS" => new DeployStage(r.ReadString(), r.ReadInt64(), r.ReadInt32(), ReadSpec(r), ReadRef(r)),
            "SD" => new StageDeployed(r.ReadString(), r.ReadInt64(), r.ReadInt32(), r.ReadInt32(), ReadRef(r), r.ReadDouble()),
            "SF" => new StageDeployFailed(r.ReadString(), r.ReadInt64(), r.ReadInt32(), r.ReadInt32(), r.ReadString()),
            "WI" => new WireStage(r.ReadInt64(), ReadList(r, ReadRef), ReadRef(r)),
            "SW" => new StageWired(r.ReadInt64(), r.ReadInt32(), r.ReadInt32()),
            "SS" => new StopStage(r.ReadInt32(), r.ReadInt32()),
            "PA" => new PlanActivated(
                r.ReadInt64(),
                r.ReadInt32(),
                ReadList(r, ReadRef),
                ReadList(r, ReadPlacement),
                PlanReasons.Parse(r.ReadString())),
            "FX" => new FetchFileChunk(r.ReadString(), r.ReadInt32()),
            "FK" => new FileChunk(r.ReadString(), r.ReadInt32(), r.ReadInt32(), r.ReadInt64(), ReadBytes(r)),
            "FU" => new FileUnavailable(r.ReadString()),
            "ST" => ReadStats(r),
            "SR" => new StageReport(r.ReadInt64(), ReadStats(r), r.ReadInt32()),
            "PR" => new PipelineReport(
                r.ReadInt64(), r.ReadString(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(),
                r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadInt64(), ReadList(r, ReadPlacement), ReadList(r, x => new PipelineEvent(x.ReadInt64(), x.ReadString(), x.ReadString()))),
            "PE" => new PipelineEvent(r.ReadInt64(), r.ReadString(), r.ReadString()),
            _ => throw new System.Runtime.Serialization.SerializationException($"PipelineSerializer does not know manifest '{manifest}'."),
        };
    }

    private static void WritePlacement(BinaryWriter x, StagePlacement p)
    {
        x.Write(p.Index);
        WriteRef(x, p.Stage);
        x.Write(p.Node);
        x.Write(p.Layers);
        x.Write(p.Flops);
    }

    private StagePlacement ReadPlacement(BinaryReader x) => new(x.ReadInt32(), ReadRef(x), x.ReadString(), x.ReadString(), x.ReadInt64());

    private static void WriteStats(BinaryWriter w, StageStats m)
    {
        w.Write(m.Parts); w.Write(m.Index); w.Write(m.Node); w.Write(m.Frames); w.Write(m.ComputeMsP50); w.Write(m.ComputeMsP95);
        w.Write(m.BusyFraction); w.Write(m.BytesIn); w.Write(m.BytesOut); w.Write(m.Dropped);
    }

    private static StageStats ReadStats(BinaryReader r) =>
        new(r.ReadInt32(), r.ReadInt32(), r.ReadString(), r.ReadInt64(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64());

    private static void WriteBytes(BinaryWriter w, byte[] data)
    {
        w.Write(data.Length);
        w.Write(data);
    }

    private static byte[] ReadBytes(BinaryReader r) => r.ReadBytes(r.ReadInt32());

    private static void WriteList<T>(BinaryWriter w, IReadOnlyList<T> items, Action<BinaryWriter, T> write)
    {
        w.Write(items.Count);
        foreach (var item in items)
        {
            write(w, item);
        }
    }

    private static List<T> ReadList<T>(BinaryReader r, Func<BinaryReader, T> read)
    {
        var count = r.ReadInt32();
        var list = new List<T>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add(read(r));
        }

        return list;
    }

    private static void WriteRef(BinaryWriter w, IActorRef actor) => w.Write(Akka.Serialization.Serialization.SerializedActorPath(actor));

    private IActorRef ReadRef(BinaryReader r) => system.Provider.ResolveActorRef(r.ReadString());

    private static void WriteFile(BinaryWriter w, StageFile f)
    {
        w.Write(f.Sha256);
        w.Write(f.Bytes);
    }

    private static StageFile ReadFile(BinaryReader r) => new(r.ReadString(), r.ReadInt64());

    private static void WriteSpec(BinaryWriter w, StageSpec s)
    {
        w.Write(s.Index);
        WriteFile(w, s.File);
        WriteList(w, s.Inputs, (x, v) => x.Write(v));
        WriteList(w, s.Outputs, (x, v) => x.Write(v));
        WriteList(w, s.Forwarded, (x, v) => x.Write(v));
        w.Write(s.Flops);
        w.Write(s.Layers);
    }

    private static StageSpec ReadSpec(BinaryReader r) =>
        new(r.ReadInt32(), ReadFile(r), ReadList(r, x => x.ReadString()), ReadList(r, x => x.ReadString()), ReadList(r, x => x.ReadString()), r.ReadInt64(), r.ReadString());

    private static void WriteSplit(BinaryWriter w, SplitPlan p)
    {
        w.Write(p.Parts);
        WriteList(w, p.Stages, WriteSpec);
    }

    private static SplitPlan ReadSplit(BinaryReader r) => new(r.ReadInt32(), ReadList(r, ReadSpec));
}

/// <summary>
/// The frame layout: header, then per tensor its name, dtype, shape, how its bytes travel (raw, or zero-suppressed when
/// that is at least an eighth smaller, see <see cref="ZeroSuppression"/>) and the bytes, little-endian, in one
/// exact-size array. Decoding gives back every tensor bit for bit.
/// </summary>
public static class FrameCodec
{
    private const int Raw = 0;
    private const int ZeroSuppressed = 1;

    public static byte[] Encode(Frame frame)
    {
        var buffer = new byte[Measure(frame, out var suppressed)];
        var at = 0;
        void Int64(long v)
        {
            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(at), v);
            at += 8;
        }

        void Int32(int v)
        {
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(at), v);
            at += 4;
        }

        void Text(string text)
        {
            var length = Encoding.UTF8.GetBytes(text, buffer.AsSpan(at + 4));
            Int32(length);
            at += length;
        }

        Int64(frame.FrameId);
        Int64(frame.Epoch);
        Int64(frame.CaptureUnixMicros);
        Int32(frame.Attempt);
        Text(frame.SourceId);
        Int32(frame.Tensors.Count);
        for (var i = 0; i < frame.Tensors.Count; i++)
        {
            var t = frame.Tensors[i];
            Text(t.Name);
            Int32((int)t.ElementType);
            Int32(t.Shape.Length);
            foreach (var d in t.Shape)
            {
                Int64(d);
            }

            if (suppressed[i] > 0)
            {
                Int32(ZeroSuppressed);
                Int32(t.Data.Length);
                Int32(suppressed[i]);
                ZeroSuppression.Encode(t.ElementType, t.Data, buffer.AsSpan(at, suppressed[i]));
                at += suppressed[i];
            }
            else
            {
                Int32(Raw);
                Int32(t.Data.Length);
                t.Data.CopyTo(buffer, at);
                at += t.Data.Length;
            }
        }

        return buffer;
    }

    public static Frame Decode(byte[] buffer)
    {
        var at = 0;
        long Int64()
        {
            var v = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(at));
            at += 8;
            return v;
        }

        int Int32()
        {
            var v = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(at));
            at += 4;
            return v;
        }

        ReadOnlySpan<byte> Span(int n)
        {
            var span = buffer.AsSpan(at, n);
            at += n;
            return span;
        }

        string Text() => Encoding.UTF8.GetString(Span(Int32()));

        var id = Int64();
        var epoch = Int64();
        var capture = Int64();
        var attempt = Int32();
        var source = Text();
        var count = Int32();
        var tensors = new FrameTensor[count];
        for (var i = 0; i < count; i++)
        {
            var name = Text();
            var dtype = (TensorProto.Types.DataType)Int32();
            var shape = new long[Int32()];
            for (var d = 0; d < shape.Length; d++)
            {
                shape[d] = Int64();
            }

            var encoding = Int32();
            var rawLength = Int32();
            var data = encoding switch
            {
                Raw => Span(rawLength).ToArray(),
                ZeroSuppressed => ZeroSuppression.Decode(dtype, Span(Int32()), rawLength),
                _ => throw new InvalidDataException($"Tensor '{name}' has an unknown encoding {encoding}."),
            };
            tensors[i] = new FrameTensor(name, dtype, shape, data);
        }

        return new Frame(id, source, epoch, capture, attempt, tensors);
    }

    /// <summary>The encoded size; <paramref name="suppressed"/> holds each tensor's zero-suppressed size, or -1 where it travels raw.</summary>
    private static int Measure(Frame frame, out int[] suppressed)
    {
        suppressed = new int[frame.Tensors.Count];
        var size = 8 + 8 + 8 + 4 + 4 + Encoding.UTF8.GetByteCount(frame.SourceId) + 4;
        for (var i = 0; i < frame.Tensors.Count; i++)
        {
            var t = frame.Tensors[i];
            suppressed[i] = ZeroSuppression.EncodedLength(t.ElementType, t.Data);
            size += 4 + Encoding.UTF8.GetByteCount(t.Name) + 4 + 4 + (8 * t.Shape.Length) + 4 + 4
                + (suppressed[i] > 0 ? 4 + suppressed[i] : t.Data.Length);
        }

        return size;
    }
}
