"""The Ray engine's driver: start the actors, step the camera workers, write every output.

:func:`run_ray` takes the same config and writes the same run folder as
:func:`pipeline.engine.run_pipeline`: ``tracks.csv``, ``mot/``, ``crops/``, ``identity_events.csv`` as the
run goes, then the final ids, identities, review page and gallery. Cameras are split into ``workers``
groups (round robin); each group is a :class:`~pipeline.distributed.worker.CameraWorker` actor, restarted by
Ray up to ``max_restarts`` times when its process dies, and resumed where the driver's outputs end. One
:class:`~pipeline.distributed.service.IdentityService` actor links every camera; Ray restarts it too, from
its last checkpoint (``checkpoint_s``), and retries the calls it missed.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from configs import ConfigError
from configs.schema import PipelineConfig
from pipeline.distributed.embedder import EmbedService
from pipeline.distributed.service import IdentityService
from pipeline.distributed.worker import CameraWorker, StepResult
from pipeline.durable import atomic_open, ctrl_c_deferred, write_text
from pipeline.engine import _progress_bars, _videos, prepare_sources, run_summary, settled, write_identities
from pipeline.identity.outputs import read_tracks
from pipeline.identity.record import IdentityRecord
from pipeline.identity.tracklets import Tracklet
from pipeline.records import tracklet_ids_of
from pipeline.sinks import EventsWriter, RunOutputs
from pipeline.sources import SourceInfo

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"


@dataclass
class RayRun:
    """The driver's view of a running Ray engine (what hooks and tests see)."""

    workers: list[Any]
    groups: list[list[str]]
    service: Any
    frames_done: dict[str, int]
    restarts: list[int]
    steps: int = 0
    next_index: dict[str, int] = field(default_factory=dict)
    max_track: dict[str, int] = field(default_factory=dict)
    max_tracklet: list[int] = field(default_factory=list)


Hook = Callable[[RayRun, int, StepResult], None]


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """ConfigError unless ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) accepts a TCP connection."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address: expected HOST:PORT of a Ray cluster's head (as 10.0.0.5:6379), got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--address {address}: no Ray head reachable there ({exc}); start one with `ray start --head` "
            f"or leave --address out for a local cluster"
        ) from exc


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a local cluster (``num_cpus`` CPUs); a no-op when already connected."""
    import ray

    if address is not None:
        check_address(address)
    if ray.is_initialized():
        return
    if address is not None:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)


def camera_groups(camera_ids: list[str], workers: int) -> list[list[str]]:
    """``workers`` round-robin groups of the cameras (fewer when there are fewer cameras)."""
    if workers < 1:
        raise ConfigError(f"--workers: expected an int >= 1, got {workers}")
    n = min(workers, len(camera_ids))
    return [camera_ids[i::n] for i in range(n)]


