"""One tracker per camera from the ``trackers`` package (ByteTrack default; BoT-SORT, OC-SORT).

Each camera gets its own tracker instance, so track ids are unique per camera and never shared.
Only detections that a tracker confirmed (``tracker_id >= 0``) leave :meth:`CameraTracker.update`.

Score thresholds relative to the camera's own detector (``thresholds="auto"``, the default)
-----------------------------------------------------------------------------------------------
A detector's scores have no fixed scale: YOLO gives a large, well-lit person 0.8 and a 30-pixel person in a
crowd 0.3-0.5; background subtraction gives fill ratios of 0.3-0.65. The ``trackers`` defaults (new tracks
from scores >= 0.7, first association >= 0.6: ByteTrack's paper values, set for a detector whose confident
boxes score ~0.9) fit the first kind and never start tracks for the others. So per camera, before every frame:

- ``reference`` = the 0.9-quantile of the scores of the camera's last 1000 detections (this frame included):
  the score of a clearly seen person *for this detector on this scene*;
- ``high_conf_det_threshold`` = ``track_activation_threshold`` = 0.7 x ``reference``, clipped to
  [0.25, 0.6] and [0.25, 0.7]. Boxes at or above it take part in the first association and may start a
  track (confirmed after ``minimum_consecutive_frames`` = 2 consecutive matches, the ``trackers`` default);
  boxes below it only extend existing tracks in ByteTrack's second, low-score pass. The clip keeps the rule
  between the two usual fixed settings: never more permissive than Ultralytics' (0.25 / 0.25), never
  stricter than ByteTrack's paper (0.6 / 0.7).

Assumptions: at least ~10 % of a camera's recent detections are people seen clearly (else the reference
drifts down to the clutter's scores and the floor is what stops clutter from starting tracks); the
detector's confidence floor (``detector.confidence``, 0.1 by default) sits below the thresholds, so low
boxes reach the second pass. The quantile, ratio and window are one setting for every scene and detector,
chosen on all sequences of ``benchmarks/tracker_defaults.py`` together (PETS2009 full, windows, rescaled
and mosaic views, the rendered samples), where its numbers are. A threshold given in ``params`` is used as
is and is not adapted; ``thresholds="fixed"`` leaves both to the tracker's own defaults.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Protocol

import numpy as np
import supervision as sv

TRACKER_KINDS = ("bytetrack", "botsort", "ocsort")
THRESHOLD_MODES = ("auto", "fixed")
SCORE_THRESHOLDS = ("high_conf_det_threshold", "track_activation_threshold")
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


class ScoreThresholds:
    """A camera's association thresholds, relative to a running quantile of its recent detection scores.

    Args:
        quantile: which quantile of the recent scores is the reference (a clearly seen person's score).
        ratio: thresholds = ``ratio`` x reference, before clipping.
        window: how many recent detection scores the quantile is taken over.
        floor: lowest value either threshold takes.
        high_ceiling, activation_ceiling: highest value of ``high_conf_det_threshold`` and
            ``track_activation_threshold``.
    """

    def __init__(
        self,
        quantile: float = 0.9,
        ratio: float = 0.7,
        window: int = 1000,
        floor: float = 0.25,
        high_ceiling: float = 0.6,
        activation_ceiling: float = 0.7,
    ) -> None:
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"quantile: expected a value in [0, 1], got {quantile}")
        if ratio <= 0:
            raise ValueError(f"ratio: expected a positive value, got {ratio}")
        if window < 1:
            raise ValueError(f"window: expected >= 1 scores, got {window}")
        if not 0.0 <= floor <= min(high_ceiling, activation_ceiling) <= 1.0:
            raise ValueError(
                f"floor and ceilings: expected 0 <= floor <= ceilings <= 1, got {floor}, "
                f"{high_ceiling}, {activation_ceiling}"
            )
        self.quantile, self.ratio, self.floor = float(quantile), float(ratio), float(floor)
        self.ceilings = {SCORE_THRESHOLDS[0]: float(high_ceiling), SCORE_THRESHOLDS[1]: float(activation_ceiling)}
        self._scores = np.zeros(int(window), dtype=np.float32)
        self._seen = 0
        self.reference: float | None = None

    def observe(self, scores: np.ndarray) -> None:
        """Add one frame's detection scores, float (N,); non-finite ones are ignored."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        scores = scores[np.isfinite(scores)][-len(self._scores) :]
        if len(scores) == 0:
            return
        slots = (self._seen + np.arange(len(scores))) % len(self._scores)
        self._scores[slots] = scores
        self._seen += len(scores)
        self.reference = float(np.quantile(self._scores[: min(self._seen, len(self._scores))], self.quantile))

    def thresholds(self) -> dict[str, float]:
        """``{high_conf_det_threshold, track_activation_threshold}``; the ceilings before any score is seen."""
        if self.reference is None:
            return dict(self.ceilings)
        value = self.ratio * self.reference
        return {name: float(np.clip(value, self.floor, ceiling)) for name, ceiling in self.ceilings.items()}

    def reset(self) -> None:
        self._seen, self.reference = 0, None


class CameraTracker:
    """A ``trackers`` tracker for one camera; ``update`` returns only confirmed tracks.

    Args:
        kind: "bytetrack", "botsort" or "ocsort".
        frame_rate: the camera's frame rate (after stride), used to scale the lost-track buffer.
        thresholds: "auto" (score thresholds follow this camera's detection scores, module docstring),
            "fixed" (the tracker's defaults, or ``params``), or a :class:`ScoreThresholds` of this camera's own.
        params: constructor keywords of the chosen tracker (e.g. ``lost_track_buffer``). A score threshold
            given here stays fixed.
    """

    def __init__(
        self,
        kind: str = "bytetrack",
        frame_rate: float = 30.0,
        thresholds: str | ScoreThresholds = "auto",
        **params: Any,
    ) -> None:
        cls = _tracker_class(kind)
        check_params(kind, params)
        if not isinstance(thresholds, ScoreThresholds) and thresholds not in THRESHOLD_MODES:
            raise ValueError(f"tracker thresholds: expected one of {list(THRESHOLD_MODES)}, got {thresholds!r}")
        accepted = tracker_parameters(kind)
        params = {"frame_rate": frame_rate, **params} if "frame_rate" in accepted else params
        self.kind = kind
        self._tracker = cls(**params)
        self._uses_frame = kind in _USES_FRAME
        self._adapted = [n for n in SCORE_THRESHOLDS if n in accepted and n not in params]
        rule = ScoreThresholds() if thresholds == "auto" else thresholds
        self._scores = rule if isinstance(rule, ScoreThresholds) and self._adapted else None

    @property
    def thresholds(self) -> dict[str, float]:
        """The score thresholds the tracker uses now (after the last ``update``)."""
        return {n: float(getattr(self._tracker, n)) for n in SCORE_THRESHOLDS if hasattr(self._tracker, n)}

    def update(self, detections: sv.Detections, frame: np.ndarray) -> sv.Detections:
        """Associate ``detections`` of this camera's next frame; returns the tracked subset, ids from 1."""
        if self._scores is not None and detections.confidence is not None:
            self._scores.observe(detections.confidence)
            values = self._scores.thresholds()
            for name in self._adapted:  # public attributes the trackers read on every update
                setattr(self._tracker, name, values[name])
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
        if self._scores is not None:
            self._scores.reset()


def build_trackers(
    camera_ids: list[str],
    kind: str,
    frame_rates: dict[str, float],
    params: dict[str, Any],
    thresholds: str = "auto",
) -> dict[str, CameraTracker]:
    """One independent tracker per camera id (each with its own score thresholds under "auto")."""
    return {cid: CameraTracker(kind, frame_rates.get(cid, 30.0), thresholds, **params) for cid in camera_ids}
