"""The harvested-crops benchmark's scoring: crop -> ground-truth matching, purity and NMI on hand cases."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "harvested_crops.py"
_spec = importlib.util.spec_from_file_location("harvested_crops", _PATH)
hc = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hc  # dataclasses look their module up there
_spec.loader.exec_module(hc)

# GT of one camera: frame 0 holds ids 7 and 8 side by side, frame 1 holds id 7 only.
GT_FRAMES = np.array([0, 0, 1])
GT_BOXES = np.array([[0, 0, 10, 20], [8, 0, 18, 20], [50, 50, 60, 70]], dtype=float)
GT_IDS = np.array([7, 8, 7])


@pytest.mark.parametrize(
    ("frame", "box", "expected"),
    [
        (0, [0, 0, 10, 20], 7),  # exact box
        (0, [7, 0, 17, 20], 8),  # overlaps both, IoU 0.18 with id 7 and 0.82 with id 8
        (0, [1, 0, 11, 20], 7),  # IoU 0.82 with id 7, 0.18 with id 8
        (0, [0, 0, 10, 9], -1),  # IoU 0.45 < 0.5: unmatched
        (1, [0, 0, 10, 20], -1),  # frame 1's only box is elsewhere
        (2, [0, 0, 10, 20], -1),  # a frame without GT
        (1, [50, 52, 60, 70], 7),  # IoU 0.9
    ],
)
def test_crop_takes_the_id_of_the_best_overlapping_gt_box_of_its_frame(frame, box, expected) -> None:
    ids = hc.match_to_gt(np.array([frame]), np.array([box], float), GT_FRAMES, GT_BOXES, GT_IDS)
    assert ids.tolist() == [expected]


def test_matching_many_crops_at_once_equals_one_by_one() -> None:
    frames = np.array([1, 0, 0, 2, 0])
    boxes = np.array([[50, 50, 60, 70], [1, 0, 11, 20], [8, 0, 18, 20], [0, 0, 5, 5], [0, 0, 10, 20]], float)
    batch = hc.match_to_gt(frames, boxes, GT_FRAMES, GT_BOXES, GT_IDS)
    gt = (GT_FRAMES, GT_BOXES, GT_IDS)
    single = [hc.match_to_gt(frames[i : i + 1], boxes[i : i + 1], *gt)[0] for i in range(5)]
    assert batch.tolist() == single == [7, 7, 8, -1, 7]


def test_matching_edge_cases_and_bad_input() -> None:
    assert hc.match_to_gt(np.zeros(0), np.zeros((0, 4)), GT_FRAMES, GT_BOXES, GT_IDS).shape == (0,)
    no_gt = ([], np.zeros((0, 4)), [])
    assert hc.match_to_gt(np.array([0]), np.array([[0, 0, 10, 20.0]]), *no_gt).tolist() == [-1]
    # two identical GT boxes in one frame: the first row wins
    twins = np.array([[0, 0, 4, 4]] * 2, float)
    assert hc.match_to_gt([0], np.array([[0, 0, 4, 4.0]]), [0, 0], twins, [3, 9]).tolist() == [3]
    with pytest.raises(ValueError, match="expected aligned crops"):
        hc.match_to_gt(np.array([0, 1]), np.zeros((1, 4)), GT_FRAMES, GT_BOXES, GT_IDS)


def test_read_gt_converts_mot_rows_to_zero_based_xyxy(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,4,10,20,5,8,1,-1,-1,-1\n3,2,0.5,1,2,3,0,-1,-1,-1\n")
    frames, boxes, ids = hc.read_gt(gt)
    assert frames.tolist() == [0, 2] and ids.tolist() == [4, 2]
    np.testing.assert_allclose(boxes, [[10, 20, 15, 28], [0.5, 1, 2.5, 4]])


@pytest.mark.parametrize(
    ("clusters", "truth", "expected"),
    [
        ([0, 0, 1, 1], [5, 5, 6, 6], 1.0),
        ([0, 0, 0, 0], [5, 5, 6, 6], 0.5),  # one cluster of two people
        ([0, 0, 0, 1, 1, 2], [1, 1, 2, 2, 2, 3], 5 / 6),  # majorities 2 + 2 + 1
        ([0, 1, 2, 3], [5, 5, 6, 6], 1.0),  # singletons are pure (hence inverse purity and NMI too)
    ],
)
def test_purity_hand_cases(clusters, truth, expected) -> None:
    assert hc.purity(np.array(clusters), np.array(truth)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], 1.0),  # identical
        ([0, 0, 1, 1, 2, 2], [9, 9, 4, 4, 7, 7], 1.0),  # identical up to renaming
        ([0, 0, 1, 1], [0, 1, 0, 1], 0.0),  # independent
        ([0, 0, 0, 0], [0, 0, 0, 0], 1.0),  # both single-class
        ([0, 0, 0, 0], [0, 0, 1, 1], 0.0),  # one single-class
        # p(a,b): (0,0) 1/2, (1,0) 1/4, (1,1) 1/4; I = 1/2 ln 4/3 + 1/4 ln 2/3 + 1/4 ln 2,
        # H(a) = ln 2, H(b) = -(3/4 ln 3/4 + 1/4 ln 1/4)
        ([0, 0, 1, 1], [0, 0, 0, 1], 0.3437),
    ],
)
def test_nmi_hand_cases(a, b, expected) -> None:
    assert hc.nmi(np.array(a), np.array(b)) == pytest.approx(expected, abs=1e-4)
    assert hc.nmi(np.array(b), np.array(a)) == pytest.approx(expected, abs=1e-4)  # symmetric


def test_nmi_formula_of_the_hand_case() -> None:
    mi = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    hb = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    expected = mi / ((math.log(2) + hb) / 2)
    assert hc.nmi(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])) == pytest.approx(expected)


def test_score_leaves_outliers_and_unmatched_crops_out() -> None:
    clusters = np.array([0, 0, 1, 1, -1, 1])
    truth = np.array([3, 3, 4, 4, 4, -1])  # crop 4 is an outlier, crop 5 unmatched
    s = hc.score(clusters, truth)
    assert (s["clusters"], s["outliers"]) == (2, 1)
    assert s["clustered"] == pytest.approx(4 / 5)
    assert s["purity"] == s["inv_purity"] == s["nmi"] == pytest.approx(1.0)


@pytest.mark.parametrize("fn", ["purity", "nmi"])
def test_labelings_of_different_lengths_are_rejected(fn: str) -> None:
    with pytest.raises(ValueError, match="equal length, got 2 and 3"):
        getattr(hc, fn)(np.array([0, 1]), np.array([0, 1, 2]))


@pytest.mark.parametrize(
    ("clusters", "expected"),
    [([0, 0, 0, 5], 1.0), ([0, 1, 0, 5], 0.5), ([1, 2, 3, 5], 0.0), ([-1, -1, 0, 5], 0.0)],
)
def test_cross_camera_recall_counts_same_person_pairs_across_cameras(clusters, expected) -> None:
    # person 1: two crops in camera 0, one in camera 1 (2 cross-camera pairs); person 2: one crop
    truth, cameras = np.array([1, 1, 1, 2]), np.array([0, 0, 1, 1])
    assert hc.cross_camera_recall(np.array(clusters), truth, cameras) == pytest.approx(expected)
