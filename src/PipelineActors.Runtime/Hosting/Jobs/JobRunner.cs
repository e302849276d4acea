using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using PipelineActors.Onnx.Graph;
using PipelineActors.Onnx.Proto;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.ControlPath.Planning;
using PipelineActors.Runtime.DataPath.Ingest;
using PipelineActors.Runtime.DataPath.Preprocessing;
using PipelineActors.Runtime.DataPath.Sink;
using PipelineActors.Runtime.DataPath.Sink.Decoders;
using PipelineActors.Runtime.DataPath.Sink.Destinations;
using PipelineActors.Runtime.DataPath.Sources;

namespace PipelineActors.Runtime.Hosting.Jobs;

/// <summary>What a job run needs from its node.</summary>
/// <param name="Supervisor">The supervisor singleton's proxy.</param>
/// <param name="Cache">The node's model cache (the job's whole model lands here by SHA-256).</param>
/// <param name="StagesFolder">Where the run writes the model's stage files, which the node serves to workers.</param>
/// <param name="Results">Where a job's result destinations report trouble, with the node's MQTT settings.</param>
public sealed record JobRunContext(PipelineSettings Settings, IActorRef Supervisor, ModelCache Cache, string StagesFolder, Func<string,
    ResultContext> Results)
{
    /// <summary>What an in-process harness changes in a job's runs (<c>pipeline run</c>); empty on a service node.</summary>
    public JobRunHookTable Hooks { get; init; } = new();
}

/// <summary>A run's status for its host (a child's word to its parent, never remote).</summary>
internal sealed record RunStatus(JobStatus Status, bool Over, bool Restartable) : INoSerializationVerificationNeeded;

/// <summary>
/// One run of one job on an ingest node: fetches the model (unless cached), cuts it for the cluster's workers, opens the
/// source and the result destinations, and streams through an <see cref="IngestSession"/> whose actors are its children
/// (they stop with it). It tells its host where it stands every second and when it ends.
/// </summary>
public sealed class JobRunner : ReceiveActor, IWithTimers
{
    private const int MaxParts = 8;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RunJob _run;
    private readonly JobRunContext _context;
    private readonly string _node;
    private readonly string _names;
    private readonly JobRunHooks? _hooks;
    private IngestSession? _session;
    private JobStatus _status;
    private bool _halting;
    private bool _over;

    public JobRunner(RunJob run, JobRunContext context, int runNumber)
    {
        _run = run;
        _context = context;
        _node = NodeAddress.Of(Akka.Cluster.Cluster.Get(Context.System).SelfAddress);
        _names = $"{run.Spec.Name}-{runNumber}";
        _hooks = context.Hooks.For(run.Spec.Name);
        _status = new JobStatus(run.Spec.Name, JobStates.Starting, _node, 0, 0, run.SkippedBefore, 0, 0, 0, 0, run.FirstId - 1, [],
            "fetching the model", Now());

        Receive<FileFetched>(fetched =>
        {
            if (fetched.Error is null)
            {
                Prepare();
            }
            else
            {
                End(JobStates.Failed, $"the model could not be fetched: {fetched.Error}", restartable: true);
            }
        });
        Receive<Prepared>(OnPrepared);
        Receive<Status.Failure>(failure =>
        {
            _hooks?.StartFailed?.Invoke(failure.Cause);
            End(JobStates.Failed, Reason(failure.Cause), restartable: failure.Cause is not Onnx.PipelineInputException && Restartable);
        });
        ReceiveAsync<RunEnded>(async ended =>
        {
            // The last figures, after the last frame: what the host reports as the run's final word.
            await RefreshAsync(report: false);
            if (_hooks?.BeforeEnd is not null)
            {
                _context.Supervisor.Tell(new JobEnded(_run.Spec.Name));
            }

            End(_halting ? JobStates.Stopped : JobStates.Finished, ended.Detail, restartable: false);
        });
        Receive<RunFailed>(failed => End(JobStates.Failed, failed.Reason, restartable: Restartable));
        Receive<HaltJob>(_ => Halt());
        ReceiveAsync<StatusTick>(_ => RefreshAsync(report: true));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private bool Restartable => _hooks?.Restartable ?? true;

    public static Props Props(RunJob run, JobRunContext context, int runNumber) =>
        Akka.Actor.Props.Create(() => new JobRunner(run, context, runNumber));

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("status", StatusTick.Instance, TimeSpan.FromSeconds(1));
        if (_context.Cache.Has(_run.Spec.ModelSha256))
        {
            Prepare();
        }
        else
        {
            Context.ActorOf(FileFetcher.Props(_context.Cache, new StageFile(_run.Spec.ModelSha256, _run.Spec.ModelBytes), _run.Spec.ModelStore));
        }
    }

