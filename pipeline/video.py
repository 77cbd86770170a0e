"""Writing videos: an H.264 encoder with a logged fallback, and the annotation of one camera's frames.

- :class:`VideoEncoder` writes H.264 (``libx264`` through PyAV, ``yuv420p``, ``+faststart``), which every
  browser plays. Where PyAV or its x264 encoder is missing it falls back to OpenCV's ``mp4v`` and logs that
  browsers may not play the file. The file appears only when it is complete (temporary file + rename).
  It encodes at a constant quantiser (``qp``), ``ultrafast``, ``zerolatency``: x264's rate control (CRF)
  runs a look-ahead analysis on every frame that constant QP skips. On the rendered samples QP 24 encodes in
  0.35 ms a frame against 0.55 ms for CRF 23, with a file 30 % of the size; on real video (EPFL campus4,
  PETS09) QP 24 keeps 39-41 dB luma PSNR against its input at 60 % of CRF 23's size. A raw live recording,
  which is encoded again when drawn, is kept at QP 18.
- :class:`FrameAnnotator` draws what a reviewer needs on one camera's frames: a box coloured by identity
  (global id when linked, else the tracker's id), a short trail of each identity's feet, an id label, and a
  header with the camera name, the time and the frame index. It draws on BGR images or, in place, on the
  Y, U and V planes of decoded I420 frames (chroma at half resolution): the render of a video file then
  never converts whole frames to BGR and back (:meth:`VideoEncoder.write_i420`).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

log = logging.getLogger(__name__)

TRAIL_SECONDS = 2.0
LABEL_SCALE = 0.45
PALETTE = sv.ColorPalette.DEFAULT
UNLINKED_COLOUR_OFFSET = 1_000_000  # unlinked tracks colour by track id, away from the global ids' colours
RECORDING_SUFFIX = ".source.mp4"
RECORDING_INDEX_SUFFIX = ".source.npz"
RECORDING_QP = 18  # a live camera's raw recording is encoded again when drawn: keep it near lossless


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

    def __init__(self, path: Path, fps: float, qp: int = 24, preset: str = "ultrafast", threads: int = 1) -> None:
        if not 0 <= qp <= 51:
            raise ValueError(f"qp: expected an H.264 quantiser in [0, 51], got {qp}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps if fps and fps > 0 else 25.0
        self.codec = "h264" if h264_available() else "mp4v"
        if self.codec == "mp4v":
            log.warning("PyAV with libx264 not available: writing %s as mp4v (browsers may not play it)", self.path)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")  # containers go by suffix
        self._qp, self._preset, self._threads = qp, preset, threads
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
            stream.options = {"qp": str(self._qp), "preset": self._preset, "tune": "zerolatency"}
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
            frame = av.VideoFrame.from_numpy_buffer(yuv, format="yuv420p")  # wraps the array: no copy
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        else:
            self._cv_writer.write(np.ascontiguousarray(image))
        self.frames += 1

    def write_i420(self, yuv: np.ndarray) -> None:
        """Append an I420 frame ((H * 3 / 2, W) uint8, even sides), as decoded: no colour conversion."""
        if self._size is None:
            self._open(yuv.shape[1], yuv.shape[0] * 2 // 3)
        if self._stream is None:  # the mp4v fallback takes BGR
            self.write(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420))
            return
        import av

        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(yuv), format="yuv420p")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
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


Plane = tuple[np.ndarray, float, int]  # (image plane, scale to it from frame pixels, colour channel; -1: all of BGR)


def i420_planes(yuv: np.ndarray) -> list[Plane]:
    """Views of the Y, U and V planes of an I420 frame ((H * 3 / 2, W) uint8, even H and W), to draw on."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    flat = yuv.reshape(-1)  # a view: the planes follow each other, chroma rows need not align with W
    luma, chroma = height * width, (height // 2) * (width // 2)
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
    return [(flat[:luma].reshape(height, width), 1.0, 0), (u, 0.5, 1), (v, 0.5, 2)]


_YUV: dict[tuple[int, int, int], tuple[int, int, int]] = {}


def bgr_to_yuv(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (Y, U, V) an I420 frame stores for a BGR colour (OpenCV's BT.601 video-range conversion)."""
    if colour not in _YUV:
        patch = np.empty((2, 2, 3), np.uint8)
        patch[:] = colour
        i420 = cv2.cvtColor(patch, cv2.COLOR_BGR2YUV_I420).ravel()  # 4 Y, then 1 U, then 1 V
        _YUV[colour] = (int(i420[0]), int(i420[4]), int(i420[5]))
    return _YUV[colour]


class _Canvas:
    """Draws on a BGR image or on the three planes of an I420 frame with the same calls (chroma planes at
    half resolution): the render decodes, draws and encodes in YUV without converting whole frames."""

    def __init__(self, planes: list[Plane]) -> None:
        self.planes = planes
        self.bgr = len(planes) == 1 and planes[0][2] < 0

    def _colours(self, colour: tuple[int, int, int]) -> tuple:
        return (colour,) if self.bgr else bgr_to_yuv(colour)

    def rectangle(self, p1: tuple[int, int], p2: tuple[int, int], colour: tuple[int, int, int], thickness: int) -> None:
        for (plane, k, _), value in zip(self.planes, self._colours(colour)):
            if k == 1.0:
                cv2.rectangle(plane, p1, p2, value, thickness)
            else:
                t = thickness if thickness < 0 else _chroma_width(thickness, k)
                cv2.rectangle(plane, (int(p1[0] * k), int(p1[1] * k)), (int(p2[0] * k), int(p2[1] * k)), value, t)

    def polyline(self, points: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
        for (plane, k, _), value in zip(self.planes, self._colours(colour)):
            if k == 1.0:
                cv2.polylines(plane, [points], False, value, thickness, cv2.LINE_AA)
            else:  # chroma: no smoothing
                cv2.polylines(plane, [(points * k).astype(np.int32)], False, value, _chroma_width(thickness, k))

    def text(self, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int], thickness: int,
             luma_only: bool = False) -> None:  # fmt: skip
        for (plane, k, ch), value in zip(self.planes, self._colours(colour)):
            if luma_only and ch > 0:
                break
            cv2.putText(plane, text, (int(org[0] * k), int(org[1] * k)), cv2.FONT_HERSHEY_SIMPLEX, scale * k, value,
                        max(1, int(thickness * k)), cv2.LINE_AA)  # fmt: skip


def _chroma_width(thickness: int, k: float) -> int:
    """A line's width on a subsampled plane: wide enough to cover the full-resolution line (its half-pixel
    offset included), so its colour does not fade to the background's."""
    return int(np.ceil(thickness * k)) + 1


class FrameAnnotator:
    """Boxes coloured by identity, trails, id labels and a camera/time header for one camera's frames.

    Colours come from supervision's default palette, looked up by identity (``ColorPalette.by_idx``, what
    ``ColorLookup.TRACK`` does), so an identity has the same colour in every camera's video and on the
    review page. Drawing is plain OpenCV: supervision's annotators cost 4x more per frame here, and the
    videos are drawn at the end of a run, where every millisecond is waiting time. :meth:`annotate` draws on
    a BGR image, :meth:`annotate_i420` on a decoded I420 frame in place (the same picture, chroma at half
    resolution as the encoder stores it).
    """

    def __init__(self, camera_id: str, fps: float) -> None:
        self.camera_id = camera_id
        self.trail_frames = max(2, int(round(TRAIL_SECONDS * (fps or 25.0))))
        self._trails: dict[int, deque[tuple[int, int, int]]] = {}
        self._calls = 0
        self._label_sizes: dict[str, tuple[int, int]] = {}
        self._strips: dict[tuple[int, int], tuple[float, int, int, int, int]] = {}

    def annotate(
        self, image: np.ndarray, index: int, timestamp: float, xyxy: np.ndarray, track_ids: np.ndarray,
        global_ids: np.ndarray, *, copy: bool = True,
    ) -> np.ndarray:  # fmt: skip
        """``image`` (a copy unless ``copy=False``) with every box of this frame drawn; ``global_ids`` -1 where
        unlinked."""
        out = image.copy() if copy else image
        self._draw(_Canvas([(out, 1.0, -1)]), out.shape[0], index, timestamp, xyxy, track_ids, global_ids)
        return out

    def annotate_i420(
        self, yuv: np.ndarray, index: int, timestamp: float, xyxy: np.ndarray, track_ids: np.ndarray,
        global_ids: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Draw on ``yuv`` ((H * 3 / 2, W) I420, even sides) in place and return it."""
        if yuv.ndim != 2 or yuv.shape[0] % 3 or (yuv.shape[0] * 2 // 3) % 2 or yuv.shape[1] % 2:
            raise ValueError(f"expected an I420 frame of shape (H * 3 / 2, W) with even H and W, got {yuv.shape}")
        self._draw(_Canvas(i420_planes(yuv)), yuv.shape[0] * 2 // 3, index, timestamp, xyxy, track_ids, global_ids)
        return yuv

    def _draw(
        self, canvas: _Canvas, height: int, index: int, timestamp: float, xyxy: np.ndarray, track_ids: np.ndarray,
        global_ids: np.ndarray,
    ) -> None:  # fmt: skip
        self._calls += 1
        if len(xyxy):
            boxes = np.round(np.asarray(xyxy, np.float64)).astype(np.int64)
            track_ids = np.asarray(track_ids, np.int64)
            global_ids = np.asarray(global_ids, np.int64)
            colour_ids = np.where(global_ids >= 0, global_ids, UNLINKED_COLOUR_OFFSET + track_ids)
            for (x1, y1, x2, y2), cid, gid, tid in zip(boxes.tolist(), colour_ids.tolist(), global_ids, track_ids):
                colour = PALETTE.by_idx(cid).as_bgr()
                self._draw_trail(canvas, cid, ((x1 + x2) // 2, y2), colour)
                canvas.rectangle((x1, y1), (x2, y2), colour, 2)
                self._draw_label(canvas, f"G{gid}" if gid >= 0 else f"#{tid}", x1, y1, colour)
        if self._calls % (4 * self.trail_frames) == 0:  # forget identities that left
            stale = [k for k, pts in self._trails.items() if pts[-1][0] <= self._calls - self.trail_frames]
            for k in stale:
                del self._trails[k]
        _header(canvas, f"{self.camera_id}  {_clock(timestamp)}  frame {index}", self._strip(height, index))

    def _draw_trail(self, canvas: _Canvas, cid: int, foot: tuple[int, int], colour: tuple[int, int, int]) -> None:
        points = self._trails.setdefault(cid, deque())
        points.append((self._calls, *foot))
        while points[0][0] <= self._calls - self.trail_frames:
            points.popleft()
        if len(points) > 1:
            canvas.polyline(np.array([(x, y) for _, x, y in points], np.int32).reshape(-1, 1, 2), colour, 2)

    def _draw_label(self, canvas: _Canvas, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
        if text not in self._label_sizes:
            (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, 1)
            self._label_sizes[text] = (w, h + base)
        w, h = self._label_sizes[text]
        top = max(0, y - h - 6)
        canvas.rectangle((x, top), (x + w + 6, top + h + 6), colour, -1)
        dark = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2] < 140
        ink = (255, 255, 255) if dark else (0, 0, 0)
        canvas.text(text, (x + 3, top + h + 1), LABEL_SCALE, ink, 1, luma_only=True)  # legible by luma alone

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


def _header(canvas: _Canvas, text: str, strip: tuple[float, int, int, int, int]) -> None:
    """White ``text`` on a dark strip in the top-left corner (``strip`` from :meth:`FrameAnnotator._strip`)."""
    scale, thickness, w, h, base = strip
    pad = max(3, int(4 * scale))
    canvas.rectangle((0, 0), (w + 2 * pad, h + base + 2 * pad), (32, 32, 32), -1)
    canvas.text(text, (pad, h + pad), scale, (255, 255, 255), thickness, luma_only=True)  # grey strip: no chroma
