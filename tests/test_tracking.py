"""One tracker per camera: every kind tracks a moving box, ids are per camera, bad params are named."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.tracking import CameraTracker, build_trackers, tracker_parameters

FRAME = np.zeros((120, 160, 3), np.uint8)


def boxes(k: int) -> sv.Detections:
    xyxy = np.array([[10 + 3 * k, 20, 40 + 3 * k, 90], [100, 20 + 2 * k, 130, 90 + 2 * k]], np.float32)
    return sv.Detections(xyxy=xyxy, confidence=np.full(2, 0.9, np.float32), class_id=np.zeros(2, int))


@pytest.mark.parametrize("kind", ["bytetrack", "botsort", "ocsort"])
def test_each_kind_keeps_two_moving_people_apart(kind: str) -> None:
    tracker = CameraTracker(kind, frame_rate=10, **({"enable_cmc": False} if kind == "botsort" else {}))
    seen: dict[int, list[float]] = {}
    for k in range(12):
        out = tracker.update(boxes(k), FRAME)
        for tid, x in zip(out.tracker_id.tolist(), out.xyxy[:, 0].tolist()):
            seen.setdefault(tid, []).append(x)
    assert len(seen) == 2 and min(seen) == 1  # two stable ids, numbered from 1
    left = [xs for xs in seen.values() if xs[0] < 60][0]
    assert np.all(np.diff(left) > 0)  # the left person's id stays on the left person


def test_trackers_of_different_cameras_share_no_state() -> None:
    trackers = build_trackers(["a", "b"], "bytetrack", {"a": 10.0, "b": 10.0}, {})
    for k in range(5):
        out_a = trackers["a"].update(boxes(k), FRAME)
    out_b = trackers["b"].update(boxes(0), FRAME)
    out_b = trackers["b"].update(boxes(1), FRAME)
    assert sorted(out_a.tracker_id.tolist()) == [1, 2] and sorted(out_b.tracker_id.tolist()) == [1, 2]


def test_unknown_parameter_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="tracker.params.buffer: not a bytetrack parameter"):
        CameraTracker("bytetrack", buffer=3)
    with pytest.raises(ValueError, match="expected one of"):
        CameraTracker("deepsort")
    assert "lost_track_buffer" in tracker_parameters("ocsort")
