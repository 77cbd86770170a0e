"""The streaming loop: readers → batched detection → per-camera tracking → sinks, with timing.

:func:`run_pipeline` is what ``python -m pipeline.run`` calls; tests call it directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
from tqdm import tqdm

from configs.schema import EmbedConfig, PipelineConfig
from detectors.boxes import clip_boxes, valid_boxes
from pipeline.durable import ctrl_c_deferred, write_text
from pipeline.identity.gallery import Gallery
from pipeline.identity.outputs import save_tracklets, settle_identities, write_identity_outputs
from pipeline.identity.stage import IdentityStage
from pipeline.identity.tracklets import TrackletNumbers
from pipeline.latency import FrameAges
from pipeline.overlap import BatchGroups, OverlappedStage, ungrouped
from pipeline.records import Frame, empty_detections, with_tracklet_ids
from pipeline.render import render_videos
from pipeline.sinks import EventsWriter, RunOutputs
from pipeline.sources import CameraReader, FrameBatcher, SourceInfo, check_roi, probe
from pipeline.tracking import build_trackers
from pipeline.video import h264_available
from reid.console import end_summary, progress

log = logging.getLogger(__name__)


@dataclass
class StageClock:
    """Accumulated seconds per stage."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now


def sanitize(detections: sv.Detections, width: int, height: int) -> sv.Detections:
    """Clip boxes to the image and drop non-finite or empty ones (whatever a detector returned)."""
    if len(detections) == 0:
        return detections
    xyxy = np.asarray(detections.xyxy, dtype=np.float32)
    finite = np.isfinite(xyxy).all(axis=1)
    xyxy = clip_boxes(np.nan_to_num(xyxy), width, height)
    keep = finite & valid_boxes(xyxy)
    detections.xyxy = xyxy
    return detections[keep]


def in_roi(detections: sv.Detections, roi: tuple[int, int, int, int] | None) -> sv.Detections:
    """Keep boxes whose centre lies inside ``roi`` (x1, y1, x2, y2); all boxes when ``roi`` is None."""
    if roi is None or len(detections) == 0:
        return detections
    cx = (detections.xyxy[:, 0] + detections.xyxy[:, 2]) / 2
    cy = (detections.xyxy[:, 1] + detections.xyxy[:, 3]) / 2
    x1, y1, x2, y2 = roi
    return detections[(cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)]


def prepare_sources(config: PipelineConfig) -> dict[str, SourceInfo]:
    """Probe every camera and check its ROI before any work starts (raises ConfigError)."""
    infos = {}
    for cam in config.cameras:
        info = probe(cam)
        check_roi(cam, info)
        if not info.live and info.frame_count == 0 and cam.kind == "file":
            log.warning("camera %s: %s reports no frames (empty video?)", cam.id, cam.source)
        infos[cam.id] = info
    return infos