    /// <summary>Cuts the model and opens source and results off the actor's thread: cutting and measuring take seconds.</summary>
    private void Prepare()
    {
        _status = _status with { Detail = "cutting the model" };
        var spec = _run.Spec;
        var workers = Akka.Cluster.Cluster.Get(Context.System).State.Members.Count(m => m.HasRole(Roles.Worker) && m.Status == MemberStatus.Up);
        var context = _context;
        var firstId = _run.FirstId;
        var hooks = _hooks;
        Task.Run(() => Prepared.Make(spec, context, Math.Clamp(workers, 1, MaxParts), firstId, hooks)).PipeTo(Self);
    }

    private void OnPrepared(Prepared prepared)
    {
        foreach (var hop in prepared.Choice?.Hops ?? [])
        {
            _log.Info("Job {0}: hop {1} of the {2}-part split: {3} ({4})", _run.Spec.Name, hop.Hop + 1, hop.Parts, hop.Codec, hop.Reason);
        }

        if (_halting)
        {
            prepared.Dispose();
            End(JobStates.Stopped, "stopped before it ran", restartable: false);
            return;
        }

        try
        {
            IngestSession.CheckFits(Context.System, prepared.Model.Splits, _context.Settings.MaximumFrameSize);
        }
        catch (Onnx.PipelineInputException e)
        {
            prepared.Dispose();
            _hooks?.StartFailed?.Invoke(e);
            End(JobStates.Failed, Reason(e), restartable: false);
            return;
        }

        var settings = new IngestSettings(
            _run.Spec.Window > 0 ? _run.Spec.Window : Math.Max(2, prepared.Model.Splits.Max(s => s.Parts) + 1),
            _context.Settings.Ingest.MinDeadline,
            _context.Settings.Ingest.MaxAttempts,
            _context.Settings.ChunkBytes)
        {
            FirstId = prepared.FirstId,
            MaxCrashes = _context.Settings.Ingest.MaxCrashes,
        };
        settings = _hooks?.Ingest?.Invoke(settings) ?? settings;
        if (_hooks?.BeforeEnd is not null)
        {
            settings = settings with { EndsJob = false }; // the stages stay until the harness has read them; the runner ends the job
        }

        var session = IngestSession.Start(Context, _context.Supervisor, prepared.Model, prepared.Source, prepared.Results, settings,
            _run.Spec.Name, _names);
        _session = session;
        _status = _status with { State = JobStates.Running, LastId = prepared.FirstId - 1, Detail = string.Empty };
        _hooks?.Started?.Invoke(session);
        var beforeEnd = _hooks?.BeforeEnd;
        Ended(session, beforeEnd, prepared.FirstId).PipeTo(Self);
        Report();
    }

    /// <summary>How the session ended, once the harness's <see cref="JobRunHooks.BeforeEnd"/> (if any) has read what it needs.</summary>
    private static async Task<object> Ended(IngestSession session, Func<IngestSession, Task>? beforeEnd, long firstId)
    {
        try
        {
            var frames = await session.Completed;
            if (beforeEnd is not null)
            {
                await beforeEnd(session);
            }

            return new RunEnded($"{frames - firstId} frames");
        }
        catch (Exception e)
        {
            return new RunFailed(Reason(e.GetBaseException()));
        }
    }

