using System.Collections;
using System.Reflection;
using Akka.Actor;
using Akka.Serialization;
using PipelineActors.Onnx.Proto;
using DataType = PipelineActors.Onnx.Proto.TensorProto.Types.DataType;
using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.TestSupport;
using PipelineActors.Onnx.Inference;

namespace PipelineActors.Protocol.Tests.Serialization;

/// <summary>
/// Every protocol message is bound to its family's serializer (<see cref="FrameSerializer"/> for what travels per frame,
/// <see cref="ControlSerializer"/> for the rest; Akka falls back to JSON silently otherwise), starts with the wire-format
/// version, and survives a round trip, actor refs included, within and across systems. Runs on the production
/// configuration so the binding tested is the one nodes use.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ProtocolSerializerSpecs : Akka.TestKit.Xunit2.TestKit
{
    private const string RemoteStagePath = "akka.tcp://pipeline@10.1.2.3:4053/user/worker/stage-2-1#1234567";

    public ProtocolSerializerSpecs()
        : base(TestNodes.Config(Roles.Worker), PipelineConfig.SystemName)
    {
    }

    private ExtendedActorSystem ExtendedSystem => (ExtendedActorSystem)Sys;

    public static TheoryData<string> MessageTypes()
    {
        var data = new TheoryData<string>();
        foreach (var type in ProtocolTypes())
        {
            data.Add(type.Name);
        }

        return data;
    }

    [Fact]
    public void The_samples_cover_every_message_type_that_implements_IPipelineMessage()
    {
        var sampled = Samples(ActorRefs.Nobody, ActorRefs.Nobody).Select(m => m.GetType()).ToHashSet();
        var missing = ProtocolTypes().Where(t => !sampled.Contains(t)).Select(t => t.Name).ToList();
        Assert.True(missing.Count == 0, $"No serializer sample for {string.Join(", ", missing)}: add one to {nameof(Samples)}.");
    }

    [Fact]
    public void Every_message_type_belongs_to_exactly_one_family()
    {
        var families = new[] { typeof(IFrameMessage), typeof(IControlMessage), typeof(IJobMessage) };
        var wrong = ProtocolTypes().Where(t => families.Count(f => f.IsAssignableFrom(t)) != 1);
        Assert.Empty(wrong.Select(t => t.Name));
    }

    [Fact]
    public void The_two_serializers_have_distinct_identifiers_above_the_range_akka_reserves()
    {
        Assert.Equal(3, new[] { FrameSerializer.Id, ControlSerializer.Id, JobSerializer.Id }.Distinct().Count());
        Assert.All(new[] { FrameSerializer.Id, ControlSerializer.Id, JobSerializer.Id }, id => Assert.True(id > 100, $"{id}"));
        var fromFrames = Sys.Serialization.Deserialize([WireFormat.Version, .. new byte[16]], FrameSerializer.Id, "FR");
        var fromControl = Sys.Serialization.Deserialize([WireFormat.Version], ControlSerializer.Id, "GS");
        Assert.Equal(new FrameReceived(0, 0), fromFrames);
        Assert.Same(GetStageStats.Instance, fromControl);
    }

    [Theory]
    [MemberData(nameof(MessageTypes))]
    public void Every_message_type_is_bound_to_its_familys_serializer_not_json(string typeName)
    {
        var message = Sample(typeName);
        var serializer = Sys.Serialization.FindSerializerFor(message);
        if (message is IFrameMessage)
        {
            Assert.IsType<FrameSerializer>(serializer);
            Assert.Equal(FrameSerializer.Id, serializer.Identifier);
        }
        else if (message is IJobMessage)
        {
            Assert.IsType<JobSerializer>(serializer);
            Assert.Equal(JobSerializer.Id, serializer.Identifier);
        }
        else
        {
            Assert.IsType<ControlSerializer>(serializer);
            Assert.Equal(ControlSerializer.Id, serializer.Identifier);
        }
    }

    [Theory]
    [MemberData(nameof(MessageTypes))]
    public void Every_message_type_round_trips_to_an_equal_message_that_starts_with_the_version_byte(string typeName)
    {
        var message = Sample(typeName);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
        var manifest = serializer.Manifest(message);
        var bytes = serializer.ToBinary(message);

        var copy = serializer.FromBinary(bytes, manifest);

        Assert.Equal(WireFormat.Version, bytes[0]);
        Assert.IsType(message.GetType(), copy);
        AssertStructurallyEqual(message, copy, typeName);
        Assert.Equal(bytes, serializer.ToBinary(copy));
    }

    [Fact]
    public void Manifests_are_distinct_across_the_serializers()
    {
        var manifests = Samples(TestActor, RemoteRef())
            .DistinctBy(m => m.GetType())
            .Select(m => ((SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(m)).Manifest(m))
            .ToList();
        Assert.Equal(manifests.Count, manifests.Distinct(StringComparer.Ordinal).Count());
    }

    [Theory]
    [MemberData(nameof(MessageTypes))]
    public void A_message_of_another_wire_format_version_is_refused_not_misread(string typeName)
    {
        var message = Sample(typeName);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
        var bytes = serializer.ToBinary(message);
        bytes[0] = WireFormat.Version + 1;

        var refused = Assert.IsType<RefusedMessage>(serializer.FromBinary(bytes, serializer.Manifest(message)));

        Assert.Equal((byte)(WireFormat.Version + 1), refused.Version);
        Assert.Equal(serializer.Manifest(message), refused.Manifest);
    }

    [Fact]
    public void A_node_of_another_version_is_reported_in_one_error_line_however_many_messages_it_sends()
    {
        var foreign = (byte)(WireFormat.Version + 7);
        var guard = WireVersionGuard.For(Sys);
        var before = guard.Refused;

        EventFilter.Error(contains: $"wire format version {foreign}").Expect(1, () =>
        {
            foreach (var message in Samples(TestActor, RemoteRef()))
            {
                var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
                var bytes = serializer.ToBinary(message);
                bytes[0] = foreign;
                for (var i = 0; i < 3; i++)
                {
                    Assert.IsType<RefusedMessage>(serializer.FromBinary(bytes, serializer.Manifest(message)));
                }
            }
        });

        Assert.Equal(before + (3 * Samples(TestActor, RemoteRef()).Count), guard.Refused);
    }

    [Fact]
    public async Task Over_remoting_a_foreign_node_is_reported_once_and_the_association_stays_live_for_messages_it_can_read()
    {
        // System B writes JobAccepted in a foreign version under the control serializer's identifier and manifest.
        // Type names as pipeline-base.conf spells them, so the overrides replace its keys rather than add look-alikes.
        static string Name(Type t) => $"{t.FullName}, {t.Assembly.GetName().Name}";
        var overrides = $$"""
            akka.actor.serializers.foreign = "{{Name(typeof(ForeignVersionSerializer))}}"
            akka.actor.serialization-bindings { "{{Name(typeof(ForeignJobAccepted))}}" = foreign }
            akka.actor.serialization-identifiers {
              "{{Name(typeof(ForeignVersionSerializer))}}" = {{ControlSerializer.Id}}
              "{{Name(typeof(ControlSerializer))}}" = 499
            }
            """;
        var systemB = ActorSystem.Create(PipelineConfig.SystemName, TestNodes.Config(overrides, Roles.Worker));
        try
        {
            var probe = CreateTestProbe();
            var address = ExtendedSystem.Provider.DefaultAddress;
            var fromB = ((ExtendedActorSystem)systemB).Provider.ResolveActorRef(probe.Ref.Path.ToStringWithAddress(address));

            await EventFilter.Error(contains: $"wire format version {ForeignVersionSerializer.Version}").ExpectOneAsync(async () =>
            {
                for (var i = 0; i < 5; i++)
                {
                    fromB.Tell(new ForeignJobAccepted($"job-{i}"));
                }

                fromB.Tell(new FrameReceived(41, 40));
                for (var i = 0; i < 5; i++)
                {
                    Assert.Equal(ForeignVersionSerializer.Version, (await probe.ExpectMsgAsync<RefusedMessage>(TimeSpan.FromSeconds(10))).Version);
                }

                Assert.Equal(new FrameReceived(41, 40), await probe.ExpectMsgAsync<FrameReceived>(TimeSpan.FromSeconds(10)));
            });
        }
        finally
        {
            await systemB.Terminate();
        }
    }

    [Fact]
    public void An_empty_message_is_refused_rather_than_read_past_its_end()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(GetStageStats.Instance);
        EventFilter.Error(contains: "wire format version 0").Expect(1, () =>
            Assert.IsType<RefusedMessage>(serializer.FromBinary([], serializer.Manifest(GetStageStats.Instance))));
    }

    [Fact]
    public void Round_trips_go_through_Akkas_serialization_entry_points_with_the_string_manifest()
    {
        foreach (var message in Samples(TestActor, RemoteRef()))
        {
            var serializer = Sys.Serialization.FindSerializerFor(message);
            var manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
            var copy = Sys.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
            AssertStructurallyEqual(message, copy, message.GetType().Name);
        }
    }

    [Theory]
    [InlineData(PlanReason.InitialPlacement, "initial placement")]
    [InlineData(PlanReason.Recovery, "recovery")]
    [InlineData(PlanReason.Rebalance, "rebalance")]
    [InlineData(PlanReason.Adopted, "adopted by a new supervisor")]
    public void A_plan_reason_travels_as_the_text_nodes_sent_when_it_was_a_string(PlanReason reason, string text)
    {
        var plan = new PlanActivated("job-1", 3, 1, [TestActor], [new(0, TestActor, "127.0.0.1:4001", "0..9", 10)], reason);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(plan);
        var bytes = serializer.ToBinary(plan);

        // BinaryWriter writes a string as its UTF-8 length (one byte below 128) and then the bytes.
        var tail = new[] { (byte)text.Length }.Concat(System.Text.Encoding.UTF8.GetBytes(text)).ToArray();
        Assert.Equal(tail, bytes[^tail.Length..]);
        Assert.Equal(reason, RoundTrip(plan).Reason);
        Assert.Equal(text, reason.Text());
    }

    [Fact]
    public void A_plan_reason_this_version_does_not_know_is_refused_with_its_text()
    {
        var plan = new PlanActivated("job-1", 3, 1, [TestActor], [], PlanReason.Recovery);
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(plan);
        var bytes = serializer.ToBinary(plan);
        var forged = bytes[..^"recovery".Length].Concat(System.Text.Encoding.UTF8.GetBytes("reshuffle")).ToArray();
        forged[^("reshuffle".Length + 1)] = (byte)"reshuffle".Length;

        // A SerializationException, which Akka.Remote drops with a log line; another exception type could fail the association.
        var error = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary(forged,
            serializer.Manifest(plan)));
        Assert.Contains("'reshuffle'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_remote_actor_ref_keeps_its_address_and_uid_through_a_round_trip()
    {
        var remote = RemoteRef();
        Assert.False(remote.Path.Address.HasLocalScope);
        var copy = RoundTrip(new WireStage("job-1", 3, [remote, TestActor], remote));

        Assert.Equal(remote.Path.ToSerializationFormat(), copy.Ingest.Path.ToSerializationFormat());
        Assert.Equal(remote.Path.Uid, copy.Successors[0].Path.Uid);
        Assert.Equal(TestActor, copy.Successors[1]);
    }

    [Fact]
    public void A_frame_of_800_KB_serializes_to_its_tensor_bytes_plus_at_most_one_KiB()
    {
        var frame = new Frame(42, "camera-1", 3, 1_700_000_000_000_000, 1, [Tensor("input", DataType.Float, [1, 3, 256, 256], seed: 9)]);
        Assert.InRange(frame.Bytes, 780_000, 800_000);

        var bytes = Sys.Serialization.FindSerializerFor(frame).ToBinary(frame);

        Assert.InRange(bytes.LongLength, frame.Bytes, frame.Bytes + 1024);
    }

    [Fact]
    public async Task Actor_refs_serialized_in_one_actor_system_reach_their_actor_when_used_from_another()
    {
        var inA = CreateTestProbe();
        var systemB = ActorSystem.Create(PipelineConfig.SystemName, TestNodes.Config(Roles.Worker));
        try
        {
            var refsChecked = 0;
            foreach (var message in Samples(inA.Ref, inA.Ref))
            {
                var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
                var bytes = serializer.ToBinary(message);

                var copy = systemB.Serialization.Deserialize(bytes, serializer.Identifier, serializer.Manifest(message));

                foreach (var actor in ActorRefsIn(copy))
                {
                    var name = message.GetType().Name;
                    Assert.False(actor.Path.Address.HasLocalScope, $"{name}: the ref should point back to system A, not into system B");
                    Assert.Equal(ExtendedSystem.Provider.DefaultAddress, actor.Path.Address);
                    var token = new JobAccepted($"{message.GetType().Name}-{refsChecked++}");
                    actor.Tell(token);
                    Assert.Equal(token, await inA.ExpectMsgAsync<JobAccepted>(TimeSpan.FromSeconds(10)));
                }
            }

            Assert.True(refsChecked >= 10, $"only {refsChecked} refs were exercised");
        }
        finally
        {
            await systemB.Terminate();
        }
    }

    private T RoundTrip<T>(T message)
        where T : notnull
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
        return (T)serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message));
    }

    private IActorRef RemoteRef() => ExtendedSystem.Provider.ResolveActorRef(RemoteStagePath);

    private object Sample(string typeName) => Samples(TestActor, RemoteRef()).Single(m => m.GetType().Name == typeName);

    private static IEnumerable<Type> ProtocolTypes() =>
        typeof(IPipelineMessage).Assembly.GetTypes()
            .Where(t => typeof(IPipelineMessage).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .OrderBy(t => t.Name, StringComparer.Ordinal);

    /// <summary>One non-trivial instance of every protocol message.</summary>
    internal static IReadOnlyList<object> Samples(IActorRef local, IActorRef remote)
    {
        var tensors = new List<HostTensor>
        {
            Tensor("input", DataType.Float, [1, 3, 8, 8], seed: 1),
            Tensor("token_ids", DataType.Int64, [2, 5], seed: 2),
            Tensor("mask_u8", DataType.Uint8, [1, 1, 7, 3], seed: 3),
            Tensor("keep", DataType.Bool, [4], seed: 4),
            Tensor("half", DataType.Float16, [1, 2, 3], seed: 5),
            new HostTensor("scalar", DataType.Float, [], BitConverter.GetBytes(2.5f)),
            new HostTensor("empty", DataType.Float, [0, 4], []),
        };
        var file = new StageFile("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 123_456_789);
        var fileB = new StageFile("ab" + new string('c', 62), 42);
        // A coded cut: the sending stage carries the int8 quantisers' calibration, the receiving one only the codec's name.
        var int8 = new CutCodec("block.relu1", "int8+zstd", 1, [0.5f, float.Epsilon, 1e30f], [0, 7, 255]);
        var specA = new StageSpec(0, file, ["input"], ["stem.relu", "block.relu1"], [], 1_234_567, "0..4 (stem.conv .. block.relu1)",
            [int8, new("stem.relu", "fp16", 1, [], [])]);
        var specB = new StageSpec(1, fileB, ["stem.relu", "block.relu1"], ["logits"], ["stem.relu", "ünïcødé"], long.MaxValue, string.Empty,
            Decodes: [int8.ForDecoding()]);
        // The first hop: the first stage decodes the source's pictures from JPEG (channels on axis 3, NHWC).
        var specJpeg = specA with { Decodes = [new CutCodec("input", "jpeg:90", 3, [], [])] };
        var splits = new List<SplitPlan> { new(1, [specA]), new(2, [specA, specB]), new(2, [specJpeg, specB]) };
        var hosted = new List<HostedStage> { new("job-1", 2, 0, local, 7, file.Sha256), new("job-2", 3, 2, remote, -1) };
        var jobSpec = new JobSpec(
            "cam-1", file.Sha256, "resnet18.onnx", 46_000_000, "{\"input\": \"data\"}", "rtsp://10.0.0.5/stream",
            ["results/cam-1.jsonl", "mqtt"], ["data=1x3x224x224"], 4, 29.97, 0, "10.0.0.20:4053", remote, "int8+zstd", "jpeg:75");
        var jobStatus = new JobStatus(
            "cam-1", JobStates.Running, "10.0.0.20:4053", 1_000, 990, 7, 3, 24.5, 81.25, 140.5, 1_006,
            ["10.0.0.11:4053 0..4", "10.0.0.12:4053 5..9"], string.Empty, 1_700_000_000_999);
        return
        [
            new Frame(17, "camera-1", 4, 1_700_000_123_456_789, 2, tensors),
            new FrameChunk(17, 4, 2, 3, 16, 12_288, 65_000, new byte[] { 0, 9, 1, 2, 3, 255, 0, 128, 7 }.AsMemory(2, 6)),
            new FrameReceived(17, 15),
            new FrameRejected(17, 3, 1, "The frame carries no tensor 'input' (it has x)."),
            new FrameFailed(17, "stage 1 failed: boom (after 4 attempts)"),
            new PipelineJob("job-1", splits, remote, local, remote, 6, LastEpoch: 12),
            new JobEnded("job-1"),
            new PlanAcknowledged("job-1", 9),
            new JobAccepted("job-1"),
            new WorkerStatus(local, 16, 2, 64L << 30, [file.Sha256, specB.File.Sha256], hosted),
            new PrefetchFiles("job-1", [file, specB.File], remote),
            new DeployStage("job-1", 9, 2, specB, remote),
            new StageDeployed("job-1", 9, 2, 1, local, 812.5),
            new StageDeployFailed("job-1", 9, 2, 1, "Stage model 'x.onnx' is not a valid ONNX file."),
            new WireStage("job-1", 9, [local, remote, local], remote),
            new StageWired("job-1", 9, 2, 1),
            new StopStage("job-1", 2, 1, fileB.Sha256),
            new PlanActivated(
                "job-1",
                9,
                2,
                [local, remote],
                [new(0, local, "127.0.0.1:4001", "0..4", 1_000), new(1, remote, "10.1.2.3:4053", "5..9", 2_000)],
                PlanReason.Rebalance),
            new FetchFileChunk(file.Sha256, 12),
            new FileChunk(file.Sha256, 12, 40, 2_600_000, Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray()),
            new FileUnavailable(file.Sha256),
            GetStageStats.Instance,
            new StageStats(2, 1, "127.0.0.1:4001", 1_000, 3.5, 7.25, 0.93, 1L << 33, 1L << 20, 3),
            new StageReport(1_700_000_000_123, new StageStats(3, 2, "10.0.0.11:4053", 77, 1.5, 2.5, 0.5, 900, 800, 0), 2, remote),
            new PipelineReport(
                1_700_000_000_456, "job-1", 1_000, 990, 5, 1, 7, 3, 2, 0, 4, 12.5, 30.25, 48.0, 9,
                [new(0, local, "127.0.0.1:4001", "0..4", 1_000), new(1, remote, "10.1.2.3:4053", "5..9", 2_000)],
                [
                    new(1_700_000_000_000, "ingest", "plan epoch 9 live (recovery)", "job-1"),
                    new(1_700_000_000_001, "ingest", "frame 3 failed: ünïcødé", "job-1"),
                ]),
            new PipelineEvent(1_700_000_000_789, "supervisor", "worker 10.0.0.12:4053 unreachable; moving its stages"),
            jobSpec,
            new SubmitJob(jobSpec),
            new JobSubmitted("cam-1", "A job named cam-1 is already running; stop it first."),
            new StopJob("cam-1"),
            new JobStopping("cam-1", string.Empty),
            ListJobs.Instance,
            new JobList([jobStatus, jobStatus with { Name = "cam-2", State = JobStates.Failed, Plan = [], Detail = "ffmpeg: ünïcødé" }]),
            new RunJob(jobSpec, 1_234, 56),
            new HaltJob("cam-1"),
            new JobHostReport(local, [jobStatus], [jobSpec, jobSpec with { Name = "cam-2", Results = [] }]),
        ];
    }

    private static HostTensor Tensor(string name, DataType type, long[] shape, int seed)
    {
        var info = new Onnx.Graph.TensorInfo(name, type, shape);
        var data = new byte[info.Bytes];
        new Random(seed).NextBytes(data);
        if (type == DataType.Bool)
        {
            for (var i = 0; i < data.Length; i++)
            {
                data[i] &= 1;
            }
        }

        return new HostTensor(name, type, shape, data);
    }

    private static IEnumerable<IActorRef> ActorRefsIn(object? value) => value switch
    {
        null or string or byte[] or ReadOnlyMemory<byte> => [],
        IActorRef actor => [actor],
        IEnumerable items => items.Cast<object?>().SelectMany(ActorRefsIn),
        _ when value.GetType().IsPrimitive || value.GetType().IsEnum => [],
        _ => Properties(value.GetType()).SelectMany(p => ActorRefsIn(p.GetValue(value))),
    };

    private static IEnumerable<PropertyInfo> Properties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0);

    /// <summary>Records with list members compare lists by reference; this compares them element by element.</summary>
    private static void AssertStructurallyEqual(object? expected, object? actual, string path)
    {
        switch (expected)
        {
            case null:
                Assert.True(actual is null, $"{path}: expected null, got {actual}");
                return;
            case IActorRef expectedRef:
                var actualRef = Assert.IsAssignableFrom<IActorRef>(actual);
                var expectedText = $"{expectedRef.Path}#{expectedRef.Path.Uid}";
                Assert.True(expectedRef.Equals(actualRef), $"{path}: expected {expectedText}, got {actualRef.Path}#{actualRef.Path.Uid}");
                return;
            case ReadOnlyMemory<byte> expectedBytes:
                Assert.True(expectedBytes.Span.SequenceEqual(Assert.IsType<ReadOnlyMemory<byte>>(actual).Span), $"{path}: bytes differ");
                return;
            case string or double or float or long or int or bool or byte or Enum:
                Assert.True(expected.Equals(actual), $"{path}: expected {expected}, got {actual}");
                return;
            case IEnumerable expectedItems:
                var e = expectedItems.Cast<object?>().ToList();
                var a = Assert.IsAssignableFrom<IEnumerable>(actual).Cast<object?>().ToList();
                Assert.True(e.Count == a.Count, $"{path}: expected {e.Count} items, got {a.Count}");
                for (var i = 0; i < e.Count; i++)
                {
                    AssertStructurallyEqual(e[i], a[i], $"{path}[{i}]");
                }

                return;
        }

        Assert.NotNull(actual);
        Assert.Equal(expected.GetType(), actual.GetType());
        foreach (var property in Properties(expected.GetType()))
        {
            AssertStructurallyEqual(property.GetValue(expected), property.GetValue(actual), $"{path}.{property.Name}");
        }
    }
}

/// <summary>A control message as a node of another wire-format version would send it (test only).</summary>
public sealed record ForeignJobAccepted(string JobId);

/// <summary>Writes <see cref="ForeignJobAccepted"/> as a foreign version of <see cref="JobAccepted"/> (test only).</summary>
public sealed class ForeignVersionSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const byte Version = WireFormat.Version + 3;

    private readonly ControlSerializer _control = new(system);

    public override int Identifier => ControlSerializer.Id;

    public override string Manifest(object o) => _control.Manifest(new JobAccepted(((ForeignJobAccepted)o).JobId));

    public override byte[] ToBinary(object obj)
    {
        var bytes = _control.ToBinary(new JobAccepted(((ForeignJobAccepted)obj).JobId));
        bytes[0] = Version;
        return bytes;
    }

    public override object FromBinary(byte[] bytes, string manifest) => throw new NotSupportedException("Test serializer: writes only.");
}