def _progress_bars(config: PipelineConfig, infos: dict[str, SourceInfo], enabled: bool) -> dict[str, tqdm]:
    bars = {}
    for position, cam in enumerate(config.cameras):
        info = infos[cam.id]
        total = None
        if not info.live and info.frame_count > 0:
            total = -(-info.frame_count // cam.stride)
            if cam.max_frames is not None:
                total = min(total, cam.max_frames)
        bars[cam.id] = progress(total=total, desc=cam.id, unit="frame", position=position, leave=True, enabled=enabled)
    return bars


def run_pipeline(
    config: PipelineConfig,
    out_dir: Path,
    detector: Any,
    progress: bool = True,
    embedder: Any = None,
    infos: dict[str, SourceInfo] | None = None,
    gallery: Gallery | None = None,
) -> dict[str, Any]:
    """Run every camera of ``config`` through ``detector``, per-camera trackers and (with ``embedder``)
    the identity stage (sharing ``gallery``, built from the config when None) into ``out_dir``.

    Returns the summary (also written to ``out_dir/summary.json``). Ctrl-C stops the readers, flushes
    every output and writes a summary marked ``interrupted`` (identity outputs are still written); further
    Ctrl-C while they are written is ignored, and each end-of-run file is replaced atomically. Cameras that
    failed for good (gave up, or never produced a frame) are listed in ``failed_cameras``.
    """
    summary: dict[str, Any] = {}
    frames = stream_pipeline(config, out_dir, detector, progress, embedder, infos, gallery, summary=summary)
    try:
        for _ in frames:
            pass
    except KeyboardInterrupt:  # raised between two frames: end the run the same way
        frames.close()
    return summary


def stream_pipeline(
    config: PipelineConfig,
    out_dir: Path,
    detector: Any,
    progress: bool = True,
    embedder: Any = None,
    infos: dict[str, SourceInfo] | None = None,
    gallery: Gallery | None = None,
    *,
    summary: dict[str, Any] | None = None,
) -> Iterator[tuple[Frame, sv.Detections]]:
    """:func:`run_pipeline` as a generator of ``(frame, tracked detections)``, one per processed camera frame,
    after the frame reached the sinks (detections carry ``tracker_id`` and the live global ids).

    When the stream ends, or the consumer stops early (``close()``, as on Ctrl-C), the run is finished the
    same way and its summary is written into ``summary`` (and ``out_dir/summary.json``).
    """
    summary = {} if summary is None else summary
    infos = prepare_sources(config) if infos is None else infos
    cams = {c.id: c for c in config.cameras}
    rates = {cid: (infos[cid].fps or 25.0) / cams[cid].stride for cid in cams}
    tracker_cfg = config.tracker
    trackers = build_trackers(list(cams), tracker_cfg.kind, rates, dict(tracker_cfg.params), tracker_cfg.thresholds)
    readers = [CameraReader(c, config.sources, infos[c.id]) for c in config.cameras]
    if config.outputs.video:  # PyAV loads (~40 ms) on a spare core while the loop runs, not after it
        threading.Thread(target=h264_available, name="load-pyav", daemon=True).start()
    identity = None
    embed_cfg = config.embed if config.embed is not None else EmbedConfig()
    if embedder is not None:
        identity = IdentityStage(embedder, list(cams), embed_cfg, config.linking, gallery=gallery)
    clock = StageClock()
    numbers = TrackletNumbers()
    ages = FrameAges()
    by_id = {r.camera.id: r for r in readers}
    frames_done = dict.fromkeys(cams, 0)
    track_ids: dict[str, set[int]] = {cid: set() for cid in cams}
    interrupted = False
    started = time.perf_counter()
    outputs = RunOutputs(
        out_dir, rates, mot=config.outputs.mot, video=config.outputs.video,
        live=frozenset(cid for cid in cams if infos[cid].live), crops=config.outputs.crops,
        crop_every=config.outputs.crop_every, crop_min_height=config.outputs.crop_min_height,
        events=identity is not None,
    )  # fmt: skip
    published = 0  # identity events already in identity_events.csv
    bars = _progress_bars(config, infos, progress)
    for reader in readers:
        reader.start()
    # identity of batch k on a worker thread while batch k+1 is detected (pipeline.overlap); inline without
    def numbered(batches: list[list[Frame]], tracked: list[list[sv.Detections]]) -> list[list[sv.Detections]]:
        """Without an identity stage (which mints tracklet ids), one tracklet id per (camera, track)."""
        return [[with_tracklet_ids(d, numbers(f.camera_id, d.tracker_id)) for f, d in zip(b, t)]
                for b, t in zip(batches, tracked)]  # fmt: skip

    # groups of consecutive batches (embed.group_frames camera frames) share one embedder call
    live_run = any(infos[cid].live for cid in cams)  # live ids wait at most embed.group_max_s for a group
    groups = BatchGroups(embed_cfg.group_frames if identity is not None else 1,
                         embed_cfg.group_max_s if live_run else None)  # fmt: skip
    depth = 1 if identity is not None and embed_cfg.overlap else 0
    stage = OverlappedStage(identity.many if identity is not None else numbered, depth=depth)

    def submit(batch: list[Frame] | None, tracked: list[sv.Detections] | None) -> list[tuple[list[Frame], Any]]:
        """Hand a batch (None: what is held) to the stage; the finished (batch, tracked) pairs, in order."""
        group = groups.add(batch, tracked) if batch is not None else groups.flush()
        return ungrouped(stage.submit(*group)) if group is not None else []

    def sink(batch: list[Frame], tracked: list[sv.Detections]) -> None:
        nonlocal published
        t = time.perf_counter()
        if identity is not None:
            events, published = identity.record.events_since(published)
            outputs.events.append(events)
        for frame, dets in zip(batch, tracked):
            outputs.append(frame, dets)
            track_ids[frame.camera_id].update(dets.tracker_id.tolist())
            frames_done[frame.camera_id] += 1
            bars[frame.camera_id].update(1)
        outputs.flush()
        clock.add("sinks", t)

    try:
        with outputs:
            try:
                for batch in FrameBatcher(readers):
                    _record_ages(batch, by_id, ages)
                    for done, tracked in submit(batch, _process_batch(batch, detector, trackers, cams, clock)):
                        sink(done, tracked)
                        yield from zip(done, tracked)
                for done, tracked in submit(None, None) + ungrouped(stage.drain()):
                    sink(done, tracked)
                    yield from zip(done, tracked)
            finally:  # interrupted: the batches the identity stage already holds still reach the sinks
                with ctrl_c_deferred("the run's outputs"):
                    for done, tracked in submit(None, None) + ungrouped(stage.drain()):
                        sink(done, tracked)
                    stage.close()
    except (KeyboardInterrupt, GeneratorExit):
        interrupted = True
        log.warning("interrupted: outputs flushed and closed")
    finally:
        if identity is not None:
            clock.seconds["embed_link"] = stage.seconds
        for reader in readers:
            reader.stop()
        for bar in bars.values():
            bar.close()
        with ctrl_c_deferred("the run's outputs"):
            _join(readers, max(config.sources.open_timeout, config.sources.frame_timeout) + 1.0)
    with ctrl_c_deferred("the run's outputs"):
        wall = time.perf_counter() - started
        summary.update(_summary(config, out_dir, readers, frames_done, track_ids, clock, wall, interrupted, outputs))
        if identity is not None:  # the part of embed_link the detector loop waited for (the rest overlapped)
            summary["stage_seconds"]["embed_link_waited"] = round(stage.waited, 3)
        _add_camera_health(summary, readers, ages, interrupted)
        for cid, tracker in trackers.items():
            summary["cameras"][cid]["tracker_thresholds"] = {k: round(v, 4) for k, v in tracker.thresholds.items()}
        if identity is not None:
            run_info = {
                "run folder": str(out_dir), "config": config.path, "interrupted": interrupted or None,
                "cameras": {cid: f"{n} frames" for cid, n in frames_done.items()},
                "ReID model": config.embed.weights if config.embed else None, "videos": config.outputs.video,
            }  # fmt: skip
            summary["identities"] = finish_identities(identity, Path(out_dir), config.linking.offline, run_info)
            with EventsWriter(outputs.events.path, append=True) as events:  # the final (offline) decisions
                events.append(identity.record.events_since(published)[0])
            summary["identities"]["events"] = len(identity.record.events)
        write_text(Path(out_dir) / "summary.json", json.dumps(summary, indent=2, default=str))
    if config.outputs.video:  # drawn once the final ids are known; Ctrl-C here stops only the drawing
        summary["videos"] = _videos(config, frames_done, Path(out_dir), interrupted, progress)
        write_text(Path(out_dir) / "summary.json", json.dumps(summary, indent=2, default=str))


def _videos(
    config: PipelineConfig, frames_done: dict[str, int], out_dir: Path, interrupted: bool, progress: bool
) -> dict[str, Any]:
    """Annotated videos drawn with the final ids once they are known (skipped after Ctrl-C: render later)."""
    later = f"mcpa render {out_dir}"
    if interrupted:
        log.warning("videos not drawn after Ctrl-C; draw them with: %s", later)
        return {"rendered": False, "command": later}
    started = time.perf_counter()
    try:
        written = render_videos(config, frames_done, out_dir, show=progress)
    except KeyboardInterrupt:
        log.warning("drawing the videos interrupted; draw them with: %s", later)
        return {"rendered": False, "command": later}
    seconds = time.perf_counter() - started
    log.info("drew %d videos with final ids in %.1f s", len(written), seconds)
    return {"rendered": True, "files": {c: str(p) for c, p in written.items()}, "seconds": round(seconds, 3)}


def _join(readers: list[CameraReader], timeout_s: float) -> None:
    """Wait for stopped readers to leave their decoder call (a process that exits inside one aborts)."""
    deadline = time.monotonic() + timeout_s
    for reader in readers:
        reader.join(timeout=max(deadline - time.monotonic(), 0.0))
        if reader.is_alive():
            log.warning("camera %s: reader still busy %.0f s after stop", reader.camera.id, timeout_s)


def _record_ages(batch: list[Frame], readers: dict[str, CameraReader], ages: FrameAges) -> None:
    """Age of each live frame as the detector gets it."""
    now = time.monotonic()
    for frame in batch:
        age = readers[frame.camera_id].age(frame, now)
        if age is not None:
            ages.add(frame.camera_id, age)


def _add_camera_health(
    summary: dict[str, Any], readers: list[CameraReader], ages: FrameAges, interrupted: bool
) -> None:
    """Per camera: disconnects, frame age at detection (live cameras), failed; ``failed_cameras`` {id: why}.

    A camera failed for good when its reader gave up or errored, or (unless the run was interrupted) when it
    never produced a frame.
    """
    failed = {}
    for r in readers:
        entry = summary["cameras"][r.camera.id]
        entry["disconnects"] = r.stats.disconnects
        entry["frame_age_s"] = ages.summary(r.camera.id)
        if r.stats.failed or (entry["frames"] == 0 and not interrupted):
            failed[r.camera.id] = r.stats.error or "never produced a frame"
        entry["failed"] = r.camera.id in failed
        entry["error"] = failed.get(r.camera.id, entry["error"])
    summary["failed_cameras"] = failed


def finish_identities(
    identity: IdentityStage, out_dir: Path, offline: bool, run_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Final global ids into every output, identities summary, review page, saved gallery."""
    conclusion = settled(identity.link.conclude(offline), out_dir)
    identity.record.assign_all(conclusion["mapping"])  # the record publishes what settling changed
    identity.record.publish(max((t.last_timestamp for t in conclusion["tracklets"]), default=0.0))
    identity.save_gallery(out_dir / "gallery.npz")
    return write_identities(out_dir, conclusion, identity.thumbnails.thumbs, identity.crops_embedded, run_info)


def settled(conclusion: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """A :meth:`LinkStep.conclude` result with the final ids of :func:`settle_identities` (what the run's track
    rows show: duplicate tracks, people standing on one spot in overlapping views) in its mapping and tracklets."""
    tracklets = conclusion["tracklets"]
    mapping = settle_identities(out_dir, tracklets, conclusion["mapping"], conclusion.get("split_parent"))
    tracklets = [dataclasses.replace(t, global_id=mapping.get(t.tracklet_id, t.global_id)) for t in tracklets]
    return {**conclusion, "mapping": mapping, "tracklets": tracklets}


def write_identities(
    out_dir: Path, conclusion: dict[str, Any], thumbs: dict, crops_embedded: int, run_info: dict[str, Any] | None
) -> dict[str, Any]:
    """The identity outputs of a :meth:`LinkStep.conclude` result (either engine); returns the summary part."""
    tracklets, mapping, linking = conclusion["tracklets"], conclusion["mapping"], conclusion["linking"]
    split_parent = conclusion.get("split_parent")
    save_tracklets(out_dir, tracklets, thumbs, split_parent)
    decided = "offline re-clustering" if conclusion["offline"] else "online"
    threshold = linking.get("offline_threshold", linking["online_threshold"])
    run_info = {**(run_info or {}), "linking": f"{decided}, threshold {threshold} (self-calibrated unless set)"}
    return {
        **write_identity_outputs(out_dir, tracklets, mapping, thumbs, run_info, split_parent),
        "tracklets": len(tracklets),
        "crops_embedded": crops_embedded,
        "offline": conclusion["offline"],
        "linking": linking,
    }


def _process_batch(
    batch: list[Frame], detector: Any, trackers: dict, cams: dict, clock: StageClock
) -> list[sv.Detections]:
    t = time.perf_counter()
    detections = detector([f.image for f in batch], [f.camera_id for f in batch])
    if len(detections) != len(batch):
        raise RuntimeError(f"detector returned {len(detections)} results for {len(batch)} frames")
    t = clock.add("detect", t)
    tracked = []
    for frame, dets in zip(batch, detections):
        h, w = frame.image.shape[:2]
        dets = dets if dets is not None else empty_detections()
        dets = in_roi(sanitize(dets, w, h), cams[frame.camera_id].roi)
        tracked.append(trackers[frame.camera_id].update(dets, frame.image))
    clock.add("track", t)
    return tracked


def _summary(
    config: PipelineConfig, out_dir: Path, readers: list[CameraReader], frames_done: dict[str, int],
    track_ids: dict[str, set[int]], clock: StageClock, wall: float, interrupted: bool, outputs: RunOutputs,
) -> dict[str, Any]:  # fmt: skip
    cameras = {
        r.camera.id: {
            "frames": frames_done[r.camera.id], "tracks": len(track_ids[r.camera.id]),
            "dropped": r.stats.dropped, "corrupt": r.stats.corrupt, "reconnects": r.stats.reconnects,
            "error": r.stats.error,
        }
        for r in readers
    }  # fmt: skip
    return run_summary(config, out_dir, cameras, track_ids, clock.seconds, wall, interrupted, outputs)


def run_summary(
    config: PipelineConfig, out_dir: Path, cameras: dict[str, dict[str, Any]], track_ids: dict[str, set[int]],
    seconds: dict[str, float], wall: float, interrupted: bool, outputs: RunOutputs,
) -> dict[str, Any]:  # fmt: skip
    """The summary.json fields every engine writes (``cameras``: per camera, ``frames`` and reader counters)."""
    total_frames = sum(c["frames"] for c in cameras.values())
    fps = {stage: (total_frames / s if s > 0 else None) for stage, s in seconds.items()}
    fps["end_to_end"] = total_frames / wall if wall > 0 else None
    return {
        "out_dir": str(out_dir),
        "interrupted": interrupted,
        "frames": total_frames,
        "tracks": sum(len(v) for v in track_ids.values()),
        "boxes": outputs.boxes,
        "crops": outputs.crops.count if outputs.crops is not None else 0,
        "wall_s": round(wall, 3),
        "stage_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "fps": {k: (round(v, 2) if v is not None else None) for k, v in fps.items()},
        "cameras": cameras,
        "config": dataclasses.asdict(config),
    }


def summary_line(summary: dict[str, Any]) -> str:
    """The end-of-run lines (:func:`reid.console.end_summary`): what was found, where it is, what to do next."""
    state = "run interrupted" if summary["interrupted"] else "run done"
    facts = [f"{summary['frames']} frames", f"{summary['tracks']} tracks"]
    ids = summary.get("identities")
    if ids:
        facts.append(f"{ids['global_ids']} global ids ({ids['multi_camera_ids']} in >1 camera)")
    fps = summary["fps"].get("end_to_end")
    facts += [f"{summary['boxes']} boxes", f"{summary['wall_s']:.1f} s" + (f" ({fps:.1f} fps)" if fps else "")]
    videos = summary.get("videos") or {}
    if videos.get("rendered"):
        facts.append(f"{len(videos['files'])} videos drawn in {videos['seconds']:.1f} s")
    out = Path(summary["out_dir"])
    steps = []
    if ids:
        steps.append(f"open {out / 'identities' / 'index.html'}")
    if summary.get("crops"):
        steps.append(f"mcpa adapt {out}")
    steps.append(f"mcpa evaluate --gt GT_FOLDER --pred {out}")
    return end_summary(state, facts, out, steps)
