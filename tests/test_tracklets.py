"""TrackletStore: ids, spans, quality-weighted means, exemplars, maturity, ending, cannot-link."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.identity.record import IdentityRecord
from pipeline.identity.tracklets import Tracklet, TrackletNumbers, TrackletStore, cannot_link, rejoin_lonely_cuts
from pipeline.records import with_embeddings

E = np.eye(4, dtype=np.float32)


def dets(track_ids: list[int], emb: np.ndarray | None = None, conf: float = 0.9) -> sv.Detections:
    """Non-overlapping 40x128 boxes, one per track id, optionally with an embedding column."""
    n = len(track_ids)
    xyxy = np.array([[60 * i, 0, 60 * i + 40, 128] for i in range(n)], np.float32).reshape(-1, 4)
    d = sv.Detections(xyxy=xyxy, confidence=np.full(n, conf, np.float32), tracker_id=np.array(track_ids))
    return d if emb is None else with_embeddings(d, emb)


def test_ids_spans_and_counts() -> None:
    store = TrackletStore()
    store.update("a", 0, 0.0, dets([1, 2]))
    store.update("b", 0, 0.0, dets([1]))  # same track id in another camera: another tracklet
    store.update("a", 1, 0.1, dets([2]))
    store.update("a", 5, 0.5, dets([1, -1]))  # -1: unconfirmed track, ignored
    got = [(t.tracklet_id, t.camera_id, t.track_id, t.first_frame, t.last_frame, t.n_boxes) for t in store.all()]
    assert got == [(0, "a", 1, 0, 5, 2), (1, "a", 2, 0, 1, 2), (2, "b", 1, 0, 0, 1)]
    assert store.all()[0].last_timestamp == 0.5
    assert store.pop_updated().tolist() == [0, 1, 2] and store.pop_updated().tolist() == []
    assert store.all()[0].mean is None


def test_quality_weighted_mean_ignores_nan_rows() -> None:
    store = TrackletStore()
    store.update("a", 0, 0.0, dets([1, 2], np.stack([E[0], E[2]])), quality=np.array([0.9, 0.5]))
    store.update("a", 1, 0.1, dets([1, 2], np.stack([E[1], np.full(4, np.nan)])), quality=np.array([0.3, 0.5]))
    store.update("a", 2, 0.2, dets([1], np.zeros((1, 4))))  # a zero row is not an embedding either
    t1, t2 = store.all()
    assert (t1.n_embedded, t2.n_embedded) == (2, 1)
    np.testing.assert_allclose(t1.mean, np.array([0.9, 0.3, 0, 0]) / np.hypot(0.9, 0.3), rtol=1e-5)
    np.testing.assert_allclose(t2.mean, E[2])


def test_embedding_dim_mismatch() -> None:
    store = TrackletStore()
    store.update("a", 0, 0.0, dets([1], E[:1]))
    with pytest.raises(ValueError, match="embedding: expected dimension 4, got 3"):
        store.update("a", 1, 0.1, dets([1], np.ones((1, 3), np.float32)))


def test_missing_tracker_id() -> None:
    with pytest.raises(ValueError, match="expected a tracker_id column"):
        TrackletStore().update("a", 0, 0.0, sv.Detections(xyxy=np.zeros((1, 4), np.float32)))


def test_exemplars_stay_diverse_and_bounded() -> None:
    store = TrackletStore(max_exemplars=3)
    rng = np.random.default_rng(0)
    seq = [E[0]] * 5 + [E[1]] * 5 + [E[2]] + [E[0]] * 3
    for f, v in enumerate(seq):
        noisy = v + 0.01 * rng.standard_normal(4).astype(np.float32)
        store.update("a", f, f / 10, dets([1], noisy[None]))
    ex = store.all()[0].exemplars
    assert ex.shape == (3, 4)
    assert sorted(np.abs(ex).argmax(axis=1).tolist()) == [0, 1, 2]  # one of each direction
    np.testing.assert_allclose(np.linalg.norm(ex, axis=1), 1.0, rtol=1e-5)


def test_near_duplicate_crops_make_one_exemplar() -> None:
    store = TrackletStore(max_exemplars=4)
    for f in range(5):
        store.update("a", f, f / 10, dets([1], E[:1]))
    t = store.all()[0]
    assert t.exemplars.shape == (1, 4) and t.n_embedded == 5


def test_mature_ended_and_reappearing_track() -> None:
    store = TrackletStore()
    for f in range(3):
        store.update("a", f, f * 1.0, dets([1, 2], np.stack([E[0], E[1]]) if f < 2 else None))
    store.update("b", 3, 3.0, dets([7], E[:1]))
    assert [t.tracklet_id for t in store.mature(2)] == [0, 1]
    assert [t.tracklet_id for t in store.mature(1)] == [0, 1, 2]
    ended = store.ended({"a": 10.0, "b": 4.0}, timeout_s=5.0)
    assert [t.tracklet_id for t in ended] == [0, 1] and all(t.ended for t in ended)
    assert store.ended({"a": 10.0}, timeout_s=5.0) == []  # each tracklet is reported once
    store.update("a", 11, 11.0, dets([1]))  # track 1 came back after its tracklet ended: a new tracklet
    assert store.all()[-1].tracklet_id == 3 and store.all()[-1].first_frame == 11


def test_first_id_numbers_the_tracklets() -> None:
    store = TrackletStore(first_id=100)
    store.update("a", 0, 0.0, dets([4, 5]))
    assert store.open_ids("a", np.array([5, 4, 9])).tolist() == [101, 100, -1]
    assert store.open_ids("zz", np.array([5])).tolist() == [-1]
    assert store.get(101).track_id == 5 and store.get(101).global_id == -1  # the store never knows global ids
    with pytest.raises(KeyError):
        store.get(0)


def _t(tid: int, cam: str, first: int, last: int) -> Tracklet:
    return Tracklet(tid, cam, tid, first, last, first / 10, last / 10)


def test_a_cut_ends_the_old_tracklet_at_its_last_crop_before_the_window() -> None:
    """Crops every 4th frame: the switch (frame 30) lies between two crops (28 and 32); the old tracklet ends
    on its last crop (28), the piece starts on the first moved one (32); the boxes between count as the old's."""
    store = TrackletStore()
    nan = np.full(4, np.nan, np.float32)
    for f in range(38):
        emb = (E[0] if f < 30 else E[1]) if f % 4 == 0 else nan
        store.update("a", f, f / 10, dets([1], emb[None]))
    ids, before, window, _ = store.switch_candidates(store.pop_updated())
    assert ids.tolist() == [0] and float(before[0] @ window[0]) == 0.0  # window: the crops of frames 32 and 36
    new = store.split(0)
    old, cut = store.get(0), store.get(new)
    assert (old.first_frame, old.last_frame, old.n_boxes, old.n_embedded, old.last_timestamp) == (0, 28, 32, 8, 2.8)
    assert (cut.first_frame, cut.last_frame, cut.n_boxes, cut.n_embedded, cut.first_timestamp) == (32, 37, 6, 2, 3.2)
    assert not old.overlaps(cut)
    other = TrackletStore()  # a second track of the same camera that starts on frame 30 does not clash with it
    for f in range(30, 38):
        other.update("a", f, f / 10, dets([1]))
    assert not old.overlaps(other.get(0))


