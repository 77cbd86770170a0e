"""One tracker per camera from the ``trackers`` package (ByteTrack default; BoT-SORT, OC-SORT).

Each camera gets its own tracker instance, so track ids are unique per camera and never shared.
Only detections that a tracker confirmed (``tracker_id >= 0``) leave :meth:`CameraTracker.update`.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Protocol

import numpy as np
import supervision as sv

TRACKER_KINDS = ("bytetrack", "botsort", "ocsort")
_USES_FRAME = {"botsort"}


class Tracker(Protocol):
    def update(self, detections: sv.Detections, frame: np.ndarray) -> sv.Detections: ...

    def reset(self) -> None: ...


def _tracker_class(kind: str) -> type:
    import trackers

    classes = {
        "bytetrack": trackers.ByteTrackTracker,
        "botsort": trackers.BoTSORTTracker,
        "ocsort": trackers.OCSORTTracker,
    }
    if kind not in classes:
        raise ValueError(f"tracker kind: expected one of {list(classes)}, got {kind!r}")
    return classes[kind]


def tracker_parameters(kind: str) -> list[str]:
    """The constructor keywords a tracker kind accepts (for config validation and docs)."""
    signature = inspect.signature(_tracker_class(kind).__init__)
    return [name for name in signature.parameters if name != "self"]


def check_params(kind: str, params: dict[str, Any]) -> None:
    """ValueError naming ``tracker.params.<key>`` when ``kind`` takes no such constructor keyword."""
    allowed = tracker_parameters(kind)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"tracker.params.{unknown[0]}: not a {kind} parameter (valid: {', '.join(allowed)})")


class CameraTracker:
    """A ``trackers`` tracker for one camera; ``update`` returns only confirmed tracks.

    Args:
        kind: "bytetrack", "botsort" or "ocsort".
        frame_rate: the camera's frame rate (after stride), used to scale the lost-track buffer.
        params: constructor keywords of the chosen tracker (e.g. ``lost_track_buffer``).
    """

    def __init__(self, kind: str = "bytetrack", frame_rate: float = 30.0, **params: Any) -> None:
        cls = _tracker_class(kind)
        check_params(kind, params)
        params = {"frame_rate": frame_rate, **params} if "frame_rate" in tracker_parameters(kind) else params
        self.kind = kind
        self._tracker = cls(**params)
        self._uses_frame = kind in _USES_FRAME

    def update(self, detections: sv.Detections, frame: np.ndarray) -> sv.Detections:
        """Associate ``detections`` of this camera's next frame; returns the tracked subset, ids from 1."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            tracked = self._tracker.update(detections, frame if self._uses_frame else None)
        if tracked.tracker_id is None or len(tracked) == 0:
            return tracked[np.zeros(len(tracked), dtype=bool)] if len(tracked) else tracked
        tracked = tracked[tracked.tracker_id >= 0]
        tracked.tracker_id = tracked.tracker_id.astype(np.int64) + 1  # MOTChallenge ids start at 1
        return tracked

    def reset(self) -> None:
        self._tracker.reset()


def build_trackers(
    camera_ids: list[str], kind: str, frame_rates: dict[str, float], params: dict[str, Any]
) -> dict[str, CameraTracker]:
    """One independent tracker per camera id."""
    return {cid: CameraTracker(kind, frame_rates.get(cid, 30.0), **params) for cid in camera_ids}
