"""Adjacent views: hand-over maps fitted on the run's own identities, people crossing the seam found."""

from __future__ import annotations

import numpy as np

from pipeline.identity.handoff import (
    NO_HANDOFFS,
    Handoffs,
    find_handoffs,
    handed_over_from,
    tracklet_ends,
)
from pipeline.identity.linker import offline_relink
from pipeline.identity.tracklets import Tracklet, same_camera_far

WIDTH, HEIGHT = 380.0, 80.0  # each view is WIDTH px wide; left's x = WIDTH is right's x = 0


def _box(x: float, y: float) -> np.ndarray:
    return np.array([x - 15, y - HEIGHT, x + 15, y], np.float32)


def _tracklet(tid: int, cam: str, t0: float, t1: float, start: tuple[float, float], end: tuple[float, float],
              gid: int = -1) -> Tracklet:  # fmt: skip
    return Tracklet(tid, cam, tid, int(t0 * 10), int(t1 * 10), t0, t1, n_boxes=int((t1 - t0) * 10) + 1,
                    global_id=gid, first_box=_box(*start), last_box=_box(*end))  # fmt: skip


def _crossings(n: int, seed: int = 0, gid_of=lambda i: i) -> list[Tracklet]:
    """``n`` people, one every 20 s, walking across the seam at a random height, alternately left -> right and
    right -> left, each seen by a tracklet per view; the views meet at x = WIDTH in left, 0 in right."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y, t = float(rng.uniform(150, 500)), 20.0 * i
        if i % 2 == 0:  # left to right: leaves left at its right edge, enters right at its left edge
            out.append(_tracklet(2 * i, "left", t, t + 5, (50, y), (WIDTH - 5, y), gid_of(i)))
            out.append(_tracklet(2 * i + 1, "right", t + 5.2, t + 10, (5, y + 2), (300, y), gid_of(i)))
        else:
            out.append(_tracklet(2 * i, "right", t, t + 5, (300, y), (5, y), gid_of(i)))
            out.append(_tracklet(2 * i + 1, "left", t + 5.1, t + 10, (WIDTH - 5, y - 2), (40, y), gid_of(i)))
    return out


def test_the_seam_is_learned_from_the_identities_and_crossings_are_found() -> None:
    people = _crossings(12)
    found = find_handoffs(people)
    assert list(found.maps) == [("left", "right")]
    m = found.maps[("left", "right")]
    assert np.allclose(m @ np.array([WIDTH - 5, 300.0, 1.0]), [5.0, 300.0], atol=6.0)  # left's edge -> right's
    assert sorted(found.pairs) == [(2 * i, 2 * i + 1) for i in range(12)]
    assert found.groups == {"left": "left", "right": "left"}


def test_identities_that_hand_over_nowhere_in_particular_give_no_map() -> None:
    # the same people, but each enters the other view at a random place: no seam, no map, no pairs
    rng = np.random.default_rng(1)
    people = _crossings(12)
    for t in people[1::2]:
        t.first_box = _box(float(rng.uniform(0, WIDTH)), float(rng.uniform(150, 500)))
    found = find_handoffs(people)
    assert found.maps == {} and found.pairs == [] and found.groups == {}


def test_without_identities_there_is_nothing_to_learn_from() -> None:
    people = _crossings(12, gid_of=lambda i: -1)
    assert find_handoffs(people) == Handoffs({}, [])


def test_a_person_found_again_on_the_same_side_is_no_hand_over() -> None:
    # person 0 reaches the seam and turns back: their track is lost and found again in left; at the same
    # moment someone else steps into right at the matching place. The crossing is ambiguous: left out.
    people = _crossings(12)
    maps = find_handoffs(people).maps
    y = float(people[0].last_box[3])
    turned = _tracklet(100, "left", 5.3, 9.0, (WIDTH - 20, y), (100, y), 0)
    found = find_handoffs([*people, turned], None)
    assert (0, 1) not in found.pairs and (2, 3) in found.pairs
    assert handed_over_from(Handoffs(maps, []), people[3], people[2:4]) == 2
    assert handed_over_from(NO_HANDOFFS, people[3], people[2:4]) is None


def test_adjacent_views_are_one_camera_for_the_far_rule() -> None:
    a = _tracklet(0, "left", 0, 5, (50, 300), (WIDTH - 5, 300))
    b = _tracklet(1, "right", 60, 65, (5, 300), (300, 300))
    assert not same_camera_far([a, b], 5.0)[0, 1]
    assert same_camera_far([a, b], 5.0, {"left": "left", "right": "left"})[0, 1]


def test_offline_linking_joins_crossings_and_keeps_look_alikes_minutes_apart_apart() -> None:
    """Twelve people cross the seam; everyone looks alike (one appearance plus noise) except that each person's
    two views differ. Appearance alone cannot tell them apart; the hand-overs join each person's two views,
    and adjacent views count as one camera, so look-alikes minutes apart are not joined by appearance."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=32)
    people = _crossings(12, gid_of=lambda i: -1)
    for t in people:
        v = base + 0.35 * rng.normal(size=32)
        v /= np.linalg.norm(v)
        t.n_embedded, t.embedding_sum, t.odd_sum = 4, (v * 4).astype(np.float32), (v * 2).astype(np.float32)
    report: dict = {}
    mapping = offline_relink(people, threshold=0.0, report=report)
    # a threshold of 0 merges every look-alike by appearance; hand-over maps need identities to fit on,
    # and the first pass gives them: crossings are then must-links, far pairs no evidence
    assert report["handoffs"] == 12
    ids = [mapping[t.tracklet_id] for t in people]
    assert all(ids[2 * i] == ids[2 * i + 1] for i in range(12))
    assert len(set(ids)) == 12
    plain = offline_relink(people, threshold=0.0, handoffs=False)
    assert len(set(plain.values())) < 12