def test_two_tracks_on_one_person_for_a_few_frames_are_no_clash() -> None:
    box = np.array([100, 50, 140, 150], np.float32)
    ending = Tracklet(0, "a", 1, 0, 20, 0.0, 2.0, first_box=box + 300, last_box=box)
    duplicate = Tracklet(1, "a", 2, 15, 40, 1.5, 4.0, first_box=box + 4, last_box=box)  # 6 frames on the same box
    elsewhere = Tracklet(2, "a", 3, 15, 40, 1.5, 4.0, first_box=box + 200, last_box=box)
    too_long = Tracklet(3, "a", 4, 5, 40, 0.5, 4.0, first_box=box + 4, last_box=box)  # 16 frames side by side
    assert not ending.overlaps(duplicate) and ending.overlaps(elsewhere) and ending.overlaps(too_long)
    matrix = cannot_link([ending, duplicate, elsewhere, too_long])
    assert matrix[0].tolist() == [False, False, True, True] and (matrix == matrix.T).all()
    store = TrackletStore()
    for f in range(0, 41):
        boxes = [(1, box + (300 if f == 0 else 0))] if f <= 20 else []
        boxes += [(2, box + (4 if f == 15 else 0))] if f >= 15 else []
        d = sv.Detections(xyxy=np.stack([b for _, b in boxes]), tracker_id=np.array([t for t, _ in boxes]))
        store.update("a", f, f / 10, d)
    assert store.overlaps(0, [1]).tolist() == [False]


@pytest.mark.parametrize(
    ("spans", "expected_pairs"),
    [
        ([("a", 0, 10), ("a", 5, 15)], [(0, 1)]),
        ([("a", 0, 10), ("a", 10, 15)], []),  # one shares its last frame with the other's first: a hand-off
        ([("a", 0, 10), ("a", 9, 15)], []),  # two frames: still a hand-off
        ([("a", 0, 10), ("a", 8, 15)], [(0, 1)]),  # three frames: two people
        ([("a", 0, 10), ("a", 9, 10)], [(0, 1)]),  # nested: two people, however short
        ([("a", 0, 10), ("a", 11, 15)], []),
        ([("a", 0, 10), ("b", 5, 15)], []),  # other camera: never cannot-link
        ([("a", 0, 10), ("b", 0, 10), ("a", 3, 4)], [(0, 2)]),
    ],
)
def test_cannot_link(spans: list, expected_pairs: list) -> None:
    tracklets = [_t(i, *s) for i, s in enumerate(spans)]
    matrix = cannot_link(tracklets)
    pairs = [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(matrix)))]
    assert pairs == expected_pairs
    assert (matrix == matrix.T).all()
    assert all(tracklets[i].overlaps(tracklets[j]) for i, j in pairs)


