using System.Text;
using Akka.Actor;
using Akka.Serialization;

namespace PipelineActors.Protocol.Serialization;

/// <summary>
/// Binary serializer for the job lifecycle (<see cref="IJobMessage"/>: submit, stop, list, the job hosts' reports): a
/// few messages a second at most, apart from the control serializer so each family's layout reads on its own.
/// </summary>
public sealed class JobSerializer : SerializerWithStringManifest
{
    public const int Id = 433;

    private const string SpecManifest = "JS";
    private const string SubmitManifest = "JU";
    private const string SubmittedManifest = "JD";
    private const string StopManifest = "JT";
    private const string StoppingManifest = "JG";
    private const string ListManifest = "JL";
    private const string ListedManifest = "JI";
    private const string RunManifest = "JR";
    private const string HaltManifest = "JH";
    private const string HostReportManifest = "JP";

    private readonly ExtendedActorSystem _system;

    public JobSerializer(ExtendedActorSystem system)
        : base(system)
    {
        _system = system;
    }

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        JobSpec => SpecManifest,
        SubmitJob => SubmitManifest,
        JobSubmitted => SubmittedManifest,
        StopJob => StopManifest,
        JobStopping => StoppingManifest,
        ListJobs => ListManifest,
        JobList => ListedManifest,
        RunJob => RunManifest,
        HaltJob => HaltManifest,
        JobHostReport => HostReportManifest,
        _ => throw new ArgumentException($"JobSerializer cannot serialize {o.GetType()}.", nameof(o)),
    };

    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(WireFormat.Version);
        switch (obj)
        {
            case JobSpec m:
                WriteSpec(w, m);
                break;
            case SubmitJob m:
                WriteSpec(w, m.Spec);
                break;
            case JobSubmitted m:
                w.Write(m.Name); w.Write(m.Error);
                break;
            case StopJob m:
                w.Write(m.Name);
                break;
            case JobStopping m:
                w.Write(m.Name); w.Write(m.Error);
                break;
            case ListJobs:
                break;
            case JobList m:
                WireFields.WriteList(w, m.Jobs, WriteStatus);
                break;
            case RunJob m:
                WriteSpec(w, m.Spec); w.Write(m.FirstId); w.Write(m.SkippedBefore);
                break;
            case HaltJob m:
                w.Write(m.Name);
                break;
            case JobHostReport m:
                WireFields.WriteRef(w, m.Host);
                WireFields.WriteList(w, m.Jobs, WriteStatus);
                WireFields.WriteList(w, m.Specs, WriteSpec);
                break;
            default:
                throw new ArgumentException($"JobSerializer cannot serialize {obj.GetType()}.", nameof(obj));
        }

        w.Flush();
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!WireFormat.IsCurrent(bytes))
        {
            return WireVersionGuard.For(_system).Refuse(bytes, manifest);
        }

        using var r = new BinaryReader(new MemoryStream(bytes, WireFormat.HeaderBytes, bytes.Length - WireFormat.HeaderBytes), Encoding.UTF8);
        return manifest switch
        {
            SpecManifest => ReadSpec(r),
            SubmitManifest => new SubmitJob(ReadSpec(r)),
            SubmittedManifest => new JobSubmitted(r.ReadString(), r.ReadString()),
            StopManifest => new StopJob(r.ReadString()),
            StoppingManifest => new JobStopping(r.ReadString(), r.ReadString()),
            ListManifest => ListJobs.Instance,
            ListedManifest => new JobList(WireFields.ReadList(r, ReadStatus)),
            RunManifest => new RunJob(ReadSpec(r), r.ReadInt64(), r.ReadInt64()),
            HaltManifest => new HaltJob(r.ReadString()),
            HostReportManifest => new JobHostReport(WireFields.ReadRef(_system, r), WireFields.ReadList(r, ReadStatus), WireFields.ReadList(r, ReadSpec)),
            _ => throw new System.Runtime.Serialization.SerializationException($"JobSerializer does not know manifest '{manifest}'."),
        };
    }

    private static void WriteSpec(BinaryWriter w, JobSpec s)
    {
        w.Write(s.Name); w.Write(s.ModelSha256); w.Write(s.ModelFileName); w.Write(s.ModelBytes); w.Write(s.ProfileJson); w.Write(s.Source);
        WireFields.WriteStrings(w, s.Results);
        WireFields.WriteStrings(w, s.InputSizes);
        w.Write(s.Window); w.Write(s.FramesPerSecond); w.Write(s.Frames); w.Write(s.IngestNode);
        WireFields.WriteRef(w, s.ModelStore);
    }

    private JobSpec ReadSpec(BinaryReader r) => new(
        r.ReadString(), r.ReadString(), r.ReadString(), r.ReadInt64(), r.ReadString(), r.ReadString(),
        WireFields.ReadStrings(r), WireFields.ReadStrings(r),
        r.ReadInt32(), r.ReadDouble(), r.ReadInt64(), r.ReadString(),
        WireFields.ReadRef(_system, r));

    private static void WriteStatus(BinaryWriter w, JobStatus s)
    {
        w.Write(s.Name); w.Write(s.State); w.Write(s.Node);
        w.Write(s.FramesIn); w.Write(s.ResultsOut); w.Write(s.Skipped); w.Write(s.Failed);
        w.Write(s.FramesPerSecond); w.Write(s.LatencyP50Ms); w.Write(s.LatencyP95Ms); w.Write(s.LastId);
        WireFields.WriteStrings(w, s.Plan);
        w.Write(s.Detail); w.Write(s.UpdatedUnixMs);
    }

    private static JobStatus ReadStatus(BinaryReader r) => new(
        r.ReadString(), r.ReadString(), r.ReadString(),
        r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(),
        r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadInt64(),
        WireFields.ReadStrings(r), r.ReadString(), r.ReadInt64());
}
