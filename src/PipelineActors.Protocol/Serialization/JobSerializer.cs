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
    private readonly WireLimits _limits;

    public JobSerializer(ExtendedActorSystem system)
        : base(system)
    {
        _system = system;
        _limits = WireLimits.From(system.Settings.Config);
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

        return WireFields.Read(bytes, manifest, _limits, nameof(JobSerializer), r => Read(r, manifest));
    }

    private object Read(WireReader r, string manifest) => manifest switch
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

    private static void WriteSpec(BinaryWriter w, JobSpec s)
    {
        w.Write(s.Name); w.Write(s.ModelSha256); w.Write(s.ModelFileName); w.Write(s.ModelBytes); w.Write(s.ProfileJson); w.Write(s.Source);
        WireFields.WriteStrings(w, s.Results);
        WireFields.WriteStrings(w, s.InputSizes);
        w.Write(s.Window); w.Write(s.FramesPerSecond); w.Write(s.Frames); w.Write(s.IngestNode);
        WireFields.WriteRef(w, s.ModelStore);
        w.Write(s.Codec);
        w.Write(s.FirstHop);
    }

    // Sizes are checked here (the model's SHA, its length, the window, the rate, the frame count); what the words mean (a
    // name's characters, a source spec) is the job registry's to judge, with a sentence the submitter sees.
    private JobSpec ReadSpec(WireReader r) => new(
        r.ReadString(), r.ReadSha256(), r.ReadString(), WireLimits.Check(r.ReadInt64(), r.Limits.FileBytes, "A job's model length"),
        r.ReadString(), r.ReadString(),
        WireFields.ReadStrings(r), WireFields.ReadStrings(r),
        r.ReadCount(r.Limits.Window, "A job's frame window"), ReadRate(r), WireLimits.Check(r.ReadInt64(), long.MaxValue, "A job's frame count"),
        r.ReadString(),
        WireFields.ReadRef(_system, r),
        r.ReadString(),
        r.ReadString());

    private static double ReadRate(WireReader r)
    {
        var fps = r.ReadDouble();
        return double.IsFinite(fps) && fps is >= 0 and <= 10_000
            ? fps
            : throw new System.Runtime.Serialization.SerializationException($"A job's frame rate is {fps}; give 0 (as fast as frames are "
                + $"taken) to 10000.");
    }

    private static void WriteStatus(BinaryWriter w, JobStatus s)
    {
        w.Write(s.Name); w.Write(s.State); w.Write(s.Node);
        w.Write(s.FramesIn); w.Write(s.ResultsOut); w.Write(s.Skipped); w.Write(s.Failed);
        w.Write(s.FramesPerSecond); w.Write(s.LatencyP50Ms); w.Write(s.LatencyP95Ms); w.Write(s.LastId);
        WireFields.WriteStrings(w, s.Plan);
        w.Write(s.Detail); w.Write(s.UpdatedUnixMs);
    }

    private static JobStatus ReadStatus(WireReader r) => new(
        r.ReadString(), r.ReadString(), r.ReadString(),
        r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(),
        r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadInt64(),
        WireFields.ReadStrings(r), r.ReadString(), r.ReadInt64());
}