def test_tracklet_ends_skip_unknown_boxes() -> None:
    t = _tracklet(0, "left", 0, 5, (50, 300), (WIDTH - 5, 300), 3)
    unknown = Tracklet(1, "left", 1, 0, 10, 0.0, 1.0)
    ends = tracklet_ends([t, unknown])
    assert ends.ids.tolist() == [0] and ends.gids.tolist() == [3]
    assert np.allclose(ends.end[0], [WIDTH - 5, 300]) and np.isclose(ends.h0[0], HEIGHT)


def test_hand_overs_all_on_one_spot_give_no_map() -> None:
    # boxes that carry no place (every crop the same box, as Market-1501's tracklets): no seam to map
    people = _crossings(12)
    for t in people:
        t.first_box = t.last_box = _box(100, 300)
    assert find_handoffs(people).maps == {}


def _walk_across(people: int, seed: int = 0, disguised: tuple[int, ...] = (), handoffs: bool = True,
                 posing: dict[int, int] | None = None, elsewhere: tuple[int, ...] = ()):  # fmt: skip
    """Online: ``people`` walk from left into right one after the other, 2 s in each view; everyone's two
    views look alike except the ``disguised`` ones (their right view looks like a stranger) and the ``posing``
    ones ({p: q}: p's right view looks like person q); the ``elsewhere`` ones enter right in its middle, not at
    the seam. Returns the store and linker after feeding every
    frame."""
    import supervision as sv

    from pipeline.identity.gallery import Gallery
    from pipeline.identity.linker import OnlineLinker
    from pipeline.identity.tracklets import TrackletStore
    from pipeline.records import with_embeddings

    fps = 10.0
    rng = np.random.default_rng(seed)
    looks = np.linalg.qr(rng.standard_normal((32, 32)))[0][: 2 * people].astype(np.float32)
    linker = OnlineLinker(Gallery(32, device="cpu"), threshold=0.5, handoffs=handoffs)
    store = TrackletStore()
    steps = 20
    for p in range(people):
        y = 150.0 + 25 * p
        right_look = looks[people + p] if p in disguised else looks[(posing or {}).get(p, p)]
        entry = 200.0 if p in elsewhere else 5.0
        for cam, x0, x1, look in (("left", 100.0, WIDTH - 5, looks[p]), ("right", entry, 280.0, right_look)):
            for j in range(steps):
                frame = 50 * p + j + (steps if cam == "right" else 0)
                x = x0 + (x1 - x0) * j / (steps - 1)
                emb = look + 0.02 * rng.standard_normal(32).astype(np.float32)
                dets = sv.Detections(xyxy=_box(x, y)[None], confidence=np.array([0.9], np.float32),
                                     tracker_id=np.array([p + 1]))  # fmt: skip
                store.update(cam, frame, frame / fps, with_embeddings(dets, (emb / np.linalg.norm(emb))[None]))
                linker.step(store, now=frame / fps)
    return store, linker


