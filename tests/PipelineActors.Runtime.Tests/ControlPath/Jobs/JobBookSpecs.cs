using Akka.Actor;
using PipelineActors.Protocol;
using PipelineActors.Runtime.ControlPath.Jobs;

namespace PipelineActors.Runtime.Tests.ControlPath.Jobs;

/// <summary>The job registry's decisions with no actor in the way: submissions, placement, moves, stops and two hosts claiming one job.</summary>
public sealed class JobBookSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly DateTime T0 = new(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc);

    private readonly JobBook _book = new();
    private readonly JobHostView _a;
    private readonly JobHostView _b;

    public JobBookSpecs()
    {
        _a = new JobHostView(CreateTestProbe().Ref, "10.0.0.20:4053", T0);
        _b = new JobHostView(CreateTestProbe().Ref, "10.0.0.21:4053", T0);
    }

    [Fact]
    public void A_job_with_a_bad_name_or_a_name_in_use_is_refused_and_the_same_job_again_changes_nothing()
    {
        Assert.Contains("not valid", _book.Submit(Spec("cam 1"), T0), StringComparison.Ordinal);
        Assert.Null(_book.Submit(Spec("cam1"), T0));
        Assert.Null(_book.Submit(Spec("cam1"), T0)); // a retried submit
        Assert.Contains("stop it first", _book.Submit(Spec("cam1") with { Source = "rtsp://10.0.0.9/other" }, T0), StringComparison.Ordinal);
        Assert.Equal(JobStates.Starting, _book.Find("cam1")!.Status.State);
    }

    [Fact]
    public void Jobs_go_to_the_host_with_the_fewest_and_a_named_node_waits_until_it_reports()
    {
        _book.Submit(Spec("one"), T0);
        _book.Submit(Spec("two"), T0);
        _book.Submit(Spec("pinned") with { IngestNode = "10.0.0.99:4053" }, T0);

        var runs = _book.Place([_a, _b], T0);

        Assert.Equal(2, runs.Count);
        Assert.NotEqual(runs[0].Host, runs[1].Host);
        Assert.All(runs, r => Assert.Equal(0, r.Run.FirstId));
        Assert.Equal("waiting for ingest node 10.0.0.99:4053", _book.Find("pinned")!.Status.Detail);
        Assert.Empty(_book.Place([_a, _b], T0.AddSeconds(1))); // placed jobs are not placed again
    }

    [Fact]
    public void A_camera_job_that_loses_its_host_moves_and_numbers_on_after_the_frames_it_missed_which_count_as_skipped()
    {
        _book.Submit(Spec("door"), T0);
        var first = Assert.Single(_book.Place([_a], T0));
        _book.Report(_a, [Running("door", lastId: 99, framesIn: 100)], [], IsLive);

        _book.HostLost(_a.Host, T0.AddSeconds(10));
        Assert.Equal(JobStates.Starting, _book.Find("door")!.Status.State);
        var moved = Assert.Single(_book.Place([_b], T0.AddSeconds(12)));

        // 2 s away at 10 frames/s: 20 frames nobody received, numbered past and counted as skipped.
        Assert.Equal(_b.Host, moved.Host);
        Assert.Equal((120L, 20L), (moved.Run.FirstId, moved.Run.SkippedBefore));
        Assert.Equal(_a.Host, first.Host);

        // The new run's counters add to the old run's.
        _book.Report(_b, [Running("door", lastId: 130, framesIn: 11) with { Skipped = 20 }], [], IsLive);
        var status = _book.Find("door")!.Status;
        Assert.Equal((111L, 20L, 130L, "10.0.0.21:4053"), (status.FramesIn, status.Skipped, status.LastId, status.Node));
    }

    [Fact]
    public void A_clip_resumes_after_its_last_id_and_a_local_camera_waits_for_its_own_node()
    {
        _book.Submit(Spec("clip") with { Source = "video:/data/line.mp4" }, T0);
        _book.Submit(Spec("usb") with { Source = "v4l2:/dev/video0" }, T0);
        _book.Place([_a], T0);
        _book.Report(_a, [Running("clip", lastId: 41, framesIn: 42), Running("usb", lastId: 9, framesIn: 10)], [], IsLive);

        _book.HostLost(_a.Host, T0.AddSeconds(5));
        var runs = _book.Place([_b], T0.AddSeconds(6));

        var clip = Assert.Single(runs);
        Assert.Equal(("clip", 42L, 0L), (clip.Run.Spec.Name, clip.Run.FirstId, clip.Run.SkippedBefore));
        Assert.Equal("waiting for ingest node 10.0.0.20:4053", _book.Find("usb")!.Status.Detail); // its camera is there
        var back = Assert.Single(_book.Place([_b, _a], T0.AddSeconds(20)));
        Assert.Equal(("usb", _a.Host), (back.Run.Spec.Name, back.Host));
    }

    [Fact]
    public void A_second_host_running_a_job_placed_elsewhere_is_told_to_halt_and_an_unknown_job_is_adopted_from_its_host()
    {
        _book.Submit(Spec("door"), T0);
        Assert.Equal(_a.Host, Assert.Single(_book.Place([_a], T0)).Host);

        Assert.Equal(["door"], _book.Report(_b, [Running("door", 5, 6)], [Spec("door")], IsLive));

        // A registry that lost its state learns what runs from the hosts.
        var adopted = _book.Report(_b, [Running("gate", 7, 8)], [Spec("gate")], IsLive);
        Assert.Empty(adopted);
        Assert.Equal((JobStates.Running, _b.Host), (_book.Find("gate")!.Status.State, _book.Find("gate")!.Host));
    }

    [Fact]
    public void Stopping_an_unknown_job_is_refused_a_job_nobody_runs_stops_at_once_and_a_running_one_is_stopping_until_its_host_says()
    {
        Assert.Contains("There is no job named x", _book.Stop("x", T0), StringComparison.Ordinal);
        _book.Submit(Spec("idle") with { IngestNode = "10.0.0.99:4053" }, T0);
        _book.Submit(Spec("busy"), T0);
        _book.Place([_a], T0);
        _book.Report(_a, [Running("busy", 3, 4)], [], IsLive);

        Assert.Null(_book.Stop("idle", T0));
        Assert.Null(_book.Stop("busy", T0));

        Assert.Equal(JobStates.Stopped, _book.Find("idle")!.Status.State);
        Assert.Equal(JobStates.Stopping, _book.Find("busy")!.Status.State);
        _book.Report(_a, [Running("busy", 3, 4)], [], IsLive);
        Assert.Equal(JobStates.Stopping, _book.Find("busy")!.Status.State); // still draining
        _book.Report(_a, [Running("busy", 5, 6) with { State = JobStates.Stopped }], [], IsLive);
        Assert.Equal(JobStates.Stopped, _book.Find("busy")!.Status.State);
        Assert.Contains("already", _book.Stop("busy", T0), StringComparison.Ordinal);
        Assert.Empty(_book.Place([_a], T0.AddSeconds(5)));
    }

    private bool IsLive(IActorRef host) => host.Equals(_a.Host) || host.Equals(_b.Host);

    private static JobSpec Spec(string name) => new(
        name, new string('c', 64), "model.onnx", 1_000, string.Empty, "rtsp://10.0.0.9/stream", [], [], 0, 10, 0, string.Empty, ActorRefs.Nobody);

    private static JobStatus Running(string name, long lastId, long framesIn) =>
        new(name, JobStates.Running, string.Empty, framesIn, framesIn, 0, 0, 10, 20, 30, lastId, [], string.Empty, 0);
}
