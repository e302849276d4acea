using Akka.Actor;
using Akka.Event;
using PipelineActors.Runtime.ControlPath.ModelDistribution;
using PipelineActors.Runtime.DataPath.Link;
using PipelineActors.Protocol.Serialization;
using PipelineActors.Protocol;
using PipelineActors.Runtime.DataPath.Monitoring;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.DataPath.Stages;

/// <summary>
/// The worker role's resident actor (<c>/user/worker</c>): reports the node's capacity and the
/// stages it hosts to the supervisor every second (so a supervisor that moved rebuilds its view
/// from these reports), keeps stage files in the node's cache, and starts and stops stage actors.
/// </summary>
public sealed class WorkerAgent : ReceiveActor, IWithTimers
{
    public const string Name = "worker";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IActorRef _supervisor;
    private readonly ModelCache _cache;
    private readonly int _threads;
    private readonly int _chunkBytes;
    private readonly TimeSpan _linkDelay;
    private readonly Dictionary<(string JobId, int Parts, int Index), StageEntry> _stages = [];
    private readonly Dictionary<string, IActorRef> _fetching = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(DeployStage Request, IActorRef ReplyTo)>> _waitingForFile = new(StringComparer.Ordinal);

    public WorkerAgent(IActorRef supervisor, ModelCache cache, int intraOpThreads, int chunkBytes, TimeSpan linkDelay)
    {
        _supervisor = supervisor;
        _cache = cache;
        _threads = intraOpThreads;
        _chunkBytes = chunkBytes;
        _linkDelay = linkDelay;

        Receive<ReportStatus>(_ =>
        {
            var status = Status();
            _supervisor.Tell(status);
            MonitorTopic.Publish(Context.System, status);
        });
        Receive<PrefetchFiles>(p =>
        {
            if (!FromSupervisor(p, $"prefetch of {p.Files.Count} files for job {p.JobId}"))
            {
                return;
            }

            foreach (var file in p.Files)
            {
                EnsureFile(file, p.ModelStore);
            }
        });
        Receive<DeployStage>(deploy =>
        {
            if (FromSupervisor(deploy, $"deploy of stage {deploy.Spec.Index}/{deploy.Parts} of job {deploy.JobId}"))
            {
                Deploy(deploy);
            }
        });
        Receive<FileFetched>(OnFetched);
        Receive<FetcherStopped>(stopped =>
        {
            // A fetcher that crashed sent no FileFetched: its deploys fail now, with a reason, not at the deploy timeout.
            if (_fetching.TryGetValue(stopped.Sha256, out var fetcher) && fetcher.Equals(stopped.Fetcher))
            {
                OnFetched(new FileFetched(stopped.Sha256, _cache.Has(stopped.Sha256) ? null : "the file fetcher stopped before the file was cached"));
            }
        });
        Receive<StageReady>(ready =>
        {
            if (EntryOf(Sender) is { } entry)
            {
                entry.Ready = true;
                entry.WarmupMs = ready.WarmupMs;
                foreach (var (request, replyTo) in entry.Waiters)
                {
                    replyTo.Tell(new StageDeployed(request.JobId, request.Epoch, ready.Parts, ready.Index, entry.Actor, ready.WarmupMs));
                }

                entry.Waiters.Clear();
            }

            _supervisor.Tell(Status());
        });
        Receive<StageLoadFailed>(failed =>
        {
            if (KeyOf(Sender) is { } key && _stages.Remove(key, out var entry))
            {
                foreach (var (request, replyTo) in entry.Waiters)
                {
                    replyTo.Tell(new StageDeployFailed(request.JobId, request.Epoch, failed.Parts, failed.Index, failed.Reason));
                }
            }
        });
        Receive<StageWiredLocally>(wired =>
        {
            if (EntryOf(Sender) is { } entry)
            {
                entry.WiredEpoch = wired.Epoch;
            }
        });
        Receive<StopStage>(stop =>
        {
            if (!FromSupervisor(stop, $"stop of stage {stop.Index}/{stop.Parts} of job {stop.JobId}"))
            {
                return;
            }

            var key = (stop.JobId, stop.Parts, stop.Index);
            if (_stages.TryGetValue(key, out var entry) && (stop.Sha256.Length == 0 || stop.Sha256 == entry.Sha256) && _stages.Remove(key))
            {
                Context.Stop(entry.Actor);
            }
        });
        Receive<StageBroken>(broken =>
        {
            // Out of the reports at once: the supervisor sees the stage gone and places it again.
            if (KeyOf(Sender) is { } key && _stages.Remove(key))
            {
                _log.Warning("Stage {0}/{1} of job {2} broke and stops: {3}", key.Index, key.Parts, key.JobId, broken.Reason);
                _supervisor.Tell(Status());
            }
        });
        Receive<Terminated>(t =>
        {
            if (KeyOf(t.ActorRef) is { } key && _stages.Remove(key))
            {
                _log.Warning("Stage {0}/{1} of job {2} stopped unexpectedly", key.Index, key.Parts, key.JobId);
                _supervisor.Tell(Status());
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The agent's props; its stages add <paramref name="linkDelay"/> to what they send to remote actors.</summary>
    public static Props Props(IActorRef supervisor, ModelCache cache, int intraOpThreads, int chunkBytes, TimeSpan linkDelay = default) =>
        Akka.Actor.Props.Create(() => new WorkerAgent(supervisor, cache, intraOpThreads, chunkBytes, linkDelay));

    protected override void PreStart() => Timers.StartPeriodicTimer("status", ReportStatus.Instance, TimeSpan.Zero, TimeSpan.FromSeconds(1));

    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    /// <summary>
    /// Deploys, stops and prefetches come from the supervisor's node only: a peer that may reach this port must not make it
    /// fetch and load a model of its choosing, or stop the stages of a running job.
    /// </summary>
    private bool FromSupervisor(object message, string what)
    {
        if (MessageGuard.FromSupervisorNode(Context.System, Sender))
        {
            return true;
        }

        MessageGuard.Refuse(_log, "deploy-not-from-supervisor",
            $"worker: {what} ({message.GetType().Name}) from {Sender.Path}, not the supervisor's node");
        return false;
    }

    /// <summary>The key of the stage actor, if it is one of ours.</summary>
    private (string JobId, int Parts, int Index)? KeyOf(IActorRef stage) =>
        _stages.Where(kv => kv.Value.Actor.Equals(stage)).Select(kv => ((string, int, int)?)kv.Key).FirstOrDefault();

    private StageEntry? EntryOf(IActorRef stage) => KeyOf(stage) is { } key ? _stages[key] : null;

    /// <summary>
    /// A stage is the job's and the file's: a request for the same job and position with another file (the job was
    /// resubmitted with other weights) replaces the old stage instead of being answered with it (review R11).
    /// </summary>
    private void Deploy(DeployStage request)
    {
        var key = (request.JobId, request.Parts, request.Spec.Index);
        if (_stages.TryGetValue(key, out var stale) && stale.Sha256 != request.Spec.File.Sha256)
        {
            _stages.Remove(key);
            Context.Stop(stale.Actor);
        }

        if (_stages.TryGetValue(key, out var existing))
        {
            if (existing.Ready)
            {
                Sender.Tell(new StageDeployed(request.JobId, request.Epoch, request.Parts, request.Spec.Index, existing.Actor, 0));
            }
            else
            {
                existing.Waiters.Add((request, Sender));
            }

            return;
        }

        if (_cache.Has(request.Spec.File.Sha256))
        {
            StartStage(request, Sender);
            return;
        }

        if (!_waitingForFile.TryGetValue(request.Spec.File.Sha256, out var waiting))
        {
            _waitingForFile[request.Spec.File.Sha256] = waiting = [];
        }

        waiting.Add((request, Sender));
        EnsureFile(request.Spec.File, request.ModelStore);
    }

    private void StartStage(DeployStage request, IActorRef replyTo)
    {
        var key = (request.JobId, request.Parts, request.Spec.Index);
        if (_stages.TryGetValue(key, out var existing))
        {
            existing.Waiters.Add((request, replyTo));
            return;
        }

        var actor = Context.ActorOf(
            StageActor.Props(request.Parts, request.Spec, _cache, _threads, _chunkBytes, _linkDelay),
            $"stage-{request.Parts}-{request.Spec.Index}-{Guid.NewGuid():N}"[..32]);
        Context.Watch(actor);
        var entry = new StageEntry(actor, request.Spec.File.Sha256);
        entry.Waiters.Add((request, replyTo));
        _stages[key] = entry;
    }

    private void EnsureFile(StageFile file, IActorRef store)
    {
        if (_fetching.ContainsKey(file.Sha256) || _cache.Has(file.Sha256))
        {
            return;
        }

        var fetcher = Context.ActorOf(FileFetcher.Props(_cache, file, store));
        Context.WatchWith(fetcher, new FetcherStopped(file.Sha256, fetcher));
        _fetching[file.Sha256] = fetcher;
    }

    private void OnFetched(FileFetched fetched)
    {
        _fetching.Remove(fetched.Sha256);
        if (!_waitingForFile.Remove(fetched.Sha256, out var waiting))
        {
            return;
        }

        foreach (var (request, replyTo) in waiting)
        {
            if (fetched.Error is null)
            {
                StartStage(request, replyTo);
            }
            else
            {
                replyTo.Tell(new StageDeployFailed(request.JobId, request.Epoch, request.Parts, request.Spec.Index,
                    $"fetching the stage file failed: {fetched.Error}"));
            }
        }
    }

    private WorkerStatus Status() => new(
        Self,
        Environment.ProcessorCount,
        _threads,
        GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
        _cache.CachedHashes(),
        _stages.Where(kv => kv.Value.Ready).Select(kv => new HostedStage(kv.Key.JobId, kv.Key.Parts, kv.Key.Index, kv.Value.Actor,
            kv.Value.WiredEpoch, kv.Value.Sha256)).ToList());

    private sealed class StageEntry(IActorRef actor, string sha256)
    {
        public IActorRef Actor { get; } = actor;

        public string Sha256 { get; } = sha256;

        public bool Ready { get; set; }

        public double WarmupMs { get; set; }

        public long WiredEpoch { get; set; } = -1;

        public List<(DeployStage Request, IActorRef ReplyTo)> Waiters { get; } = [];
    }

    private sealed class ReportStatus
    {
        public static readonly ReportStatus Instance = new();
    }
}
