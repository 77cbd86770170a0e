"""A tiny RTSP server on loopback for the stream tests; run with a Python that has GStreamer's ``gi``.

    /usr/bin/python3 tests/rtsp_server.py --port 8554 [--fps 25] [--size 160x120]
    /usr/bin/python3 tests/rtsp_server.py --check      # prints the missing Debian packages, or "ok"

Serves ``rtsp://127.0.0.1:PORT/cam``: a moving ``videotestsrc`` pattern, MJPEG over RTP. It prints
``ready PORT`` on stdout once it accepts clients. ``SIGUSR1`` stalls every stream (the connection stays open,
no packet is sent), ``SIGUSR2`` resumes it, ``SIGTERM`` stops the server. The test side lives in
``tests/rtsp.py``; this file imports nothing from the project because it runs under Debian's Python.
Needs the Debian packages python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-base and
gstreamer1.0-plugins-good.
"""

from __future__ import annotations

import argparse
import signal
import sys

# element -> the Debian package that ships it
ELEMENTS = {
    "videotestsrc": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base",
    "valve": "libgstreamer1.0-0",
    "jpegenc": "gstreamer1.0-plugins-good",
    "rtpjpegpay": "gstreamer1.0-plugins-good",
}


def missing_packages() -> list[str]:
    """Debian packages this server needs that are not installed (empty when it can run)."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
    except (ImportError, ValueError):
        return ["python3-gi"]
    try:
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GstRtspServer  # noqa: F401
    except (ImportError, ValueError):
        return ["gir1.2-gst-rtsp-server-1.0"]
    Gst.init(None)
    return sorted({pkg for name, pkg in ELEMENTS.items() if Gst.ElementFactory.find(name) is None})


if __name__ == "__main__" and sys.argv[1:] == ["--check"]:
    missing = missing_packages()
    print(" ".join(missing) if missing else "ok")
    sys.exit(1 if missing else 0)

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


class StallableFactory(GstRtspServer.RTSPMediaFactory):
    """A media factory whose pipelines pass through a valve that ``stall(True)`` closes on every client."""

    def __init__(self, launch: str) -> None:
        super().__init__()
        self.set_launch(launch)
        self.set_shared(False)
        self.valves: list[Gst.Element] = []
        self.stalled = False
        self.connect("media-configure", self._configure)

    def _configure(self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        valve = media.get_element().get_by_name("valve")
        valve.set_property("drop", self.stalled)
        self.valves.append(valve)

    def stall(self, on: bool) -> bool:
        self.stalled = on
        for valve in self.valves:
            valve.set_property("drop", on)
        print("stalled" if on else "resumed", flush=True)
        return GLib.SOURCE_CONTINUE


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--size", default="160x120")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    launch = (
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
        f"framerate={args.fps}/1 ! valve name=valve drop=false ! videoconvert ! video/x-raw,format=I420 ! "
        "jpegenc quality=70 ! rtpjpegpay name=pay0 pt=26 )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = StallableFactory(launch)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, factory.stall, True)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, factory.stall, False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or GLib.SOURCE_REMOVE)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
