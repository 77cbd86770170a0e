"""Sinks: context managers with ``append(frame, detections)`` that flush on exit (and so on Ctrl-C).

A run folder holds::

    DIR/tracks.csv, DIR/tracks.jsonl      cross-camera tracks, one row per tracked box
    DIR/mot/<camera_id>.txt               MOTChallenge rows: frame(1-based),id,x,y,w,h,conf,-1,-1,-1
    DIR/videos/<camera_id>.source.mp4     raw frames of a live camera (when videos are asked for), drawn on
                                          with final ids after the run by pipeline.render
    DIR/crops/<camera_id>/*.jpg           harvested crops (when asked) with DIR/crops/manifest.csv
    DIR/identity_events.csv               every change of a tracklet's global id (with ReID)
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import supervision as sv

from detectors.boxes import clip_boxes
from pipeline.durable import atomic_path
from pipeline.identity.record import IdEvent
from pipeline.identity.tracklets import TrackletNumbers
from pipeline.records import Frame, global_ids_of, tracklet_ids_of
from pipeline.video import RECORDING_QP, VideoEncoder, recording_paths

log = logging.getLogger(__name__)

TRACK_COLUMNS = (
    "camera_id", "frame", "timestamp", "track_id", "global_id", "x1", "y1", "x2", "y2", "confidence", "tracklet_id",
)  # fmt: skip
LEGACY_TRACK_COLUMNS = TRACK_COLUMNS[:-1]  # runs written before tracklet ids were carried by every row
MANIFEST_COLUMNS = (
    "path", "camera_id", "track_id", "tracklet_id", "frame_index", "timestamp",
    "x1", "y1", "x2", "y2", "confidence", "global_id",
)  # fmt: skip


def _confidence(detections: sv.Detections) -> np.ndarray:
    if detections.confidence is None:
        return np.ones(len(detections), dtype=np.float32)
    return detections.confidence.astype(np.float32)


class MotWriter:
    """One camera's MOTChallenge file; ``frame`` in the file is the source index + 1."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] = open(path, "w")

    def append(self, frame: Frame, detections: sv.Detections, ids: np.ndarray | None = None) -> None:
        if len(detections) == 0:
            return
        ids = detections.tracker_id if ids is None else ids
        xyxy = detections.xyxy.astype(np.float64)
        rows = np.column_stack([
            np.full(len(detections), frame.index + 1), ids, xyxy[:, 0], xyxy[:, 1],
            xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1], _confidence(detections),
        ])  # fmt: skip
        np.savetxt(self._fh, rows, fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1")

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class TracksWriter:
    """``tracks.csv`` and ``tracks.jsonl``: every tracked box of every camera, in processing order."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / "tracks.csv"  # and tracks.jsonl beside it
        self._csv: IO[str] = open(self.path, "w")
        self._jsonl: IO[str] = open(out_dir / "tracks.jsonl", "w")
        self._csv.write(",".join(TRACK_COLUMNS) + "\n")

    def append(self, frame: Frame, detections: sv.Detections) -> None:
        n = len(detections)
        if n == 0:
            return
        cam = frame.camera_id  # validated to [A-Za-z0-9_.-]: safe inside CSV and JSON without quoting
        tracklets = tracklet_ids_of(detections)
        values = np.column_stack([
            np.full(n, frame.index), np.full(n, frame.timestamp), detections.tracker_id,
            global_ids_of(detections), detections.xyxy.astype(np.float64), _confidence(detections),
            np.full(n, -1) if tracklets is None else tracklets,
        ])  # fmt: skip
        np.savetxt(self._csv, values, fmt=f"{cam},%d,%.3f,%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,%d")
        json_fmt = (
            f'{{"camera_id": "{cam}", "frame": %d, "timestamp": %.3f, "track_id": %d, "global_id": %d, '
            '"x1": %.2f, "y1": %.2f, "x2": %.2f, "y2": %.2f, "confidence": %.4f, "tracklet_id": %d}'
        )
        np.savetxt(self._jsonl, values, fmt=json_fmt)

    def flush(self) -> None:
        self._csv.flush()
        self._jsonl.flush()

    def close(self) -> None:
        for fh in (self._csv, self._jsonl):
            if not fh.closed:
                fh.close()


class EventsWriter:
    """``identity_events.csv``: the identity record's events (tracklet_id, global_id, time), in order."""

    COLUMNS = ("tracklet_id", "global_id", "time")

    def __init__(self, path: Path, append: bool = False) -> None:
        """A new file, or with ``append`` more events at the end of an existing one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] = open(path, "a" if append else "w")
        if not append:
            self._fh.write(",".join(self.COLUMNS) + "\n")
        self.count = 0

    def append(self, events: Sequence[IdEvent]) -> None:
        if events:
            rows = np.array([e.as_row() for e in events], dtype=np.float64)
            np.savetxt(self._fh, rows, fmt="%d,%d,%.3f")
            self.count += len(events)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> EventsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SourceRecorder:
    """The raw frames of a live camera (``<camera_id>.source.mp4`` + ``.source.npz``: frame indices and
    timestamps), so the annotated video can be drawn with final ids after the run (:mod:`pipeline.render`);
    a file camera needs no recording, its source is read again."""

    def __init__(self, video: Path, index: Path, fps: float) -> None:
        self._encoder = VideoEncoder(video, fps, qp=RECORDING_QP)
        self._index_path = index
        self._frames: list[int] = []
        self._stamps: list[float] = []

    def append(self, frame: Frame, detections: sv.Detections) -> None:
        self._encoder.write(frame.image)
        self._frames.append(frame.index)
        self._stamps.append(frame.timestamp)

    def flush(self) -> None:
        """Video containers are finalised only by ``close``."""

    def close(self) -> None:
        if self._encoder.close() is None:
            return
        with atomic_path(self._index_path) as tmp:
            np.savez(tmp, frame=np.array(self._frames, np.int64), timestamp=np.array(self._stamps, np.float64))


@dataclass(frozen=True)
class Crop:
    """One harvested crop: where it goes under ``crops/``, its JPEG bytes, and its manifest row."""

    rel: str
    jpeg: bytes
    row: tuple


class CropChooser:
    """Choose every ``every``-th box of each tracklet (height >= ``min_height``) and encode it as JPEG.

    Needs the frame, so it runs where the frames are (the pipeline thread, or a Ray camera worker); the
    :class:`CropHarvester` writes what it chose.
    """

    def __init__(self, every: int = 5, min_height: int = 32, jpeg_quality: int = 92) -> None:
        self.every, self.min_height, self.jpeg_quality = every, min_height, jpeg_quality
        self._seen: dict[int, int] = {}
        self._numbers = TrackletNumbers()  # only for detections that carry no tracklet ids (used on their own)

    def __call__(self, frame: Frame, detections: sv.Detections) -> list[Crop]:
        if len(detections) == 0:
            return []
        h, w = frame.image.shape[:2]
        xyxy = clip_boxes(np.round(detections.xyxy).astype(int), w, h)
        tall = (xyxy[:, 3] - xyxy[:, 1] >= self.min_height) & (xyxy[:, 2] > xyxy[:, 0])
        conf = _confidence(detections)
        gids = global_ids_of(detections)
        tracklets = tracklet_ids_of(detections)
        if tracklets is None:
            tracklets = self._numbers(frame.camera_id, detections.tracker_id)
        out = []
        for i in np.flatnonzero(tall):
            tracklet = int(tracklets[i])
            seen = self._seen.get(tracklet, 0)
            self._seen[tracklet] = seen + 1
            if seen % self.every:
                continue
            x1, y1, x2, y2 = xyxy[i].tolist()
            ok, jpeg = cv2.imencode(".jpg", frame.image[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                log.warning("could not encode a crop of camera %s frame %d", frame.camera_id, frame.index)
                continue
            rel = f"{frame.camera_id}/t{tracklet:06d}_f{frame.index:07d}.jpg"
            row = (
                rel, frame.camera_id, int(detections.tracker_id[i]), tracklet, frame.index, f"{frame.timestamp:.3f}",
                x1, y1, x2, y2, f"{float(conf[i]):.4f}", int(gids[i]),
            )  # fmt: skip
            out.append(Crop(rel, jpeg.tobytes(), row))
        return out


class CropHarvester:
    """Crops (JPEG) under ``crops_dir`` + ``manifest.csv``: chosen by a :class:`CropChooser` (``append``), or
    chosen elsewhere and handed over (``write``)."""

    def __init__(self, crops_dir: Path, every: int = 5, min_height: int = 32, jpeg_quality: int = 92) -> None:
        crops_dir.mkdir(parents=True, exist_ok=True)
        self.dir = crops_dir
        self.path = crops_dir / "manifest.csv"
        self.choose = CropChooser(every, min_height, jpeg_quality)
        self._fh: IO[str] = open(crops_dir / "manifest.csv", "w", newline="")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(MANIFEST_COLUMNS)
        self.count = 0

    def append(self, frame: Frame, detections: sv.Detections) -> None:
        self.write(self.choose(frame, detections))

    def write(self, crops: Sequence[Crop]) -> None:
        for crop in crops:
            path = self.dir / crop.rel
            path.parent.mkdir(exist_ok=True)
            try:
                path.write_bytes(crop.jpeg)
            except OSError as exc:
                log.warning("could not write crop %s: %s", crop.rel, exc)
                continue
            self._csv.writerow(crop.row)
            self.count += 1

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` with the file it was writing (a full disk fails a buffered write without naming the file)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


class RunOutputs:
    """All sinks of one run folder behind one ``append``; a context manager that always closes them."""

    def __init__(
        self,
        out_dir: Path,
        camera_fps: dict[str, float],
        *,
        mot: bool = True,
        video: bool = False,
        live: frozenset[str] = frozenset(),
        crops: bool = False,
        crop_every: int = 5,
        crop_min_height: int = 32,
        events: bool = False,
    ) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tracks = TracksWriter(self.dir)
        self.mot = {c: MotWriter(self.dir / "mot" / f"{c}.txt") for c in camera_fps} if mot else {}
        videos = self.dir / "videos"
        self.videos = {
            c: SourceRecorder(*recording_paths(videos, c), f) for c, f in camera_fps.items() if video and c in live
        }
        self.crops = CropHarvester(self.dir / "crops", crop_every, crop_min_height) if crops else None
        self.events = EventsWriter(self.dir / "identity_events.csv") if events else None
        self.boxes = 0

    def append(self, frame: Frame, detections: sv.Detections) -> None:
        self.boxes += len(detections)
        self.tracks.append(frame, detections)
        if frame.camera_id in self.mot:
            self.mot[frame.camera_id].append(frame, detections)
        if frame.camera_id in self.videos:
            self.videos[frame.camera_id].append(frame, detections)
        if self.crops is not None:
            self.crops.append(frame, detections)

    def _all(self) -> list[Any]:
        optional = [sink for sink in (self.crops, self.events) if sink is not None]
        return [self.tracks, *self.mot.values(), *self.videos.values(), *optional]

    def flush(self) -> None:
        for sink in self._all():
            try:
                sink.flush()
            except OSError as exc:
                raise _naming(exc, sink.path) from exc

    def close(self) -> None:
        errors = []
        for sink in self._all():
            try:
                sink.close()
            except Exception as exc:  # close every sink even if one fails
                errors.append(_naming(exc, sink.path) if isinstance(exc, OSError) else exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> RunOutputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
