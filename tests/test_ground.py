"""Overlapping views: ground maps fitted on the run's own identities, tracklets on one spot joined."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.identity.ground import (
    MIN_MATCHES,
    fit_ground_maps,
    foot_points,
    ground_pairs,
    merge_colocated,
    project,
)
from pipeline.identity.tracklets import Tracklet

# camera b sees camera a's ground scaled, shifted and in perspective
H_AB = np.array([[0.8, 0.1, 40.0], [0.05, 0.9, 10.0], [1e-4, 2e-4, 1.0]])
HEIGHT = 60.0


def _walk(rng: np.random.Generator, n: int, start: tuple[float, float], drift: tuple[float, float]) -> np.ndarray:
    """(n, 2) foot points of someone wandering over camera a's ground."""
    steps = rng.normal(0, 4.0, (n, 2)) + np.asarray(drift)
    return np.asarray(start) + np.cumsum(steps, axis=0)


def _boxes(feet: np.ndarray, height: float = HEIGHT) -> np.ndarray:
    return np.column_stack([feet[:, 0] - height / 5, feet[:, 1] - height, feet[:, 0] + height / 5, feet[:, 1]])


def _scene(offset_c: float = 200.0) -> tuple[np.ndarray, ...]:
    """Two cameras, three people over 120 frames; person 0 has tracklet 0 in camera a (id 1) and tracklet 10 in b
    (id 5: the split to repair); persons 1 and 2 have ids 2 and 3 in both. Person 2 walks ``offset_c`` px right
    of person 1 in camera a. Returns cameras, frames, tracklet ids, boxes, global ids of the rows."""
    rng = np.random.default_rng(0)
    frames = np.arange(120)
    walks = [_walk(rng, 120, (100, 200), (2.0, 1.0)), _walk(rng, 120, (500, 400), (-2.0, -1.5)), None]
    walks[2] = walks[1] + np.array([offset_c, 0.0])
    cams, fr, tids, boxes, gids = [], [], [], [], []
    for person, (ta, tb, ga, gb) in enumerate([(0, 10, 1, 5), (1, 11, 2, 2), (2, 12, 3, 3)]):
        feet_a = walks[person]
        feet_b = project(H_AB, feet_a) + rng.normal(0, 0.5, (120, 2))
        for cam, tid, gid, feet in (("a", ta, ga, feet_a), ("b", tb, gb, feet_b)):
            cams += [cam] * 120
            fr.append(frames)
            tids += [tid] * 120
            boxes.append(_boxes(feet))
            gids += [gid] * 120
    return np.array(cams), np.concatenate(fr), np.array(tids), np.concatenate(boxes), np.array(gids)


def test_ground_map_is_recovered_from_the_runs_own_identities() -> None:
    cams, frames, tids, boxes, gids = _scene()
    maps = fit_ground_maps(cams, frames, gids, boxes)
    assert set(maps) == {("a", "b"), ("b", "a")}
    feet, _ = foot_points(boxes[cams == "a"])
    assert np.abs(project(maps[("a", "b")], feet) - project(H_AB, feet)).max() < 3.0
    assert np.abs(project(maps[("b", "a")], project(H_AB, feet)) - feet).max() < 3.0