    private void Halt()
    {
        if (_halting || _over)
        {
            return;
        }

        _halting = true;
        _status = _status with { State = JobStates.Stopping };
        if (_session is null)
        {
            if (_status.Detail != "cutting the model")
            {
                End(JobStates.Stopped, "stopped before it ran", restartable: false);
            }

            return; // the cut in progress ends in OnPrepared
        }

        _session.Ingest.Tell(EndSource.Instance);
        Report();
    }

    private async Task RefreshAsync(bool report)
    {
        if (_session is { } session && !_over)
        {
            try
            {
                var ingest = await session.IngestStatsAsync();
                var sink = await session.SinkCountersAsync();
                var seconds = Math.Max(1e-9, (sink.LastDeliveryTicks - sink.FirstDeliveryTicks) / (double)System.Diagnostics.Stopwatch.Frequency);
                _status = _status with
                {
                    FramesIn = ingest.Accepted - _run.FirstId,
                    ResultsOut = sink.Delivered,
                    Skipped = _run.SkippedBefore + ingest.Skipped,
                    Failed = sink.Failed,
                    FramesPerSecond = sink.Delivered > 1 ? Math.Round((sink.Delivered - 1) / seconds, 2) : 0,
                    LatencyP50Ms = sink.RecentLatencyMs[0],
                    LatencyP95Ms = sink.RecentLatencyMs[1],
                    LastId = ingest.Accepted - 1,
                    Plan = ingest.Plan?.Placements.Select(p => $"stage {p.Index}: {p.Node} layers {p.Layers}").ToList() ?? [],
                };
            }
            catch (AskTimeoutException)
            {
                // A busy or stopping session: the last figures stand.
            }
        }

        if (report)
        {
            Report();
        }
    }

    private void End(string state, string detail, bool restartable)
    {
        if (_over)
        {
            return;
        }

        _over = true;
        _status = _status with { State = state, Detail = detail };
        if (state == JobStates.Failed)
        {
            _log.Warning("Job {0} failed: {1}", _run.Spec.Name, detail);
        }

        Report(restartable);
        Context.Stop(Self);
    }

    private void Report(bool restartable = false) =>
        Context.Parent.Tell(new RunStatus(_status with { UpdatedUnixMs = Now() }, _over, restartable));

    // A reason becomes the job's status detail, an event and a log line: a camera URL in it loses its credentials.
    private static string Reason(Exception e) => DataPath.Sources.SourceCredentials.Redact(e.Message.Split('\n')[0].TrimEnd('.'));

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private sealed record RunEnded(string Detail);

    private sealed record RunFailed(string Reason);

    private sealed class StatusTick
    {
        public static readonly StatusTick Instance = new();
    }

    /// <summary>What a run streams with: the cut model, the open source and results, and the first frame id.</summary>
    private sealed record Prepared(PreparedModel Model, IFrameSource Source, IResultWriter Results, long FirstId) : IDisposable
    {
        /// <summary>With a fidelity budget: the codec each hop got and why (logged when the run starts).</summary>
        public CodecChoiceReport? Choice { get; init; }

