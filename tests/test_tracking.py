"""One tracker per camera: every kind tracks a moving box, ids are per camera, bad params are named."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.tracking import CameraTracker, ScoreThresholds, build_trackers, tracker_parameters

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


# --- score thresholds relative to the camera's detection scores (tracker.thresholds: auto) ---


def person(k: int, score: float, x0: float = 10.0) -> np.ndarray:
    """A person walking right 4 px a frame: one (1, 5) row ``x1 y1 x2 y2 score``."""
    return np.array([[x0 + 4 * k, 20, x0 + 30 + 4 * k, 90, score]], np.float32)


def dets(*rows: np.ndarray) -> sv.Detections:
    r = np.concatenate(rows) if rows else np.zeros((0, 5), np.float32)
    return sv.Detections(xyxy=r[:, :4].copy(), confidence=r[:, 4].copy(), class_id=np.zeros(len(r), int))


@pytest.mark.parametrize(
    ("scores", "high", "activation"),
    [
        ([0.8] * 50, 0.56, 0.56),  # YOLO, large people: 0.7 x 0.8
        ([0.5] * 50, 0.35, 0.35),  # small people in a crowd
        ([0.1] * 40 + [0.5] * 10, 0.35, 0.35),  # 80 % clutter at 0.1 does not drag the 0.9-quantile down
        ([0.98] * 50, 0.6, 0.686),  # ceilings: ByteTrack's paper values (0.6 / 0.7)
        ([0.2] * 50, 0.25, 0.25),  # floor: Ultralytics' values
        ([], 0.6, 0.7),  # nothing seen yet: the ceilings
        ([float("nan")] * 3 + [0.5], 0.35, 0.35),  # non-finite scores are ignored
    ],
)
def test_thresholds_follow_the_score_distribution(scores: list[float], high: float, activation: float) -> None:
    rule = ScoreThresholds()
    rule.observe(np.array(scores, np.float32))
    got = rule.thresholds()
    assert got["high_conf_det_threshold"] == pytest.approx(high, abs=1e-3)
    assert got["track_activation_threshold"] == pytest.approx(activation, abs=1e-3)


def test_thresholds_forget_scores_older_than_the_window() -> None:
    rule = ScoreThresholds(window=100)
    rule.observe(np.full(100, 0.9, np.float32))
    assert rule.thresholds()["high_conf_det_threshold"] == pytest.approx(0.6)
    for _ in range(10):  # the scene changes: people now score 0.5
        rule.observe(np.full(10, 0.5, np.float32))
    assert rule.reference == pytest.approx(0.5) and rule.thresholds()["high_conf_det_threshold"] == pytest.approx(0.35)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"quantile": 1.5}, "quantile"), ({"ratio": 0}, "ratio"), ({"window": 0}, "window"), ({"floor": 0.9}, "floor")],
)
def test_bad_threshold_rule_is_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScoreThresholds(**kwargs)


def track_ids(tracker: CameraTracker, frames: list[sv.Detections]) -> list[list[int]]:
    return [sorted(tracker.update(d, FRAME).tracker_id.tolist()) for d in frames]


def test_low_scoring_person_is_tracked_where_the_detector_scores_everyone_low() -> None:
    """Small people in a crowd score 0.3-0.45: the fixed 0.6 / 0.7 never start a track, auto does."""
    frames = [dets(person(k, 0.35 + 0.1 * (k % 2)), person(k, 0.4, x0=70)) for k in range(12)]
    fixed = track_ids(CameraTracker("bytetrack", 10, "fixed"), frames)
    auto = track_ids(CameraTracker("bytetrack", 10), frames)
    assert all(ids == [] for ids in fixed)
    assert auto[0] == [] and all(ids == [1, 2] for ids in auto[1:])  # confirmed on the 2nd frame, ids stay


def test_confident_person_keeps_its_id_through_low_scores_and_blips_never_become_tracks() -> None:
    """ByteTrack's second pass: an occluded person's 0.2 boxes extend its track; one-frame 0.2 and 0.45 false
    positives elsewhere (below 0.7 x 0.85) neither start a track nor steal the person's id."""
    scores = [0.85] * 4 + [0.2] * 4 + [0.85] * 4
    rng = np.random.default_rng(0)
    frames = []
    for k, s in enumerate(scores):
        x, y = rng.uniform(80, 120), rng.uniform(0, 40)
        blip = np.array([[x, y, x + 25, y + 60, 0.2 if k % 2 else 0.45]], np.float32)
        frames.append(dets(person(k, s), blip))
    tracker = CameraTracker("bytetrack", 10)
    out = track_ids(tracker, frames)
    assert all(ids == [1] for ids in out[1:])
    assert tracker.thresholds["track_activation_threshold"] > 0.45


def test_thresholds_are_per_camera_and_explicit_params_stay_fixed() -> None:
    trackers = build_trackers(["bright", "crowd"], "bytetrack", {"bright": 10.0, "crowd": 10.0}, {})
    for k in range(3):
        trackers["bright"].update(dets(person(k, 0.8)), FRAME)
        trackers["crowd"].update(dets(person(k, 0.4)), FRAME)
    assert trackers["bright"].thresholds["high_conf_det_threshold"] == pytest.approx(0.56)
    assert trackers["crowd"].thresholds["high_conf_det_threshold"] == pytest.approx(0.28)
    pinned = CameraTracker("bytetrack", 10, track_activation_threshold=0.9)
    pinned.update(dets(person(0, 0.4)), FRAME)
    assert pinned.thresholds == pytest.approx({"high_conf_det_threshold": 0.28, "track_activation_threshold": 0.9})
    fixed = CameraTracker("bytetrack", 10, "fixed")
    fixed.update(dets(person(0, 0.4)), FRAME)
    assert fixed.thresholds == pytest.approx({"high_conf_det_threshold": 0.6, "track_activation_threshold": 0.7})
    with pytest.raises(ValueError, match="tracker thresholds: expected one of"):
        CameraTracker("bytetrack", 10, "adaptive")


@pytest.mark.parametrize("kind", ["botsort", "ocsort"])
def test_other_kinds_adapt_the_thresholds_they_have(kind: str) -> None:
    tracker = CameraTracker(kind, 10, **({"enable_cmc": False} if kind == "botsort" else {}))
    out = track_ids(tracker, [dets(person(k, 0.4)) for k in range(6)])
    assert tracker.thresholds["high_conf_det_threshold"] == pytest.approx(0.28)
    assert out[-1] == [1]  # a 0.4 person is tracked (the fixed defaults need 0.6)