def run_ray(
    config: PipelineConfig,
    out_dir: Path,
    *,
    address: str | None = None,
    workers: int = 2,
    progress: bool = True,
    infos: dict[str, SourceInfo] | None = None,
    checkpoint_s: float = 10.0,
    max_restarts: int = 3,
    frames_per_step: int = 32,
    hook: Hook | None = None,
    restart_timeout_s: float = 60.0,
    shared_embedder: bool = False,
    group_frames: int = 16,
) -> dict[str, Any]:
    """Run ``config`` on Ray (see the module docstring); returns the summary (also in ``summary.json``).

    ``frames_per_step``: camera frames a worker returns per call; ``group_frames``: camera frames whose
    updates a worker sends the identity service in one call; ``hook(run, worker, result)`` is called after
    each step's results reached the sinks (tests use it to kill processes mid-run).
    """
    import ray
    from ray.exceptions import RayActorError

    out_dir = Path(out_dir)
    infos = prepare_sources(config) if infos is None else infos
    init_ray(address)
    groups = camera_groups([c.id for c in config.cameras], workers)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    options = {"max_restarts": max_restarts, "max_task_retries": 0, "num_cpus": min(1.0, cpus / (len(groups) + 1))}
    worker_cls = ray.remote(CameraWorker).options(**options)
    embed_service, embed_dim = None, None
    if shared_embedder and config.embed is not None:
        gpu = {"num_gpus": 1} if ray.cluster_resources().get("GPU", 0) >= 1 else {"num_cpus": 0}
        embed_service = ray.remote(EmbedService).options(max_restarts=-1, max_task_retries=-1, **gpu).remote(config)
        embed_dim = ray.get(embed_service.embedding_dim.remote())
    handles = [worker_cls.remote(config, g, infos, i, len(groups), embed_service=embed_service, embed_dim=embed_dim,
                                 group_frames=group_frames) for i, g in enumerate(groups)]  # fmt: skip
    dims = ray.get([h.embedding_dim.remote() for h in handles])
    service = None
    if dims[0] is not None:
        service_cls = ray.remote(IdentityService).options(max_restarts=-1, max_task_retries=-1, num_cpus=0)
        service = service_cls.remote(dims[0], [c.id for c in config.cameras], config.linking,
                                     str(out_dir / CHECKPOINT_DIR), checkpoint_s)  # fmt: skip
    cams = [c.id for c in config.cameras]
    run = RayRun(handles, groups, service, dict.fromkeys(cams, 0), [0] * len(groups),
                 max_tracklet=[-1] * len(groups))  # fmt: skip
    rates = {c.id: (infos[c.id].fps or 25.0) / c.stride for c in config.cameras}
    live = frozenset(cid for cid in cams if infos[cid].live)
    if config.outputs.video and live:
        log.warning("--engine ray: live cameras %s are not recorded for the annotated videos", sorted(live))
    outputs = RunOutputs(
        out_dir, rates, mot=config.outputs.mot, video=False, crops=config.outputs.crops,
        crop_every=config.outputs.crop_every, crop_min_height=config.outputs.crop_min_height,
        events=service is not None,
    )  # fmt: skip
    bars = _progress_bars(config, infos, progress)
    track_ids: dict[str, set[int]] = {cid: set() for cid in cams}
    health: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    replica, cursor, update_bytes, failed = IdentityRecord(), 0, 0, {}
    interrupted, started = False, time.perf_counter()
    ray.get([h.start.remote(service) for h in handles])
    pending = {h.step.remote(frames_per_step): i for i, h in enumerate(handles)}

    def poll_events() -> None:
        nonlocal cursor
        if service is None:
            return
        events, cursor = ray.get(service.events_since.remote(cursor))
        replica.apply(events)
        outputs.events.append(events)

    def sink(i: int, result: StepResult) -> None:
        nonlocal update_bytes
        for frame, dets in result.frames:
            outputs.append(frame, dets)
            cid = frame.camera_id
            run.frames_done[cid] += 1
            run.next_index[cid] = max(run.next_index.get(cid, 0), frame.index + 1)
            if len(dets):
                track_ids[cid].update(dets.tracker_id.tolist())
                run.max_track[cid] = max(run.max_track.get(cid, 0), int(dets.tracker_id.max()))
                tracklets = tracklet_ids_of(dets)
                if tracklets is not None:
                    run.max_tracklet[i] = max(run.max_tracklet[i], int(tracklets.max()))
            bars[cid].update(1)
        if outputs.crops is not None:
            outputs.crops.write(result.crops)
        for stage, s in result.seconds.items():
            seconds[stage] = seconds.get(stage, 0.0) + s
        update_bytes += result.update_bytes
        health.update(result.health)
        outputs.flush()

    def restart(i: int, exc: Exception) -> bool:
        """Start worker ``i`` again where the outputs end; False when Ray gave up on it."""
        run.restarts[i] += 1
        resume = {cid: run.next_index.get(cid, 0) for cid in groups[i]}
        log.warning("camera worker %d (%s) died (%s); restarting it at frames %s", i, ", ".join(groups[i]),
                    type(exc).__name__, resume)  # fmt: skip
        seen = ray.get(service.max_track_ids.remote()) if service is not None else {}
        offsets = {cid: max(run.max_track.get(cid, 0), seen.get(cid, 0)) + 1 for cid in groups[i]}
        first = run.max_tracklet[i] // len(groups) + 1
        deadline, wait, why = time.monotonic() + restart_timeout_s, 0.1, None
        while run.restarts[i] <= max_restarts and time.monotonic() < deadline:
            try:  # queued until Ray has restarted the actor; "unavailable" while it is restarting
                ray.get(handles[i].start.remote(service, resume, offsets, first))
                log.info("camera worker %d restarted", i)
                return True
            except RayActorError as again:
                why = again
                time.sleep(wait)
                wait = min(2 * wait, 2.0)
        for cid in groups[i]:
            failed[cid] = f"camera worker {i} died and was not restarted ({type(why).__name__ if why else 'too many'})"
        log.error("camera worker %d could not be restarted; its cameras %s stop", i, groups[i])
        return False

    try:
        with outputs:
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    i = pending.pop(ready[0])
                    try:
                        result: StepResult = ray.get(ready[0])
                    except RayActorError as exc:
                        if restart(i, exc):
                            pending[handles[i].step.remote(frames_per_step)] = i
                        continue
                    sink(i, result)
                    run.steps += 1
                    if hook is not None:
                        hook(run, i, result)
                    poll_events()
                    if not result.done:
                        pending[handles[i].step.remote(frames_per_step)] = i
            except KeyboardInterrupt:
                interrupted = True
                log.warning("interrupted: stopping the camera workers and flushing their last frames")
                with ctrl_c_deferred("the run's outputs"):
                    _drain(handles, pending, sink, frames_per_step)
            with ctrl_c_deferred("the run's outputs"):
                poll_events()
    finally:
        for bar in bars.values():
            bar.close()
    with ctrl_c_deferred("the run's outputs"):
        wall = time.perf_counter() - started
        summary = _summary(config, out_dir, run, track_ids, health, seconds, wall, interrupted, outputs, failed)
        summary["engine"] = {
            "kind": "ray", "workers": len(groups), "groups": groups, "worker_restarts": run.restarts,
            "update_bytes": update_bytes, "update_bytes_per_frame": round(update_bytes / max(summary["frames"], 1), 1),
        }  # fmt: skip
        thresholds = ray.get([h.thresholds.remote() for h in handles if _alive(h)])
        for t in thresholds:
            for cid, values in t.items():
                summary["cameras"][cid]["tracker_thresholds"] = values
        if embed_service is not None:
            summary["engine"]["shared_embedder"] = ray.get(embed_service.counters.remote())
        if service is not None:
            summary["identities"] = _finish(config, out_dir, run, service, replica, outputs.events.path)
            summary["engine"]["identity_service"] = ray.get(service.stats.remote())
        write_text(out_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    if config.outputs.video:
        summary["videos"] = _videos(config, run.frames_done, out_dir, interrupted, progress)
        write_text(out_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    for h in handles:
        ray.kill(h)
    for actor in (service, embed_service):
        if actor is not None:
            ray.kill(actor)
    return summary


def _alive(handle: Any) -> bool:
    import ray
    from ray.exceptions import RayActorError

    try:
        ray.get(handle.pid.remote(), timeout=30)
    except (RayActorError, ray.exceptions.GetTimeoutError):
        return False
    return True


def _drain(handles: list, pending: dict, sink: Callable, frames_per_step: int) -> None:
    """After Ctrl-C: stop every worker's readers and sink what they still hold."""
    import ray
    from ray.exceptions import RayActorError

    for h in handles:
        h.stop.remote()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except RayActorError:
            continue
        sink(i, result)
        if not result.done:
            pending[handles[i].step.remote(frames_per_step)] = i


def _finish(
    config: PipelineConfig, out_dir: Path, run: RayRun, service: Any, replica: IdentityRecord, events_path: Path
) -> dict[str, Any]:
    """Final ids from the identity service into every output; the events file made to replay to them."""
    import ray

    conclusion = ray.get(service.conclude.remote(config.linking.offline))
    if ray.get(service.stats.remote())["restarts"]:  # tracklets of the interval its restart lost
        conclusion = _with_orphans(conclusion, out_dir / "tracks.csv")
    conclusion = settled(conclusion, out_dir)
    events, _ = ray.get(service.events_since.remote(len(replica.events)))
    replica.apply(events)
    replica.assign_all(conclusion["mapping"])  # what a restart of the service lost: corrected here
    last = max((t.last_timestamp for t in conclusion["tracklets"]), default=0.0)
    with EventsWriter(events_path, append=True) as writer:
        writer.append(events + replica.publish(last))
    with atomic_open(out_dir / "gallery.npz", "wb") as fh:
        fh.write(ray.get(service.gallery_file.remote()))
    thumbs: dict = {}
    crops_embedded = 0
    for h in run.workers:
        if _alive(h):
            thumbs.update(ray.get(h.thumbnails.remote()))
            crops_embedded += ray.get(h.crops_embedded.remote())
    run_info = {
        "run folder": str(out_dir), "config": config.path, "engine": f"ray, {len(run.workers)} camera workers",
        "cameras": {cid: f"{n} frames" for cid, n in run.frames_done.items()},
        "ReID model": config.embed.weights if config.embed else None, "videos": config.outputs.video,
    }  # fmt: skip
    out = write_identities(out_dir, conclusion, thumbs, crops_embedded, run_info)
    out["events"] = len(replica.events)
    return out


def _with_orphans(conclusion: dict[str, Any], tracks_csv: Path) -> dict[str, Any]:
    """Tracklets the outputs hold but a restarted identity service lost (created in the interval after its
    last checkpoint) rejoin as box-only tracklets with the global id of their track's continuation: the
    service's next tracklet of the same camera and track (or -1 when the track ended in that interval).
    Their spans come from ``tracks.csv``, read once."""
    tracklets, mapping = list(conclusion["tracklets"]), dict(conclusion["mapping"])
    cams, values = read_tracks(tracks_csv)  # columns: frame, timestamp, track, global, x1..y2, conf, tracklet
    tids = values[:, 9].astype(np.int64)
    orphan_rows = np.flatnonzero((tids >= 0) & ~np.isin(tids, np.fromiter(mapping, np.int64, len(mapping))))
    if len(orphan_rows) == 0:
        return conclusion
    ids, counts = np.unique(tids[orphan_rows], return_counts=True)
    groups = np.split(orphan_rows[np.argsort(tids[orphan_rows], kind="stable")], np.cumsum(counts)[:-1])
    by_track: dict[tuple[str, int], list[Tracklet]] = {}
    for t in sorted(tracklets, key=lambda t: t.first_frame):
        by_track.setdefault((t.camera_id, t.track_id), []).append(t)
    for tid, rows, n in zip(ids.tolist(), groups, counts.tolist()):
        cam, track = str(cams[rows[0]]), int(values[rows[0], 2])
        first, last = int(values[rows, 0].min()), int(values[rows, 0].max())
        later = [t for t in by_track.get((cam, track), []) if t.first_frame >= first]
        gid = later[0].global_id if later else -1
        tracklets.append(Tracklet(tid, cam, track, first, last, float(values[rows, 1].min()),
                                  float(values[rows, 1].max()), n_boxes=n, global_id=gid))  # fmt: skip
        mapping[tid] = gid
    log.warning("%d tracklets from the identity service's lost interval rejoin their tracks' ids", len(ids))
    tracklets.sort(key=lambda t: t.tracklet_id)
    return {**conclusion, "tracklets": tracklets, "mapping": mapping}


def _summary(
    config: PipelineConfig, out_dir: Path, run: RayRun, track_ids: dict[str, set[int]], health: dict, seconds: dict,
    wall: float, interrupted: bool, outputs: RunOutputs, failed: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The same summary keys as the local engine's."""
    cameras = {}
    for cid, n in run.frames_done.items():
        h = health.get(cid, {})
        error = failed.get(cid) or h.get("error")
        gave_up = cid in failed or h.get("failed", False) or (n == 0 and not interrupted)
        if gave_up:
            failed.setdefault(cid, error or "never produced a frame")
        cameras[cid] = {
            "frames": n, "tracks": len(track_ids[cid]), "dropped": h.get("dropped", 0),
            "corrupt": h.get("corrupt", 0), "reconnects": h.get("reconnects", 0), "error": failed.get(cid, error),
            "disconnects": h.get("disconnects", 0), "frame_age_s": h.get("frame_age_s"), "failed": gave_up,
        }  # fmt: skip
    summary = run_summary(config, out_dir, cameras, track_ids, seconds, wall, interrupted, outputs)
    summary["failed_cameras"] = dict(failed)
    return summary

