"""Camera readers: one thread per camera feeding a queue of :class:`~pipeline.records.Frame`.

Files and image folders never drop a frame (the reader blocks when its bounded queue is full). Live streams
and webcams are processed at real time: their queue holds only the newest frame, older ones are dropped and
counted. Every attempt to open a stream is bounded by ``open_timeout``; a stream without a frame for
``frame_timeout`` is lost. A lost stream counts one disconnect, is reopened with exponential backoff and its
frame numbering continues where it stopped; the other cameras keep running. Corrupt frames of files are
logged, counted and skipped.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from configs.schema import CameraConfig, SourceOptions
from configs.validate import ConfigError
from pipeline.records import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class SourceInfo:
    """What a source says about itself before reading: size, rate and length (0 when unknown)."""

    width: int
    height: int
    fps: float
    frame_count: int
    live: bool


@dataclass
class ReaderStats:
    """Counters a reader keeps; read by the run summary."""

    frames: int = 0
    dropped: int = 0  # live frames replaced by a newer one before the pipeline took them
    corrupt: int = 0  # frames that did not decode (the source itself was still there)
    disconnects: int = 0  # times a delivering live stream was lost
    reconnects: int = 0  # times a lost live stream delivered again
    error: str | None = None  # the current problem; cleared when a live camera recovers
    failed: bool = False  # the reader stopped because of an error (gave up, unreadable), not at the end


@dataclass(frozen=True)
class EndOfStream:
    """Put on a camera's queue once when its reader stops."""

    camera_id: str
    reason: str


def is_live(camera: CameraConfig) -> bool:
    return camera.kind in ("stream", "webcam")


def redact(source: str | int) -> str:
    """The source for a log line, without the password of ``scheme://user:password@host`` URLs."""
    return re.sub(r"^([a-z]+://[^/@:]*):[^/@]*@", r"\1:***@", str(source))


def _valid(image: np.ndarray | None) -> bool:
    return image is not None and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


def list_images(folder: Path) -> list[Path]:
    """Image files of a sequence folder in name order (MOTChallenge ``img1/`` style)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _folder_fps(folder: Path) -> float | None:
    """Frame rate from a MOTChallenge ``seqinfo.ini`` beside or above the image folder."""
    for ini in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if ini.is_file():
            for line in ini.read_text(errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip().lower() == "framerate":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None


def probe(camera: CameraConfig) -> SourceInfo:
    """Open a file or folder source once to learn its size, rate and length.

    Live sources are not opened here (that may block); they report zeros and ``live=True``.
    Raises ConfigError when a file cannot be opened as video or a folder holds no images.
    """
    key = f"camera {camera.id!r}"
    if is_live(camera):
        return SourceInfo(0, 0, camera.fps or 0.0, 0, live=True)
    path = Path(str(camera.source))
    if camera.kind == "folder":
        images = list_images(path)
        if not images:
            raise ConfigError(f"{key}: expected image files {IMAGE_SUFFIXES} in folder {path}, found none")
        first = cv2.imread(str(images[0]))
        height, width = first.shape[:2] if first is not None else (0, 0)
        fps = camera.fps or _folder_fps(path) or DEFAULT_FPS
        return SourceInfo(width, height, fps, len(images), live=False)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ConfigError(f"{key}: cannot open {path} as a video (unsupported or corrupt file)")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = camera.fps or cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        cap.release()
    return SourceInfo(width, height, float(fps), count, live=False)


def check_roi(camera: CameraConfig, info: SourceInfo) -> None:
    """ConfigError when the camera's crop or region of interest does not lie inside its frame.

    The ROI is checked against the frame after cropping (a virtual camera's own frame).
    """
    if info.width <= 0 or info.height <= 0:
        return
    width, height = info.width, info.height
    for name in ("crop", "roi"):
        box = getattr(camera, name)
        if box is None:
            continue
        x1, y1, x2, y2 = box
        if x1 >= width or y1 >= height or x2 > width or y2 > height:
            raise ConfigError(
                f"camera {camera.id!r}: {name} {list(box)} lies outside the {width}x{height} frame; "
                f"expected 0 <= x1 < x2 <= {width} and 0 <= y1 < y2 <= {height}"
            )
        if name == "crop":
            width, height = x2 - x1, y2 - y1


def open_file(path: str, decode_threads: int = 0) -> cv2.VideoCapture:
    """A video file opened for reading, with ``decode_threads`` FFmpeg threads (0: FFmpeg's choice)."""
    if decode_threads > 0:
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, decode_threads])
        if cap.isOpened():
            return cap
        cap.release()  # not an FFmpeg file: any backend that can
    return cv2.VideoCapture(path)


