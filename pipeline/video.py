"""Writing videos: an H.264 encoder with a logged fallback, and the annotation of one camera's frames.

- :class:`VideoEncoder` writes H.264 (``libx264`` through PyAV, ``yuv420p``, ``+faststart``), which every
  browser plays. Where PyAV or its x264 encoder is missing it falls back to OpenCV's ``mp4v`` and logs that
  browsers may not play the file. The file appears only when it is complete (temporary file + rename).
- :class:`FrameAnnotator` draws what a reviewer needs on one camera's frames: a box coloured by identity
  (global id when linked, else the tracker's id), a short trail of each identity's feet, an id label, and a
  header with the camera name, the time and the frame index.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

log = logging.getLogger(__name__)

TRAIL_SECONDS = 2.0
UNLINKED_COLOUR_OFFSET = 1_000_000  # unlinked tracks colour by track id, away from the global ids' colours
RECORDING_SUFFIX = ".source.mp4"
RECORDING_INDEX_SUFFIX = ".source.npz"


def recording_paths(videos_dir: Path, camera_id: str) -> tuple[Path, Path]:
    """Where the run keeps a live camera's raw frames and their (frame index, timestamp) table."""
    return videos_dir / f"{camera_id}{RECORDING_SUFFIX}", videos_dir / f"{camera_id}{RECORDING_INDEX_SUFFIX}"


def h264_available() -> bool:
    """True when PyAV can encode H.264 with x264 here."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


class VideoEncoder:
    """Append BGR frames of one size; ``close()`` finalises ``path`` atomically. Also a context manager."""

    def __init__(self, path: Path, fps: float, crf: int = 23, preset: str = "ultrafast", threads: int = 1) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps if fps and fps > 0 else 25.0
        self.codec = "h264" if h264_available() else "mp4v"
        if self.codec == "mp4v":
            log.warning("PyAV with libx264 not available: writing %s as mp4v (browsers may not play it)", self.path)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")  # containers go by suffix
        self._crf, self._preset, self._threads = crf, preset, threads
        self._container = None
        self._stream = None
        self._cv_writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def _open(self, width: int, height: int) -> None:
        self._size = (width - width % 2, height - height % 2)  # 4:2:0 chroma needs even sides
        if self.codec == "h264":
            import av

            self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            stream.width, stream.height = self._size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self._crf), "preset": self._preset}
            stream.thread_count = max(1, self._threads)
            self._stream = stream
        else:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv_writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, self._size)
            if not self._cv_writer.isOpened():
                raise OSError(f"cannot write video {self.path}: no H.264 (PyAV) and no mp4v (OpenCV) encoder")

    def write(self, image: np.ndarray) -> None:
        if self._size is None:
            self._open(image.shape[1], image.shape[0])
        w, h = self._size
        image = image[:h, :w]
        if self._stream is not None:
            import av

            # OpenCV's BGR->I420 (BT.601, video range: what players assume) is ~4x cheaper than swscale's
            yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        else:
            self._cv_writer.write(np.ascontiguousarray(image))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when no frame was written (nothing is left behind)."""
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._stream = self._container = None
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            return None
        if self._tmp.exists():
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file (an interrupted render leaves any previous complete video in place)."""
        try:
            if self._container is not None:
                self._container.close()
            if self._cv_writer is not None:
                self._cv_writer.release()
        finally:
            self._stream = self._container = self._cv_writer = None
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class FrameAnnotator:
    """Boxes coloured by identity, trails, id labels and a camera/time header for one camera's frames."""

    def __init__(self, camera_id: str, fps: float) -> None:
        self.camera_id = camera_id
        lookup = sv.ColorLookup.TRACK
        self._boxes = sv.BoxAnnotator(thickness=2, color_lookup=lookup)
        self._trails = sv.TraceAnnotator(
            thickness=2, trace_length=max(2, int(round(TRAIL_SECONDS * (fps or 25.0)))),
            position=sv.Position.BOTTOM_CENTER, color_lookup=lookup,
        )  # fmt: skip
        self._labels = sv.LabelAnnotator(text_scale=0.45, text_padding=3, color_lookup=lookup)
        self._strips: dict[tuple[int, int], tuple[float, int, int, int, int]] = {}

    def annotate(
        self, image: np.ndarray, index: int, timestamp: float, xyxy: np.ndarray, track_ids: np.ndarray,
        global_ids: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """A copy of ``image`` with every box of this frame drawn; ``global_ids`` -1 where unlinked."""
        out = image.copy()
        if len(xyxy):
            track_ids = np.asarray(track_ids, np.int64)
            global_ids = np.asarray(global_ids, np.int64)
            linked = global_ids >= 0
            colour_ids = np.where(linked, global_ids, UNLINKED_COLOUR_OFFSET + track_ids)
            detections = sv.Detections(
                xyxy=np.asarray(xyxy, np.float32), class_id=np.zeros(len(xyxy), int), tracker_id=colour_ids
            )
            labels = [f"G{g}" if g >= 0 else f"#{t}" for g, t in zip(global_ids, track_ids)]
            out = self._trails.annotate(out, detections)
            out = self._boxes.annotate(out, detections)
            out = self._labels.annotate(out, detections, labels=labels)
        _header(out, f"{self.camera_id}  {_clock(timestamp)}  frame {index}", self._strip(out.shape[0], index))
        return out

    def _strip(self, height: int, index: int) -> tuple[float, int, int, int, int]:
        """Text scale, thickness, strip width and height, baseline: measured once per frame height and width of
        the frame number (every header has the same shape otherwise)."""
        key = (height, len(str(index)))
        if key not in self._strips:
            scale = max(0.4, height / 900)
            thickness = max(1, int(round(scale * 1.5)))
            sample = f"{self.camera_id}  00:00:00.00  frame {'0' * key[1]}"
            (w, h), base = cv2.getTextSize(sample, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            self._strips[key] = (scale, thickness, w, h, base)
        return self._strips[key]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, float(seconds)), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{secs:05.2f}"


def _header(image: np.ndarray, text: str, strip: tuple[float, int, int, int, int]) -> None:
    """White ``text`` on a dark strip in the top-left corner (``strip`` from :meth:`FrameAnnotator._strip`)."""
    scale, thickness, w, h, base = strip
    pad = max(3, int(4 * scale))
    cv2.rectangle(image, (0, 0), (w + 2 * pad, h + base + 2 * pad), (32, 32, 32), thickness=-1)
    cv2.putText(image, text, (pad, h + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
