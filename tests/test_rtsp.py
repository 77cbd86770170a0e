"""Live cameras against a real RTSP server on loopback: kill, restart, stall, never up, slow open.

Short timeouts from the config keep every scenario to a few seconds. The server is ``tests/rtsp_server.py``
(GStreamer under Debian's Python); see ``tests/rtsp.py`` for when these tests skip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np
import pytest
import supervision as sv
from rtsp import RtspServer, SilentServer, free_port, require_rtsp

from configs import CameraConfig, SourceOptions, config_from_dict
from pipeline.engine import run_pipeline
from pipeline.records import Frame
from pipeline.sources import CameraReader, FrameBatcher

LIVE = SourceOptions(
    reconnect_attempts=3, reconnect_backoff=0.2, reconnect_backoff_max=0.4, open_timeout=2.0, frame_timeout=1.0
)


class LiveReading:
    """A reader of ``url`` consumed by a batcher on a thread, as the engine does; frames land in ``frames``."""

    def __init__(self, url: str, options: SourceOptions = LIVE) -> None:
        self.reader = CameraReader(CameraConfig("live", url), options)
        self.frames: list[Frame] = []
        self._thread = threading.Thread(target=self._consume, daemon=True)

    def _consume(self) -> None:
        for batch in FrameBatcher([self.reader]):
            self.frames.extend(batch)

    def __enter__(self) -> LiveReading:
        self.reader.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.stop()
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the reader did not stop within 15 s"

    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"waited {timeout} s for {what}; stats {self.reader.stats}"
            time.sleep(0.02)

    def wait_frames(self, more: int, timeout: float = 10.0) -> None:
        target = len(self.frames) + more
        self.wait(lambda: len(self.frames) >= target, timeout, f"{target} frames")

    def wait_ended(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive(), f"reader still running after {timeout} s; stats {self.reader.stats}"


@pytest.fixture
def rtsp_server():
    require_rtsp()
    with RtspServer() as server:
        yield server


def messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def assert_numbered_by_decoded_frames(live: LiveReading) -> None:
    """Every index is a decoded frame: gaps are only the counted drops, a disconnect adds none."""
    indices = [f.index for f in live.frames]
    stats = live.reader.stats
    assert indices == sorted(set(indices)) and indices[-1] == stats.frames - 1, (indices, stats)
    assert stats.frames - len(indices) - stats.dropped in (0, 1)  # one may still sit in the queue


def test_killed_server_is_one_disconnect_then_the_camera_gives_up(rtsp_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.sources")
    with LiveReading(rtsp_server.url) as live:
        live.wait_frames(10)
        rtsp_server.kill()
        live.wait_ended(timeout=15)
    stats = live.reader.stats
    assert stats.disconnects == 1 and stats.corrupt == 0 and stats.reconnects == 0
    assert stats.failed and stats.error.startswith("gave up after 3 reconnect attempts")
    log = messages(caplog)
    assert "stream lost" in log and log.count("reconnecting in") == 3 and "unreadable" not in log
    assert_numbered_by_decoded_frames(live)


def test_restarted_server_is_reconnected_and_the_error_cleared(rtsp_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.sources")
    with LiveReading(rtsp_server.url) as live:
        live.wait_frames(10)
        rtsp_server.kill()
        live.wait(lambda: live.reader.stats.disconnects == 1, 10, "the loss to be noticed")
        assert live.reader.stats.error is not None
        rtsp_server.restart()
        live.wait(lambda: live.reader.stats.reconnects == 1, 15, "the reconnect")
        live.wait_frames(10)
        stats = live.reader.stats
        assert stats.error is None and not stats.failed and stats.disconnects == 1 and stats.corrupt == 0
    assert "reconnected after" in messages(caplog)
    assert_numbered_by_decoded_frames(live)


def test_stalled_stream_is_detected_and_reconnected(rtsp_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.sources")
    with LiveReading(rtsp_server.url) as live:
        live.wait_frames(10)
        rtsp_server.stall()
        stalled_at = time.monotonic()
        live.wait(lambda: live.reader.stats.disconnects == 1, 5, "the stall to be noticed")
        noticed = time.monotonic() - stalled_at
        rtsp_server.resume()
        live.wait(lambda: live.reader.stats.reconnects == 1, 15, "the reconnect")
        resumed = len(live.frames)
        live.wait_frames(10)
        assert live.reader.stats.error is None
    assert 0.5 < noticed < 3.0  # frame_timeout is 1 s
    assert "no frame for" in messages(caplog) and "reconnected after" in messages(caplog)
    # after the stall the pipeline sees fresh frames, not a burst of stale ones: capture times advance with
    # the arrival clock (no two frames a frame period apart arrive together by the dozen)
    after = live.frames[resumed:]
    assert after[-1].timestamp - after[0].timestamp > 0.2
    assert_numbered_by_decoded_frames(live)


def test_camera_that_is_never_up_gives_up_quickly(caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.sources")
    started = time.monotonic()
    with LiveReading(f"rtsp://127.0.0.1:{free_port()}/cam") as live:
        live.wait_ended(timeout=10)
    assert time.monotonic() - started < 5  # 3 refused opens and 0.2 + 0.4 + 0.4 s of backoff
    stats = live.reader.stats
    assert live.frames == [] and stats.failed and stats.disconnects == 0
    assert "refused, not found or not a video stream" in stats.error


def test_open_that_hangs_is_bounded_by_open_timeout_and_logged(caplog) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.sources")
    options = SourceOptions(reconnect_attempts=1, reconnect_backoff=0.1, open_timeout=1.0, frame_timeout=1.0)
    started = time.monotonic()
    with SilentServer() as silent, LiveReading(silent.url, options) as live:
        live.wait_ended(timeout=10)
    elapsed = time.monotonic() - started
    assert 1.8 < elapsed < 5  # two attempts of 1 s each, not 20 s each
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages(caplog).count("opening rtsp://") == 2
    assert len(warnings) == 2 and all("no answer within 1.0 s" in w for w in warnings)
    assert live.reader.stats.failed and live.frames == []


class SlowDetector:
    """No boxes, ``seconds`` per call (a pipeline slower than the camera); Ctrl-C after ``calls`` calls."""

    def __init__(self, seconds: float, calls: int) -> None:
        self.seconds, self.calls = seconds, calls

    def __call__(self, images: list[np.ndarray], camera_ids: list[str]) -> list[sv.Detections]:
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        time.sleep(self.seconds)
        return [sv.Detections.empty() for _ in images]


def test_live_camera_is_processed_at_real_time_beside_a_file(rtsp_server, tmp_path) -> None:
    writer = cv2.VideoWriter(str(tmp_path / "a.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(30):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    cams = [{"id": "file", "source": str(tmp_path / "a.avi")}, {"id": "live", "source": rtsp_server.url}]
    cfg = config_from_dict({"cameras": cams, "detector": {"backend": "bgsub"}, "sources": {"open_timeout": 5.0}})
    summary = run_pipeline(cfg, tmp_path / "run", SlowDetector(0.1, calls=40), progress=False)
    live, file = summary["cameras"]["live"], summary["cameras"]["file"]
    assert summary["interrupted"] and summary["failed_cameras"] == {}
    # the file goes at the pipeline's pace from the first batch, while the live camera is still opening
    assert file["frames"] == 30 and file["dropped"] == 0 and file["frame_age_s"] is None  # files never drop
    # a 25 fps camera and a 10 batches/s pipeline: the newest frame is taken, the others dropped and counted
    assert live["frames"] >= 20 and live["dropped"] > live["frames"] / 2
    assert live["frame_age_s"]["frames"] - live["frames"] in (0, 1)  # the interrupted batch was aged too
    assert live["frame_age_s"]["p95"] < 0.15, live["frame_age_s"]  # one frame period plus decoding at most


def test_run_returns_only_after_its_readers_left_the_decoder(tmp_path) -> None:
    """A process that exits while a reader thread is inside FFmpeg aborts ("FATAL: exception not rethrown")."""
    (tmp_path / "img").mkdir()  # images, not a video: OpenCV serialises FFmpeg opens, a folder needs none
    for i in range(5):
        cv2.imwrite(str(tmp_path / "img" / f"{i:06d}.png"), np.zeros((48, 64, 3), np.uint8))
    with SilentServer() as silent:  # the live camera is stuck in its open when the run is interrupted
        cams = [{"id": "file", "source": str(tmp_path / "img")}, {"id": "hung", "source": silent.url}]
        sources = {"open_timeout": 2.0, "reconnect_attempts": 0}
        cfg = config_from_dict({"cameras": cams, "detector": {"backend": "bgsub"}, "sources": sources})
        summary = run_pipeline(cfg, tmp_path / "run", SlowDetector(0.0, calls=3), progress=False)
    assert summary["interrupted"] and summary["cameras"]["file"]["frames"] == 3
    assert not [t.name for t in threading.enumerate() if t.name.startswith("reader-")]


def test_live_camera_video_is_drawn_from_its_recording_with_final_ids(rtsp_server, tmp_path) -> None:
    cams = [{"id": "live", "source": rtsp_server.url, "max_frames": 20}]
    cfg = config_from_dict({
        "cameras": cams, "detector": {"backend": "bgsub"}, "sources": {"open_timeout": 5.0},
        "outputs": {"video": True},
    })  # fmt: skip
    summary = run_pipeline(cfg, tmp_path / "run", SlowDetector(0.0, calls=1000), progress=False)
    processed = summary["cameras"]["live"]["frames"]  # the newest frames: a live camera drops what it must
    assert processed >= 1 and summary["videos"]["rendered"], summary["cameras"]
    videos = tmp_path / "run" / "videos"
    assert (videos / "live.source.mp4").is_file() and (videos / "live.source.npz").is_file()
    drawn = cv2.VideoCapture(str(videos / "live.mp4"))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == processed  # exactly the frames the run processed
    drawn.release()
