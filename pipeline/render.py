"""``python -m pipeline.render RUN_DIR [--out DIR] [--cameras ID ...]``: annotated videos of a finished run.

The videos show the run's **final** ids, the same as ``tracks.csv``, ``mot_global/`` and ``identities.*``:
they are drawn after the run from ``tracks.csv`` over the source frames. File and image-folder cameras are
read again from their sources (the same frames the run processed: stride, ``max_frames`` and the number of
frames the run got through are honoured); a live camera is read from the raw recording the run kept of it
(``videos/<camera_id>.source.mp4`` with ``.source.npz``: frame indices and timestamps), because a stream
cannot be replayed. ``pipeline.run --video`` calls :func:`render_run` at the end of the run.

Boxes are coloured by identity, with trails, labels ``G<global id>`` (``#<track id>`` for a track that was
never linked) and a header with the camera, time and frame index (:mod:`pipeline.video`).
Exit codes: 0 done, 2 bad run folder or unwritable output, 130 Ctrl-C (finished videos stay, the partial
one is removed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from configs import CameraConfig, ConfigError, PipelineConfig, SourceOptions, config_from_dict
from pipeline.identity.outputs import read_tracks
from pipeline.records import Frame
from pipeline.sources import CameraReader, is_live, probe
from pipeline.video import FrameAnnotator, VideoEncoder, recording_paths
from reid.console import end_summary, progress, setup_logging

log = logging.getLogger(__name__)

MAX_RENDER_THREADS = 8


def run_config(run_dir: Path) -> tuple[PipelineConfig, dict]:
    """The config a run used (from its ``summary.json``) and the summary itself."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the summary.json of a finished run")
    try:
        summary = json.loads(path.read_text())
        raw = dict(summary["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: expected a run summary with its 'config' ({exc})") from exc
    raw.pop("path", None)
    try:
        return config_from_dict(raw), summary
    except ConfigError as exc:
        raise ValueError(f"{path}: the run's config no longer loads: {exc}") from exc


def source_frames(camera: CameraConfig, videos_dir: Path, limit: int | None) -> Iterator[Frame]:
    """The frames the run processed for ``camera``: its live recording when there is one, else its source."""
    video, index = recording_paths(videos_dir, camera.id)
    if video.is_file() and index.is_file():
        yield from _recorded_frames(camera.id, video, index, limit)
        return
    if is_live(camera):
        raise FileNotFoundError(f"camera {camera.id}: a live source and no recording {video} to draw on")
    if limit is not None:
        camera = dataclasses.replace(camera, max_frames=min(limit, camera.max_frames or limit))
    if limit == 0:
        return
    yield from CameraReader(camera, SourceOptions(decode_threads=1), probe(camera)).frames()  # a thread per camera


def _recorded_frames(camera_id: str, video: Path, index: Path, limit: int | None) -> Iterator[Frame]:
    with np.load(index) as data:
        indices, stamps = data["frame"], data["timestamp"]
    cap = cv2.VideoCapture(str(video))
    try:
        for n, (i, t) in enumerate(zip(indices, stamps)):
            if limit is not None and n >= limit:
                return
            ok, image = cap.read()
            if not ok:
                log.warning("camera %s: recording %s ends after %d of %d frames", camera_id, video, n, len(indices))
                return
            yield Frame(camera_id, int(i), float(t), image)
    finally:
        cap.release()


class TrackTable:
    """tracks.csv rows of one camera, looked up by frame index."""

    def __init__(self, values: np.ndarray) -> None:
        order = np.argsort(values[:, 0], kind="stable")
        self.values = values[order]
        frames = self.values[:, 0].astype(np.int64)
        self.frames, self.starts, counts = np.unique(frames, return_index=True, return_counts=True)
        self.ends = self.starts + counts

    def rows(self, frame_index: int) -> np.ndarray:
        k = np.searchsorted(self.frames, frame_index)
        if k >= len(self.frames) or self.frames[k] != frame_index:
            return self.values[:0]
        return self.values[self.starts[k] : self.ends[k]]


def render_camera(
    camera: CameraConfig, frames: Iterator[Frame], table: TrackTable, out: Path, fps: float, show: bool = True
) -> Path | None:
    """Draw ``table``'s boxes on ``frames`` into ``out``; returns the file (None when there were no frames)."""
    annotator = FrameAnnotator(camera.id, fps)
    bar = progress(desc=f"render {camera.id}", unit="frame", enabled=show, leave=False)
    with VideoEncoder(out, fps) as encoder, bar:
        for frame in frames:
            rows = table.rows(frame.index)  # columns: frame, timestamp, track, global, x1, y1, x2, y2, conf
            image = annotator.annotate(
                frame.image, frame.index, frame.timestamp, rows[:, 4:8], rows[:, 2], rows[:, 3], copy=False
            )  # the decoded frame is drawn on in place: nothing else reads it
            encoder.write(image)
            bar.update(1)
        written = encoder.frames
    return out if written else None


def render_run(
    run_dir: Path,
    out_dir: Path | None = None,
    cameras: list[str] | None = None,
    show: bool = True,
    workers: int | None = None,
) -> dict[str, Path]:
    """Annotated videos of every camera (or ``cameras``) of a finished run into ``out_dir`` (default RUN/videos)."""
    config, summary = run_config(run_dir)
    processed = {cid: cam.get("frames") for cid, cam in summary.get("cameras", {}).items()}
    return render_videos(config, processed, run_dir, out_dir, cameras, show, workers)


def render_videos(
    config: PipelineConfig, processed: dict[str, int | None], run_dir: Path, out_dir: Path | None = None,
    cameras: list[str] | None = None, show: bool = True, workers: int | None = None,
) -> dict[str, Path]:  # fmt: skip
    """Draw ``run_dir/tracks.csv`` on the frames each camera processed (``processed``: frame counts), one
    thread per camera (at most ``workers``, default 8)."""
    run_dir = Path(run_dir)
    known = {c.id: c for c in config.cameras}
    chosen = list(known) if not cameras else cameras
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise ValueError(f"--cameras: unknown camera {unknown[0]!r}; expected ids from {sorted(known)}")
    tracks = run_dir / "tracks.csv"
    if not tracks.is_file():
        raise FileNotFoundError(f"{tracks}: expected the track file of a run")
    cams, values = read_tracks(tracks)
    videos_dir = run_dir / "videos"
    out_dir = Path(out_dir) if out_dir is not None else videos_dir

    def one(cid: str) -> Path | None:
        camera = known[cid]
        fps = (camera.fps or probe_fps(camera, videos_dir)) / camera.stride
        frames = source_frames(camera, videos_dir, processed.get(cid))
        path = render_camera(camera, frames, TrackTable(values[cams == cid]), out_dir / f"{cid}.mp4", fps, show)
        if path is None:
            log.warning("camera %s: no frames to draw, no video written", cid)
        return path

    # Decoding, drawing and encoding release the GIL for most of their time: cameras render side by side, each
    # on its own thread (with fewer threads than cameras the last ones would run alone and leave cores idle).
    with ThreadPoolExecutor(max(1, min(workers or MAX_RENDER_THREADS, len(chosen)))) as pool:
        paths = list(pool.map(one, chosen))
    return {cid: path for cid, path in zip(chosen, paths) if path is not None}


def probe_fps(camera: CameraConfig, videos_dir: Path) -> float:
    """The frame rate of the camera's source (its recording for a live camera), 25 when unknown."""
    video, _ = recording_paths(videos_dir, camera.id)
    if video.is_file():
        cap = cv2.VideoCapture(str(video))
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        return fps if fps > 0 else 25.0
    if is_live(camera):
        return 25.0
    return probe(camera).fps or 25.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.render",
        description="Draw a finished run's final ids on its cameras' frames: one H.264 video per camera.",
    )
    p.add_argument("run_dir", type=Path, help="a folder written by pipeline.run")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: RUN_DIR/videos)")
    p.add_argument("--cameras", nargs="+", default=None, metavar="ID", help="only these cameras (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("INFO")
    try:
        written = render_run(args.run_dir, args.out, args.cameras, show=not args.no_progress)
    except KeyboardInterrupt:
        print("interrupted: finished videos are kept; the partial one was removed", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write videos: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.run_dir / "videos"
    index = args.run_dir / "identities" / "index.html"
    print(end_summary("render done", [f"{len(written)} videos"], out, [f"open {index}"] if index.is_file() else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