def test_open_ids_are_looked_up_in_the_identity_record() -> None:
    store, record = TrackletStore(first_id=100), IdentityRecord()
    store.update("a", 0, 0.0, sv.Detections(xyxy=np.array([[0, 0, 10, 20], [20, 0, 30, 20]], np.float32),
                                           tracker_id=np.array([5, 4])))  # fmt: skip
    record.join(100, 7)
    tracklets = store.open_ids("a", np.array([5, 4, 9]))
    assert tracklets.tolist() == [100, 101, -1] and record.global_ids(tracklets).tolist() == [7, -1, -1]
    assert [t.global_id for t in record.label(store.all())] == [7, -1]


def test_tracklet_numbers_count_in_a_block() -> None:
    numbers = TrackletNumbers(start=1, step=2)  # worker 1 of 2
    assert numbers("a", np.array([5, 4])).tolist() == [1, 3]
    assert numbers("b", np.array([5, 4, 9])).tolist() == [5, 7, 9]
    assert numbers("a", np.array([4])).tolist() == [3]
    with pytest.raises(ValueError, match="step >= 1"):
        TrackletNumbers(step=0)


def test_split_moves_the_latest_crops_to_a_new_tracklet() -> None:
    store = TrackletStore()
    for f in range(10):  # one person for 8 crops, then the tracker's track holds another
        store.update("a", f, f / 10, dets([1, 2], np.stack([E[0] if f < 8 else E[1], E[2]])))
    ids, before, window, cams = store.switch_candidates(store.pop_updated())
    assert ids.tolist() == [0, 1] and cams == ["a", "a"]
    np.testing.assert_allclose(before[0] / np.linalg.norm(before[0]), E[0], atol=1e-6)
    np.testing.assert_allclose(window[0] / np.linalg.norm(window[0]), E[1], atol=1e-6)
    new = store.split(0)
    assert new == 2 and store.splits == 1 and store.open_ids("a", np.array([1, 2])).tolist() == [2, 1]
    old, cut = store.get(0), store.get(2)
    assert (old.n_embedded, cut.n_embedded, cut.track_id, cut.first_frame, cut.first_timestamp) == (8, 2, 1, 8, 0.8)
    assert (old.last_frame, old.last_timestamp, old.n_boxes, cut.last_frame, cut.n_boxes) == (7, 0.7, 8, 9, 2)
    np.testing.assert_allclose(old.mean, E[0], atol=1e-6)
    np.testing.assert_allclose(cut.mean, E[1], atol=1e-6)
    assert all(np.allclose(h, E[0], atol=1e-6) for h in old.halves) and all(np.allclose(h, E[1]) for h in cut.halves)
    assert np.allclose(old.exemplars, E[0]) and np.allclose(cut.exemplars, E[1])
    assert not old.overlaps(cut)  # a wrong cut can still be linked back by appearance
    assert sorted(store.pop_updated().tolist()) == [0, 2]
    store.update("a", 10, 1.0, dets([1], E[1][None]))  # the track's next boxes belong to the new tracklet
    assert store.get(2).n_embedded == 3 and store.get(0).n_embedded == 8
    assert store.switch_candidates([0, 2])[0].tolist() == []  # the old one is cut off, the new one is young
    with pytest.raises(ValueError, match="expected an open tracklet"):
        store.split(0)
    store.update("a", 60, 6.0, dets([1], E[1][None]))
    assert [t.tracklet_id for t in store.ended({"a": 6.0}, timeout_s=2.0)] == [0, 1]  # not the new one
    assert store.open_ids("a", np.array([1])).tolist() == [2]


@pytest.mark.parametrize(
    ("mapping", "parent", "expected"),
    [
        ({0: 1, 5: 2}, {5: 0}, {0: 1, 5: 1}),  # the piece founded an identity of its own: the cut is undone
        ({0: 1, 5: 2, 7: 2}, {5: 0}, {0: 1, 5: 2, 7: 2}),  # it joined another tracklet's person: kept
        ({0: 1, 5: 2, 9: 3}, {5: 0, 9: 5}, {0: 1, 5: 1, 9: 1}),  # a chain of lonely cuts collapses to its root
        ({0: 1, 5: 2, 9: 2}, {5: 0, 9: 5}, {0: 1, 5: 1, 9: 1}),  # two pieces of one track alone: one person
        ({0: -1, 5: 2}, {5: 0}, {0: -1, 5: 2}),  # nothing to give it back to
        ({0: 1, 5: 2, 3: 1}, {5: 0}, {0: 1, 5: 2, 3: 1}),  # tracklet 3 of the identity shares frames with 5
    ],
)
def test_rejoin_lonely_cuts(mapping: dict, parent: dict, expected: dict) -> None:
    spans = {0: (0, 9), 5: (10, 19), 7: (30, 39), 9: (20, 29), 3: (15, 25)}  # all in camera "a"
    tracklets = [_t(t, "a", *spans[t]) for t in mapping]
    assert rejoin_lonely_cuts(mapping, parent, tracklets) == expected