def test_views_without_a_common_identity_get_no_map() -> None:
    cams, frames, tids, boxes, gids = _scene()
    gids = np.where(cams == "b", gids + 100, gids)  # no identity is seen by both cameras
    assert fit_ground_maps(cams, frames, gids, boxes) == {}
    few = (frames < MIN_MATCHES // 2 - 1)  # too few matches to trust a map
    assert fit_ground_maps(cams[few], frames[few], _scene()[4][few], boxes[few]) == {}


def test_inconsistent_matches_give_no_map() -> None:
    cams, frames, tids, boxes, gids = _scene()
    rng = np.random.default_rng(1)
    in_b = np.flatnonzero(cams == "b")
    boxes = boxes.copy()
    boxes[in_b] = _boxes(rng.uniform(0, 600, (len(in_b), 2)))  # camera b sees nothing of camera a's ground
    assert fit_ground_maps(cams, frames, gids, boxes) == {}


def test_the_split_person_is_found_and_joined() -> None:
    cams, frames, tids, boxes, gids = _scene()
    maps = fit_ground_maps(cams, frames, gids, boxes)
    pairs, apart = ground_pairs(cams, frames, tids, boxes, maps)
    assert sorted((x, y) for _, x, y in pairs) == [(0, 10), (1, 11), (2, 12)]
    assert all(n == 120 for n, _, _ in pairs)
    tracklets = [Tracklet(t, "a" if t < 10 else "b", t, 0, 119, 0.0, 11.9) for t in (0, 1, 2, 10, 11, 12)]
    mapping = {0: 1, 1: 2, 2: 3, 10: 5, 11: 2, 12: 3}
    assert merge_colocated(mapping, pairs, tracklets) == {0: 1, 1: 2, 2: 3, 10: 1, 11: 2, 12: 3}


@pytest.mark.parametrize(("offset", "apart"), [(200.0, True), (12.0, True), (3.0, False)])
def test_people_side_by_side_are_two_spots_a_tenth_of_a_height_apart(offset: float, apart: bool) -> None:
    """Person 2 walks ``offset`` px beside person 1 in camera a (boxes 60 px tall; camera b sees the ground at
    about 0.8 the scale): 12 px (0.16 of a height in b) apart they stay two people; 3 px apart (0.04) the two
    boxes are one spot to the map, so persons 1 and 2 cannot be told apart by where they stand."""
    cams, frames, tids, boxes, gids = _scene(offset)
    maps = fit_ground_maps(cams, frames, gids, boxes)
    near, far = ground_pairs(cams, frames, tids, boxes, maps)
    pairs = {(x, y) for _, x, y in near}
    assert {(0, 10), (1, 11), (2, 12)} <= pairs
    assert ({(1, 12), (2, 11)} & pairs == set()) == apart
    # 200 px (2.7 heights in b) is two places at once; 12 px (0.16) is neither one spot nor two places
    assert ({(1, 12), (2, 11)} <= {(x, y) for _, x, y in far}) == (offset > 100)


def test_a_join_that_would_put_two_tracks_of_one_camera_at_one_time_together_is_refused() -> None:
    a0 = Tracklet(0, "a", 1, 0, 50, 0.0, 5.0)
    a1 = Tracklet(1, "a", 2, 40, 90, 4.0, 9.0)  # camera a, overlaps a0 in time
    b0 = Tracklet(10, "b", 1, 0, 90, 0.0, 9.0)
    mapping = {0: 1, 1: 2, 10: 2}
    assert merge_colocated(mapping, [(40, 0, 10)], [a0, a1, b0]) == mapping  # 1 would hold a0 and a1 at once
    # ... on 11 frames (40-50): a join needs 10 times as many frames on one spot, summed over the two identities
    assert merge_colocated(mapping, [(100, 0, 10), (9, 0, 1)], [a0, a1, b0]) == mapping  # 100 < 110
    b1 = Tracklet(11, "b", 2, 0, 30, 0.0, 3.0)  # identity 2 in camera b again: 80 + 30 frames on one spot
    assert merge_colocated({**mapping, 11: 2}, [(80, 0, 10), (30, 0, 11)], [a0, a1, b0, b1]) == {
        0: 1, 1: 1, 10: 1, 11: 1}  # fmt: skip
    assert merge_colocated({0: 1, 1: 3, 10: -1}, [(40, 0, 10)], [a0, a1, b0]) == {0: 1, 1: 3, 10: 1}
    assert merge_colocated({0: -1, 10: -1}, [(40, 0, 10)], [a0, b0]) == {0: -1, 10: -1}  # no id to give
    assert merge_colocated({0: 1, 10: 1}, [(40, 0, 10)], [a0, b0]) == {0: 1, 10: 1}


def test_a_look_alike_in_someone_elses_identity_moves_alone() -> None:
    """Identity 1 is mostly tracklet 1 (200 boxes) and holds tracklet 0 (20 boxes), which stands on the spot
    of identity 2's tracklet 10: only tracklet 0 moves; joining the identities whole would join two people."""
    ts = [Tracklet(0, "a", 1, 0, 19, 0.0, 1.9, n_boxes=20), Tracklet(1, "a", 2, 100, 299, 10.0, 29.9, n_boxes=200),
          Tracklet(10, "b", 1, 0, 29, 0.0, 2.9, n_boxes=30), Tracklet(11, "b", 2, 200, 229, 20.0, 22.9, n_boxes=30)]
    mapping = {0: 1, 1: 1, 10: 2, 11: 2}
    assert merge_colocated(mapping, [(20, 0, 10)], ts) == {0: 2, 1: 1, 10: 2, 11: 2}
    # the geometry vouches for half of each identity's boxes: one person, joined whole
    confirmed = [*ts[:3], Tracklet(11, "b", 2, 200, 229, 20.0, 22.9, n_boxes=25), Tracklet(2, "a", 3, 0, 9, 0, 1)]
    assert merge_colocated({0: 1, 10: 2, 11: 2}, [(20, 0, 10)], confirmed[:1] + confirmed[2:4]) == {
        0: 1, 10: 1, 11: 1}  # fmt: skip
    # two places at once (apart) weigh against like a clash
    assert merge_colocated({0: 1, 10: 2, 11: 2}, [(20, 0, 10)], confirmed[:1] + confirmed[2:4], apart=[(5, 0, 11)]) == {
        0: 1, 10: 2, 11: 2}  # fmt: skip


def test_matches_on_one_spot_give_no_map_and_no_error() -> None:
    """A person standing still in both views: every match is one point, no homography to fit."""
    n = 80
    cams = np.array(["a"] * n + ["b"] * n)
    frames = np.concatenate([np.arange(n), np.arange(n)])
    box = _boxes(np.array([[100.0, 200.0]]))[0]
    boxes = np.tile(box, (2 * n, 1))
    assert fit_ground_maps(cams, frames, np.ones(2 * n, int), boxes) == {}


def test_a_finished_runs_overlapping_view_pairs_are_read_from_its_track_file(tmp_path) -> None:
    """``ground_links``: the pairs the trainer gets as must-links (pipeline.adapt), from tracks.csv alone."""
    from pipeline.identity.outputs import _write_tracks, ground_links

    cams, frames, tids, boxes, gids = _scene()
    values = np.column_stack([frames, frames / 10.0, tids, gids, boxes, np.ones(len(frames)), tids])
    _write_tracks(tmp_path, cams, values)
    assert sorted((x, y) for _, x, y in ground_links(tmp_path)) == [(0, 10), (1, 11), (2, 12)]
    far = cams == "b"
    values[far, 4:8] += 1e4  # camera b sees the people nowhere near a's ground: no map, no pairs
    values[far, 3] += 100
    _write_tracks(tmp_path, cams, values)
    assert ground_links(tmp_path) == []
