"""Duplicate tracks of one person (boxes on one foot point), folded into the longer track at the end."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pipeline.identity.duplicates import duplicate_tracklets, fold_duplicates, same_ground
from pipeline.identity.outputs import repeated_ids, rewrite_tracks, settle_identities
from pipeline.identity.tracklets import Tracklet

PERSON = [100, 100, 140, 200]  # xyxy, 100 px tall, feet at (120, 200)


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ([102, 150, 138, 200], True),  # the legs of the same person: inside it, same feet
        ([100, 100, 140, 200], True),  # the same box
        ([105, 95, 147, 204], True),  # a little shifted, feet 6 px across and 4 down
        ([120, 100, 160, 200], False),  # side by side: feet 20 px across (0.2 of the height)
        ([103, 80, 137, 180], False),  # behind, further away: feet 20 px higher
        ([100, 100, 140, 120], False),  # the head: not on the feet
        ([np.nan] * 4, False),
        ([120, 150, 120, 200], False),  # empty box
    ],
)
def test_same_ground_table(other: list[float], same: bool) -> None:
    a, b = np.array([PERSON], float), np.array([other], float)
    assert same_ground(a, b).tolist() == [same] and same_ground(b, a).tolist() == [same]


def _rows(spec: list[tuple[str, int, int, list[float]]]) -> tuple[np.ndarray, ...]:
    cams = np.array([c for c, *_ in spec])
    frames = np.array([f for _, f, _, _ in spec])
    tids = np.array([t for *_, t, _ in spec])
    boxes = np.array([b for *_, b in spec], float)
    return cams, frames, tids, boxes


def _track(cam: str, tid: int, frames: range, box: list[float], dx: float = 0.0) -> list:
    return [(cam, f, tid, [box[0] + dx * k, box[1], box[2] + dx * k, box[3]]) for k, f in enumerate(frames)]


def test_a_partial_box_inside_a_person_for_most_shared_frames_is_a_duplicate() -> None:
    legs = [102, 150, 138, 200]
    walking = _track("a", 1, range(0, 30), PERSON, 2)  # 2 px a frame to the right
    spec = walking + [("a", f, 2, [102 + 2 * f, 150, 138 + 2 * f, 200]) for f in range(10, 20)]  # its legs
    spec += _track("b", 7, range(10, 20), legs)  # another camera, same pixels: never a duplicate of camera a
    assert duplicate_tracklets(*_rows(spec)) == [(2, 1)]


@pytest.mark.parametrize(
    ("together", "apart", "expected"),
    [
        (range(10, 14), range(0), []),  # 4 frames: under MIN_FRAMES
        (range(10, 15), range(0), [(2, 1)]),  # 5 of 5 shared frames
        (range(10, 16), range(16, 26), []),  # 6 of 16 shared frames: under MIN_SHARE
        (range(10, 22), range(22, 26), [(2, 1)]),  # 12 of 16
    ],
)
def test_duplicates_need_enough_frames_and_most_shared_ones(together: range, apart: range, expected: list) -> None:
    spec = _track("a", 1, range(0, 40), PERSON)
    spec += _track("a", 2, together, [103, 110, 141, 201])
    spec += _track("a", 2, apart, [200, 100, 240, 200])  # walked away: a person of its own there
    spec += _track("a", 3, range(0, 40), [160, 100, 200, 200])  # a neighbour all along: no duplicate
    assert duplicate_tracklets(*_rows(spec)) == expected


def test_duplicate_detection_handles_empty_and_untracked_rows() -> None:
    assert duplicate_tracklets(np.array([]), np.array([]), np.array([]), np.zeros((0, 4))) == []
    spec = _track("a", -1, range(0, 10), PERSON) + _track("a", 4, range(0, 10), PERSON)  # -1: no tracklet
    assert duplicate_tracklets(*_rows(spec)) == []


def test_fold_gives_the_shorter_track_the_longer_ones_id_along_chains() -> None:
    assert fold_duplicates({1: 5, 2: 9, 3: 4}, [(2, 1)]) == {1: 5, 2: 5, 3: 4}
    assert fold_duplicates({1: 5, 2: 9, 3: 4}, [(2, 1), (3, 2)]) == {1: 5, 2: 5, 3: 5}  # 3 -> 2 -> 1
    assert fold_duplicates({1: -1, 2: 9}, [(2, 1)]) == {1: -1, 2: 9}  # the host has no id: nothing to give
    cycle = fold_duplicates({1: 5, 2: 9}, [(2, 1), (1, 2)])  # cannot come from duplicate_tracklets; ends
    assert cycle[1] == cycle[2]
    assert fold_duplicates({1: 5}, []) == {1: 5}


def test_on_shared_frames_the_longer_track_keeps_the_id() -> None:
    cams, frames = np.array(["a"] * 4), np.array([3, 3, 4, 4])
    gids, tids = np.array([5, 5, 5, 5]), np.array([1, 2, 1, 2])
    assert repeated_ids(cams, frames, gids, tids).tolist() == [True, False, True, False]  # later id keeps it
    assert repeated_ids(cams, frames, gids, tids, yielding=[2]).tolist() == [False, True, False, True]


def test_settling_folds_a_duplicate_track_into_its_host(tmp_path: Path) -> None:
    header = "camera_id,frame,timestamp,track_id,global_id,x1,y1,x2,y2,confidence,tracklet_id\n"
    lines = [f"a,{f},{f / 10:.1f},1,-1,100,100,140,200,0.9,0" for f in range(8)]
    lines += [f"a,{f},{f / 10:.1f},2,-1,102,150,138,200,0.6,1" for f in range(2, 8)]  # the legs, frames 2-7
    lines += ["a,9,0.9,2,-1,102,150,138,200,0.6,1"]  # one frame alone: keeps the folded id
    (tmp_path / "tracks.csv").write_text(header + "\n".join(lines) + "\n")
    tracklets = [Tracklet(0, "a", 1, 0, 7, 0.0, 0.7), Tracklet(1, "a", 2, 2, 9, 0.2, 0.9)]
    mapping = settle_identities(tmp_path, tracklets, {0: 3, 1: 4})
    assert mapping == {0: 3, 1: 3}
    counts = rewrite_tracks(tmp_path, tracklets, mapping)
    assert counts["duplicate_tracklets"] == 1
    with open(tmp_path / "tracks.csv") as fh:
        rows = list(csv.DictReader(fh))
    by = {(r["tracklet_id"], r["frame"]): r["global_id"] for r in rows}
    assert all(by[("0", str(f))] == "3" for f in range(8))  # the host keeps its id on every frame
    assert all(by[("1", str(f))] == "-1" for f in range(2, 8)) and by[("1", "9")] == "3"
    assert "4" not in {r["global_id"] for r in rows}  # identity 4 held only the duplicate: gone