class CameraReader(threading.Thread):
    """Decode one camera into ``self.queue`` until the source ends, fails for good, or ``stop()``."""

    def __init__(self, camera: CameraConfig, options: SourceOptions, info: SourceInfo | None = None) -> None:
        super().__init__(name=f"reader-{camera.id}", daemon=True)
        self.camera = camera
        self.options = options
        self.info = info if info is not None else probe(camera)
        self.live = is_live(camera)
        self.queue: queue.Queue[Frame | EndOfStream] = queue.Queue(maxsize=1 if self.live else options.queue_size)
        self.stats = ReaderStats()
        self.origin = time.monotonic()  # live frame timestamps are seconds since this instant
        self._stop_event = threading.Event()

    def age(self, frame: Frame, now: float | None = None) -> float | None:
        """Seconds since a live ``frame`` was captured (None for files: their time is the video's)."""
        if not self.live:
            return None
        return (time.monotonic() if now is None else now) - self.origin - frame.timestamp

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        reason = "end of source"
        try:
            frames = self._folder_frames() if self.camera.kind == "folder" else self._capture_frames()
            for frame in frames:
                if self.stopped:
                    reason = "stopped"
                    break
                self._emit(frame)
        except Exception as exc:  # a reader must never take the process down; the error is reported
            log.exception("camera %s: reader failed", self.camera.id)
            self.stats.error = f"{type(exc).__name__}: {exc}"
            reason = "error"
        if reason == "end of source" and self.stopped:  # e.g. Ctrl-C while a live camera was reconnecting
            reason = "stopped"
        elif reason == "end of source" and self.stats.error:
            reason = "error"
        self.stats.failed = reason == "error"
        self._put_end(EndOfStream(self.camera.id, reason))

    def frames(self) -> Iterator[Frame]:
        """The frames of a file or image-folder camera, read in the calling thread (no thread, no queue):
        replaying a recorded source (``pipeline.render``). The same frames the thread would deliver."""
        if self.live:
            raise ValueError(f"camera {self.camera.id}: expected a file or folder source to replay, got a live one")
        source = self._folder_frames() if self.camera.kind == "folder" else self._capture_frames()
        for frame in source:
            self.stats.frames += 1
            yield self._window(frame)

    # -- emitting -------------------------------------------------------------------------------
    def _window(self, frame: Frame) -> Frame:
        if self.camera.crop is None:
            return frame
        x1, y1, x2, y2 = self.camera.crop  # a virtual camera: a fixed window of the source
        return Frame(frame.camera_id, frame.index, frame.timestamp, np.ascontiguousarray(frame.image[y1:y2, x1:x2]))

    def _emit(self, frame: Frame) -> None:
        self.stats.frames += 1
        frame = self._window(frame)
        if not self.live:
            while not self.stopped:
                try:
                    self.queue.put(frame, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return
        while True:  # live: keep the newest frames, drop the oldest
            try:
                self.queue.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.stats.dropped += 1
                except queue.Empty:
                    pass

    def _put_end(self, end: EndOfStream) -> None:
        while True:
            try:
                self.queue.put(end, timeout=0.1)
                return
            except queue.Full:
                if self.live or self.stopped:
                    try:
                        self.queue.get_nowait()
                    except queue.Empty:
                        pass

    # -- frame producers -----------------------------------------------------------------------
    def _limit_reached(self, emitted: int) -> bool:
        return self.camera.max_frames is not None and emitted >= self.camera.max_frames

    def _folder_frames(self) -> Iterator[Frame]:
        images = list_images(Path(str(self.camera.source)))
        fps = self.info.fps or DEFAULT_FPS
        emitted = 0
        for index in range(0, len(images), self.camera.stride):
            if self._limit_reached(emitted) or self.stopped:
                return
            image = cv2.imread(str(images[index]), cv2.IMREAD_COLOR)
            if image is None or image.size == 0:
                self.stats.corrupt += 1
                log.warning("camera %s: cannot decode %s, skipped", self.camera.id, images[index].name)
                continue
            emitted += 1
            yield Frame(self.camera.id, index, index / fps, image)

    def _capture_frames(self) -> Iterator[Frame]:
        if self.live:
            yield from self._live_frames()
            return
        cap = open_file(str(self.camera.source), self.options.decode_threads)
        try:
            if not cap.isOpened():
                self.stats.error = f"cannot open {self.camera.source} as a video"
                return
            emitted = 0
            for index, image, msec in self._read_file(cap):
                if index % self.camera.stride:
                    continue
                if self._limit_reached(emitted):
                    return
                emitted += 1
                yield Frame(self.camera.id, index, self._timestamp(index, msec), image)
        finally:
            cap.release()

    def _live_frames(self) -> Iterator[Frame]:
        """Frames of a stream or webcam; a lost stream is reopened with backoff, its numbering continues."""
        index, emitted, attempt = -1, 0, 0
        lost_at: float | None = None  # monotonic time the stream was lost; None while it delivers
        while not self.stopped:
            cap = self._open()
            delivered = False
            if cap is not None:
                try:
                    for image in self._read_live(cap):
                        if not delivered and (attempt or lost_at is not None):
                            self._recovered(lost_at, attempt)
                        delivered, attempt, lost_at = True, 0, None
                        index += 1
                        if index % self.camera.stride:
                            continue
                        if self._limit_reached(emitted):
                            return
                        emitted += 1
                        yield Frame(self.camera.id, index, time.monotonic() - self.origin, image)
                finally:
                    cap.release()
            if self.stopped:
                return
            if delivered:  # a working stream went away: one disconnect, however many reads failed
                lost_at = time.monotonic()
                self.stats.disconnects += 1
                log.warning("camera %s: stream lost (%s)", self.camera.id, self.stats.error)
            if not self._backoff(attempt):
                return
            attempt += 1

    def _recovered(self, lost_at: float | None, attempts: int) -> None:
        if lost_at is None:
            log.info("camera %s: connected after %d failed attempts", self.camera.id, attempts)
        else:
            self.stats.reconnects += 1
            down = time.monotonic() - lost_at
            log.info("camera %s: reconnected after %.1f s without frames", self.camera.id, down)
        self.stats.error = None

    def _open(self) -> cv2.VideoCapture | None:
        """Open the live source within ``open_timeout``; None (and ``stats.error`` says why) when it fails."""
        timeout = self.options.open_timeout
        where = redact(self.camera.source)
        log.info("camera %s: opening %s (timeout %.1f s)", self.camera.id, where, timeout)
        started = time.monotonic()
        if self.camera.kind == "stream":  # the FFmpeg backend honours both timeouts on every attempt
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.options.frame_timeout * 1000),
            ]  # fmt: skip
            cap = cv2.VideoCapture(str(self.camera.source), cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(self.camera.source)
        if cap.isOpened():
            log.info("camera %s: opened in %.1f s", self.camera.id, time.monotonic() - started)
            return cap
        cap.release()
        if time.monotonic() - started >= 0.9 * timeout:
            msg = f"cannot open {where}: no answer within {timeout:.1f} s (sources.open_timeout)"
        else:
            msg = f"cannot open {where}: refused, not found or not a video stream"
        log.warning("camera %s: %s", self.camera.id, msg)
        self.stats.error = msg
        return None

    def _backoff(self, attempt: int) -> bool:
        """Sleep before reconnect ``attempt``; False when attempts are exhausted or we were stopped."""
        opts = self.options
        if attempt >= opts.reconnect_attempts:
            self.stats.error = f"gave up after {attempt} reconnect attempts: {self.stats.error or 'stream failed'}"
            log.error("camera %s: %s", self.camera.id, self.stats.error)
            return False
        delay = min(opts.reconnect_backoff * (2**attempt), opts.reconnect_backoff_max)
        log.info(
            "camera %s: reconnecting in %.1f s (attempt %d of %d)",
            self.camera.id, delay, attempt + 1, opts.reconnect_attempts,
        )  # fmt: skip
        return not self._stop_event.wait(delay)

    def _read_live(self, cap: cv2.VideoCapture) -> Iterator[np.ndarray]:
        """Yield images until a read fails or times out (``frame_timeout``); ``stats.error`` says which."""
        failures = 0
        timeout = self.options.frame_timeout
        while not self.stopped:
            started = time.monotonic()
            ok, image = cap.read()
            if ok and _valid(image):
                failures = 0
                yield image
                continue
            waited = time.monotonic() - started
            if ok:  # a frame came but did not decode: the stream is still there
                failures += 1
                self.stats.corrupt += 1
                if failures < self.options.max_consecutive_failures:
                    continue
                self.stats.error = f"{failures} unreadable frames in a row"
            elif waited >= 0.9 * timeout:
                self.stats.error = f"no frame for {waited:.1f} s (sources.frame_timeout)"
            else:
                self.stats.error = "read failed: stream ended or connection closed"
            return

    def _read_file(self, cap: cv2.VideoCapture) -> Iterator[tuple[int, np.ndarray, float]]:
        """Yield (index, image, position ms) and skip corrupt frames; ends at EOF or too many failures."""
        failures = 0
        index = -1
        while not self.stopped:
            previous = cap.get(cv2.CAP_PROP_POS_FRAMES)
            if self.camera.stride > 1 and (index + 1) % self.camera.stride:
                ok, image = cap.grab(), None  # skipped by stride: no need to decode
            else:
                ok, image = cap.read()
                ok = ok and _valid(image)
            position = cap.get(cv2.CAP_PROP_POS_FRAMES)
            index += 1  # a failed slot is consumed too: indices stay aligned with the file's frames
            if not ok:
                if self._file_ended(index, position, previous):
                    return
                failures += 1
                self.stats.corrupt += 1
                log.warning("camera %s: unreadable frame %d, skipped", self.camera.id, index)
                if failures >= self.options.max_consecutive_failures:
                    self.stats.error = f"{failures} unreadable frames in a row"
                    return
                continue
            failures = 0
            if image is None:
                continue
            yield index, image, cap.get(cv2.CAP_PROP_POS_MSEC)

    def _file_ended(self, index: int, position: float, previous: float) -> bool:
        """A failed read at or past the known length (or, length unknown, one that did not move) is EOF."""
        total = self.info.frame_count
        if total > 0:
            return index >= total or position >= total
        return position <= previous

    def _timestamp(self, index: int, msec: float) -> float:
        if self.camera.fps is None and msec > 0:
            return msec / 1000.0
        return index / (self.info.fps or DEFAULT_FPS)


@dataclass
class _Head:
    reader: CameraReader
    frame: Frame | None = None
    done: bool = False


@dataclass
class FrameBatcher:
    """Merge the readers' queues into batches of frames, one frame per camera at most.

    File cameras are in time order across cameras: a batch holds every file camera whose next frame is within
    half a frame period of the earliest pending file timestamp; the batcher waits for each file camera's next
    frame (files never drop). Live cameras join a batch with their newest frame when they have one and are
    never waited for, so a slow or absent live camera does not slow the file cameras. Only when no camera has
    a frame does the batcher sleep ``poll_s``.
    """

    readers: list[CameraReader]
    poll_s: float = 0.005
    _heads: dict[str, _Head] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._heads = {r.camera.id: _Head(r) for r in self.readers}

    def __iter__(self) -> Iterator[list[Frame]]:
        while True:
            self._fill()
            pending = [h for h in self._heads.values() if h.frame is not None]
            if not pending:
                if all(h.done for h in self._heads.values()):
                    return
                time.sleep(self.poll_s)
                continue
            files = [h for h in pending if not h.reader.live]
            if files:
                earliest = min(h.frame.timestamp for h in files)
                tolerance = 0.5 / max(max(h.reader.info.fps for h in files), 1e-6)
            batch = []
            for head in pending:
                if head.reader.live or head.frame.timestamp <= earliest + tolerance:
                    batch.append(head.frame)
                    head.frame = None
            yield batch

    def _fill(self) -> None:
        """Wait for every file camera's next frame; take what live cameras have without waiting."""
        for head in self._heads.values():
            if head.done or head.frame is not None:
                continue
            item = self._poll(head) if head.reader.live else self._blocking_get(head)
            if item is None:
                continue
            if isinstance(item, EndOfStream):
                head.done = True
                if item.reason == "error":
                    log.error("camera %s stopped: %s", item.camera_id, head.reader.stats.error)
            else:
                head.frame = item

    @staticmethod
    def _poll(head: _Head) -> Frame | EndOfStream | None:
        try:
            return head.reader.queue.get_nowait()
        except queue.Empty:
            if not head.reader.is_alive() and head.reader.queue.empty():
                return EndOfStream(head.reader.camera.id, "reader exited")
            return None

    @staticmethod
    def _blocking_get(head: _Head) -> Frame | EndOfStream:
        while True:
            try:
                return head.reader.queue.get(timeout=0.5)
            except queue.Empty:
                if not head.reader.is_alive() and head.reader.queue.empty():
                    return EndOfStream(head.reader.camera.id, "reader exited")
