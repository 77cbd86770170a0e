"""Test side of the loopback RTSP server (``tests/rtsp_server.py``): start, kill, restart, stall, resume.

The server runs under a Python that has GStreamer's ``gi`` (Debian's ``/usr/bin/python3``, or
``MCPA_GST_PYTHON``). Where its Debian packages are missing the RTSP tests skip with a message naming them;
with ``MCPA_REQUIRE_RTSP=1`` (set by ``.ci/run``) they fail instead, so CI never skips them silently.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("rtsp_server.py")
GST_PYTHON = os.environ.get("MCPA_GST_PYTHON", "/usr/bin/python3")
PACKAGES = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good"


@cache
def missing_packages() -> str:
    """Space-separated Debian packages the server lacks; empty when it can run."""
    if not Path(GST_PYTHON).is_file():
        return f"python3 ({GST_PYTHON} not found) {PACKAGES}"
    done = subprocess.run([GST_PYTHON, str(SERVER), "--check"], capture_output=True, text=True, timeout=60)
    return "" if done.returncode == 0 else (done.stdout.strip() or done.stderr.strip()[-300:])


def require_rtsp() -> None:
    """Skip (or, under MCPA_REQUIRE_RTSP=1, fail) the calling test when the server cannot run."""
    missing = missing_packages()
    if not missing:
        return
    msg = f"RTSP test server needs Debian packages: {missing} (apt-get install -y {PACKAGES})"
    if os.environ.get("MCPA_REQUIRE_RTSP") == "1":
        pytest.fail(msg + "; MCPA_REQUIRE_RTSP=1 forbids skipping")
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """One server process on a fixed loopback port; ``restart`` brings a new one up on the same port."""

    def __init__(self, fps: int = 25) -> None:
        self.port = free_port()
        self.fps = fps
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> RtspServer:
        cmd = [GST_PYTHON, str(SERVER), "--port", str(self.port), "--fps", str(self.fps)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.kill()
            raise RuntimeError(f"RTSP test server did not start: {line!r} {self.proc.stderr.read()[-500:]}")
        return self

    def kill(self) -> None:
        """The camera dies: SIGKILL, no goodbye to clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        deadline = time.monotonic() + 10
        while True:  # the port may linger for a moment after the kill
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stall(self) -> None:
        """Frames stop; connections stay open."""
        self._signal(signal.SIGUSR1, "stalled")

    def resume(self) -> None:
        self._signal(signal.SIGUSR2, "resumed")

    def _signal(self, sig: signal.Signals, ack: str) -> None:
        assert self.proc is not None and self.proc.poll() is None, "server is not running"
        self.proc.send_signal(sig)
        line = self.proc.stdout.readline().strip()
        assert line == ack, f"server answered {line!r} to {sig.name}, expected {ack!r}"

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class SilentServer:
    """A TCP port that accepts connections and never answers: an RTSP open that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"rtsp://127.0.0.1:{self.sock.getsockname()[1]}/cam"

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