def test_online_a_person_crossing_the_seam_keeps_their_id_whatever_they_look_like() -> None:
    store, linker = _walk_across(10, disguised=(8, 9))
    ids = {(t.camera_id, t.track_id): t.global_id for t in linker.record.label(store.all())}
    assert list(linker.adjacent.maps) == [("left", "right")]  # learned from the first eight crossings
    for p in range(10):
        assert ids[("left", p + 1)] == ids[("right", p + 1)] >= 0
    assert len(set(ids.values())) == 10

    plain_store, plain = _walk_across(10, disguised=(8, 9), handoffs=False)
    plain_ids = {(t.camera_id, t.track_id): t.global_id for t in plain.record.label(plain_store.all())}
    assert plain_ids[("left", 9)] != plain_ids[("right", 9)] and plain_ids[("left", 10)] != plain_ids[("right", 10)]


def test_online_joins_made_before_the_seam_was_known_are_decided_again_with_it() -> None:
    """Person 3's right view looks like person 0. Before the seam is learned, the two views are separate
    cameras and person 3's right tracklet joins person 0 by appearance (13 s after person 0 left the right
    view). Once the seam is learned, the two views are one stretch of ground that person 0 left 13 s earlier
    (no evidence), and person 3 crossed the seam (a hand-over): the tracklet moves to person 3."""
    store, linker = _walk_across(10, posing={3: 0})
    ids = {(t.camera_id, t.track_id): t.global_id for t in linker.record.label(store.all())}
    assert list(linker.adjacent.maps) == [("left", "right")]
    assert all(ids[("left", p + 1)] == ids[("right", p + 1)] >= 0 for p in range(10))
    assert len(set(ids.values())) == 10

    plain_store, plain = _walk_across(10, posing={3: 0}, handoffs=False)
    plain_ids = {(t.camera_id, t.track_id): t.global_id for t in plain.record.label(plain_store.all())}
    assert plain_ids[("right", 4)] == plain_ids[("left", 1)] != plain_ids[("left", 4)]


def test_online_an_identity_seen_twice_far_apart_in_one_stretch_of_ground_is_split_once_the_seam_is_known() -> None:
    """Person 3 looks like person 0 in the right view and steps into it away from the seam (no hand-over).
    Taken for separate cameras, the views join person 3's right tracklet to person 0 by appearance; once the
    seam shows they are one stretch of ground, person 0 left it 13 s before: no evidence, the tracklet leaves."""
    store, linker = _walk_across(10, posing={3: 0}, elsewhere=(3,))
    ids = {(t.camera_id, t.track_id): t.global_id for t in linker.record.label(store.all())}
    assert list(linker.adjacent.maps) == [("left", "right")]
    assert ids[("right", 4)] >= 0 and ids[("right", 4)] != ids[("left", 1)]
    assert ids[("left", 1)] == ids[("right", 1)]

    plain_store, plain = _walk_across(10, posing={3: 0}, elsewhere=(3,), handoffs=False)
    plain_ids = {(t.camera_id, t.track_id): t.global_id for t in plain.record.label(plain_store.all())}
    assert plain_ids[("right", 4)] == plain_ids[("left", 1)]


def test_adjacent_views_see_one_person_at_once_only_while_crossing() -> None:
    import supervision as sv

    from pipeline.identity.tracklets import TrackletStore

    store = TrackletStore()
    spans = {("left", 1): (0, 20), ("right", 1): (19, 30), ("right", 2): (5, 15), ("left", 3): (5, 15)}
    for t in range(31):  # 1 frame a second
        for cam in ("left", "right"):
            ids = [tr for (c, tr), (t0, t1) in spans.items() if c == cam and t0 <= t <= t1]
            if ids:
                boxes = np.stack([_box(50.0 * tr, 300.0) for tr in ids])
                store.update(cam, t, float(t), sv.Detections(xyxy=boxes, tracker_id=np.array(ids)))
    tid = {(t.camera_id, t.track_id): t.tracklet_id for t in store.all()}
    others = [tid[("right", 1)], tid[("right", 2)], tid[("left", 3)]]
    apart = {("left", "right"), ("right", "left")}
    # 1 s beside it: a crossing; 10 s: someone else; its own camera: the usual cannot-link's business
    assert store.together(tid[("left", 1)], others, apart).tolist() == [False, True, False]
    assert not store.together(tid[("left", 1)], others, set()).any()  # views not known to meet at a seam


def test_views_that_share_a_band_are_told_from_views_that_meet_at_a_seam() -> None:
    people = _crossings(12)
    assert find_handoffs(people).apart == {("left", "right"), ("right", "left")}
    # the same crossings, but everyone appears in the next view a second before leaving this one: a band
    # of ground both views see, where one person is in both at once for a while
    for t in people[1::2]:
        t.first_timestamp -= 1.2
    found = find_handoffs(people)
    assert list(found.maps) == [("left", "right")] and found.shared == {("left", "right")}
    assert found.apart == frozenset()
