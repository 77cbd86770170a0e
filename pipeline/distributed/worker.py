"""A camera-group worker: read → detect → track → embed → choose crops for some of the run's cameras.

The Ray engine runs one :class:`CameraWorker` per actor; nothing in it needs Ray except the identity service
handle it is given (an actor handle: ``service.update.remote``), and a plain
:class:`~pipeline.distributed.service.IdentityService` works as well (tests, a one-process debug run).

Per :meth:`CameraWorker.step` it processes batches of frames (one per camera at most, as the local engine
does), embeds the crops of a group of batches (``group_frames`` camera frames) in one embedder call and
sends their :class:`~pipeline.identity.updates.TrackletUpdate`\\s to the identity service in one call, on a
worker thread one group behind detection (:class:`~pipeline.overlap.OverlappedStage`); the service links
each batch on its own, as the local engine does, so grouping saves round trips without changing a
decision. It returns the tracked boxes with their tracklet and live global ids plus the chosen crops as
JPEG bytes: the driver's sinks write every file. A restarted worker is started again with where to
resume: file cameras skip the frames the driver already has, and track ids continue above the largest one
used, so no (camera, track) means two people.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import supervision as sv

from configs.schema import EmbedConfig, PipelineConfig
from pipeline.distributed.embedder import RemoteEmbedder
from pipeline.embed import build_embedder
from pipeline.engine import StageClock, _process_batch, _record_ages
from pipeline.identity.stage import EmbedStep
from pipeline.identity.tracklets import TrackletNumbers
from pipeline.latency import FrameAges
from pipeline.overlap import OverlappedStage
from pipeline.records import EMBEDDING_KEY, Frame, with_ids, with_tracklet_ids
from pipeline.sinks import Crop, CropChooser
from pipeline.sources import CameraReader, FrameBatcher, SourceInfo
from pipeline.tracking import build_trackers

log = logging.getLogger(__name__)

NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # frames sent to the driver carry no pixels


@dataclass
class StepResult:
    """What one :meth:`CameraWorker.step` hands the driver."""

    frames: list[tuple[Frame, sv.Detections]]  # images left out; detections with tracklet and global ids
    crops: list[Crop]
    done: bool  # every camera of the worker has ended
    seconds: dict[str, float]  # stage seconds of this step
    update_bytes: int  # bytes of the TrackletUpdates sent to the identity service
    health: dict[str, dict[str, Any]] = field(default_factory=dict)  # per camera: reader counters, frame ages


class CameraWorker:
    """See the module docstring. ``detector`` / ``embedder`` are built from ``config`` when None, unless
    ``embed_service`` (a shared :class:`~pipeline.distributed.embedder.EmbedService` handle, with its
    ``embed_dim``) embeds for every worker."""

    def __init__(
        self, config: PipelineConfig, camera_ids: list[str], infos: dict[str, SourceInfo], index: int = 0,
        n_workers: int = 1, detector: Any = None, embedder: Any = None, embed_service: Any = None,
        embed_dim: int | None = None, group_frames: int = 16,
    ) -> None:  # fmt: skip

        self.index, self.n_workers = index, n_workers
        if group_frames < 1:
            raise ValueError(f"group_frames: expected an int >= 1, got {group_frames}")
        self.group_frames = group_frames
        self.config = config
        self.cams = {c.id: c for c in config.cameras if c.id in camera_ids}
        missing = sorted(set(camera_ids) - set(self.cams))
        if missing:
            raise ValueError(f"camera_ids: expected ids of the config's cameras, got unknown {missing}")
        self.infos = {cid: infos[cid] for cid in self.cams}
        _share_cores(n_workers)
        if detector is None:
            from detectors import detector_from_config

            detector = detector_from_config(config.detector)
        self.detector = detector
        if embed_service is not None:  # the shared embedder actor (pipeline.distributed.embedder)
            embedder = RemoteEmbedder(embed_service, embed_dim)
        self.embedder = build_embedder(config) if embedder is None else embedder
        self.embed_cfg = config.embed if config.embed is not None else EmbedConfig()
        self.embed = None if self.embedder is None else EmbedStep(self.embedder, list(self.cams), self.embed_cfg)
        out = config.outputs
        self.crops = CropChooser(out.crop_every, out.crop_min_height) if out.crops else None
        self._batches: Iterator[list[Frame]] | None = None
        self._readers: list[CameraReader] = []

    # ------------------------------------------------------------------ control
    def pid(self) -> int:
        return os.getpid()

    def embedding_dim(self) -> int | None:
        return None if self.embedder is None else int(self.embedder.embedding_dim)

    def start(
        self, service: Any = None, resume: dict[str, int] | None = None, track_offsets: dict[str, int] | None = None,
        first_tracklet: int = 0,
    ) -> None:  # fmt: skip
        """Open the cameras (again, after a restart) and start reading.

        Args:
            service: the identity service (actor handle or object); None runs without ReID.
            resume: per camera, the first frame index still to process (file cameras skip the ones before).
            track_offsets: per camera, added to every tracker id (above the ids a previous life used).
            first_tracklet: without a service, the first k of this worker's tracklet ids
                ``k * n_workers + index`` (unique across workers; a restarted worker continues its block).
        """
        self.service = service if self.embed is not None else None
        self.resume = dict(resume or {})
        self.offsets = {cid: int((track_offsets or {}).get(cid, 0)) for cid in self.cams}
        self._numbers = TrackletNumbers(first_tracklet * self.n_workers + self.index, self.n_workers)
        rates = {cid: (self.infos[cid].fps or 25.0) / self.cams[cid].stride for cid in self.cams}
        t = self.config.tracker
        self.trackers = build_trackers(list(self.cams), t.kind, rates, dict(t.params), t.thresholds)
        self._readers = [CameraReader(c, self.config.sources, self.infos[c.id]) for c in self.cams.values()]
        self._by_id = {r.camera.id: r for r in self._readers}
        self.ages = FrameAges()
        for reader in self._readers:
            reader.start()
        self._batches = iter(FrameBatcher(self._readers))
        depth = 1 if self.service is not None and self.embed_cfg.overlap else 0
        self.stage = OverlappedStage(self._identify_group, depth=depth)
        self._update_bytes = 0

    def stop(self) -> None:
        """Stop reading (Ctrl-C in the driver); :meth:`step` then returns what is left, ending with done."""
        for reader in self._readers:
            reader.stop()

    def thumbnails(self) -> dict[tuple[str, int], list[np.ndarray]]:
        return {} if self.embed is None else self.embed.thumbnails.thumbs

    def crops_embedded(self) -> int:
        return 0 if self.embed is None else self.embed.crops_embedded

    def thresholds(self) -> dict[str, dict[str, float]]:
        return {cid: {k: round(v, 4) for k, v in tr.thresholds.items()} for cid, tr in self.trackers.items()}

    # ------------------------------------------------------------------ work
    def step(self, max_frames: int = 32) -> StepResult:
        """Process batches until ``max_frames`` camera frames are done or the cameras end."""
        if self._batches is None:
            raise RuntimeError("CameraWorker.step: call start() first")
        clock, out, crops, done = StageClock(), [], [], False
        group: tuple[list, list] = ([], [])
        while len(out) < max_frames:
            batch = next(self._batches, None)
            if batch is None:
                done = True
                break
            batch = [f for f in batch if f.index >= self.resume.get(f.camera_id, -1)]
            if not batch:
                continue
            _record_ages(batch, self._by_id, self.ages)
            tracked = _process_batch(batch, self.detector, self.trackers, self.cams, clock)
            group[0].append(batch)
            group[1].append([self._offset(f, d) for f, d in zip(batch, tracked)])
            if sum(len(b) for b in group[0]) >= self.group_frames:
                self._collect(self.stage.submit(*group), out, crops, clock)
                group = ([], [])
        if group[0]:
            self._collect(self.stage.submit(*group), out, crops, clock)
        if done:
            self._collect(self.stage.drain(), out, crops, clock)
            self.stage.close()
            for reader in self._readers:
                reader.join(timeout=self.config.sources.open_timeout + 1.0)
        clock.seconds["embed_link"] = self.stage.seconds
        bytes_sent, self._update_bytes = self._update_bytes, 0
        return StepResult(out, crops, done, clock.seconds, bytes_sent, self.health())

    def health(self) -> dict[str, dict[str, Any]]:
        out = {}
        for r in self._readers:
            out[r.camera.id] = {**dataclasses.asdict(r.stats), "frame_age_s": self.ages.summary(r.camera.id)}
        return out

    def _offset(self, frame: Frame, dets: sv.Detections) -> sv.Detections:
        offset = self.offsets.get(frame.camera_id, 0)
        if offset and len(dets):
            dets.tracker_id = dets.tracker_id + offset
        return dets

    def _identify_group(
        self, batches: list[list[Frame]], tracked: list[list[sv.Detections]]
    ) -> list[list[sv.Detections]]:
        """Embed each batch, send the group's updates to the identity service in one call, attach its ids."""
        if self.service is None:
            return [[with_tracklet_ids(d, self._numbers(f.camera_id, d.tracker_id)) for f, d in zip(b, t)]
                    for b, t in zip(batches, tracked)]  # fmt: skip
        embedded, updates = self.embed.many(batches, tracked)  # the group's crops in one embedder call
        self._update_bytes += sum(u.nbytes for batch in updates for u in batch)
        call = getattr(self.service.update_batches, "remote", None)
        if call is None:
            answers = self.service.update_batches(list(updates))
        else:
            import ray

            answers = ray.get(call(list(updates)))
        return [[with_ids(d, tracklet_ids=t, global_ids=g) for d, (t, g) in zip(dets, batch_answers)]
                for dets, batch_answers in zip(embedded, answers)]  # fmt: skip

    def _collect(
        self, done: list[tuple[list[list[Frame]], list[list[sv.Detections]]]], out: list, crops: list[Crop],
        clock: StageClock,
    ) -> None:
        t = time.perf_counter()
        pairs = [(b, d) for batches, results in done for b, d in zip(batches, results)]
        for batch, tracked in pairs:
            for frame, dets in zip(batch, tracked):
                if self.crops is not None:
                    crops.extend(self.crops(frame, dets))
                dets.data.pop(EMBEDDING_KEY, None)  # the driver needs the boxes and ids, not the embeddings
                out.append((dataclasses.replace(frame, image=NO_IMAGE), dets))
        clock.add("crops", t)


def _share_cores(n_workers: int) -> None:
    """Workers on one machine split its cores between their torch thread pools instead of all taking all."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // max(n_workers, 1)))