        public static Prepared Make(JobSpec spec, JobRunContext context, int maxParts, long firstId, JobRunHooks? hooks)
        {
            var modelPath = context.Cache.PathOf(spec.ModelSha256);
            var profile = string.IsNullOrWhiteSpace(spec.ProfileJson) ? null
                : ModelProfile.Parse(spec.ProfileJson, $"the profile of job {spec.Name}");
            var synthetic = spec.Source.StartsWith("synthetic", StringComparison.Ordinal);
            if (profile is null && !synthetic)
            {
                throw new Onnx.PipelineInputException(
                    $"Source '{DataPath.Sources.SourceCredentials.Redact(spec.Source)}' needs the model's profile; "
                    + "submit the model with its .profile.json beside it.");
            }

            var overrides = InputSizes.ParseOverrides(spec.InputSizes);
            var sizes = overrides.Count > 0 || profile is null ? overrides : new Dictionary<string, long[]> { [profile.Input] = profile.Shape };
            var model = hooks?.Model ?? JobBuilder.Prepare(
                modelPath,
                sizes,
                maxParts,
                Path.Combine(context.StagesFolder, spec.ModelSha256[..16]),
                JobBuilder.MeasuredBalance(context.Settings.IntraOpThreads),
                normalisation: profile?.FirstStageNormalisation(),
                expectedSha256: spec.ModelSha256);
            var results = ResultDestinations.Open(spec.Results, spec.Name, context.Results(spec.Name) with
            {
                Decoder = profile?.Decoder is { } decoder ? DecoderRegistry.Get(decoder) : null,
                DecodeContext = profile is null ? null : new DecodeContext(profile.Width, profile.Height, profile.Width, profile.Height),
            });
            var lastWritten = results.LastWrittenId;
            var writer = hooks?.Results?.Invoke(results) ?? results;

            // Numbering goes on after the registry's last id and after the last result already written, whichever is later.
            var first = Math.Max(firstId, (lastWritten ?? -1) + 1);
            var frames = spec.Frames > 0 ? Math.Max(0, spec.Frames - first) : long.MaxValue;
            IFrameSource Open(double framesPerSecond, long count, long skip)
            {
                if (synthetic || profile is null)
                {
                    // A synthetic job plays like a clip at its rate: it waits for the pipeline rather than dropping frames,
                    // and resumes where its last run stopped (each frame's pattern is its id's).
                    return new LimitedSource(new SyntheticSource(model.SourceInputs, framesPerSecond, live: false), count, skip);
                }

                var uint8 = model.SourceInputs.Any(t => t.ElementType == TensorProto.Types.DataType.Uint8);
                var options = new FrameSourceOptions(Uint8Pixels: uint8, FramesPerSecond: framesPerSecond > 0 ? framesPerSecond : null);
                return new LimitedSource(SourceSpec.Parse(spec.Source, profile, options), count, skip);
            }

            CodecChoiceReport? choice = null;
            if (CutCodecChoice.TryBudget(spec.Codec, out var budget))
            {
                if (hooks?.Model is null) // a harness's own cut comes with its codecs chosen already
                {
                    // A service does not know its links ahead (the nodes a split lands on change with membership), so each
                    // hop gets the smallest codec within the budget.
                    using var calibration = Open(0, CutCodecPlan.DefaultCalibrationFrames, 0);
                    (model, var chosen) = CutCodecChoice.Apply(
                        model, budget, calibration, CutCodecPlan.DefaultCalibrationFrames, (_, _) => null, profile, context.Settings.IntraOpThreads);
                    choice = chosen;
                }
            }
            // a harness's own cut comes calibrated already
            else if (CutCodecPlan.Parse(spec.Codec) is { ChangesTheWire: true } codec && hooks?.Model is null)
            {
                // Calibrated on the job's source opened a second time, from its start, as pipeline run does.
                using var calibration = Open(0, CutCodecPlan.DefaultCalibrationFrames, 0);
                model = CutLayerPlan.Apply(model, codec, calibration, CutCodecPlan.DefaultCalibrationFrames, context.Settings.IntraOpThreads);
            }

            // After the cut codecs (their plan sets every stage's decodes afresh), and on a harness's own cut too.
            model = FirstHopPlan.Apply(model, Transfer.FirstHop.Parse(spec.FirstHop), profile);

            // A clip resumes where its last run stopped; a camera's frames in between are gone (and counted as skipped).
            var source = hooks?.Source is { } open
                ? open(model)
                : Open(spec.FramesPerSecond, frames, synthetic || profile is null || !ControlPath.Jobs.JobBook.IsLiveCamera(spec) ? first : 0);

            return new Prepared(model, source, writer, first) { Choice = choice };
        }

        public void Dispose()
        {
            Source.Dispose();
            Results.Dispose();
        }
    }
}
