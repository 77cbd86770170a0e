"""Online linking on synthetic tracklets with known answers, and constrained offline re-clustering."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest
import supervision as sv

from pipeline.identity.gallery import Gallery
from pipeline.identity.linker import OnlineLinker, offline_relink
from pipeline.identity.tracklets import Tracklet, TrackletStore
from pipeline.records import with_embeddings
from reid.agglomerative import constrained_agglomerative
from reid.camera_centring import centre_by_camera

D = 32
PEOPLE = np.linalg.qr(np.random.default_rng(0).standard_normal((D, D)))[0][:4].astype(np.float32)  # orthonormal
FPS = 10.0


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def simulate(linker: OnlineLinker, schedule: list[tuple], noise: float = 0.03, seed: int = 0) -> Simulated:
    """Feed ``schedule`` [(camera, track_id, first_frame, last_frame, vector or f(frame) -> vector)] frame by frame."""
    store = TrackletStore()
    rng = np.random.default_rng(seed)
    for f in range(max(s[3] for s in schedule) + 1):
        for cam in sorted({s[0] for s in schedule}):
            active = [s for s in schedule if s[0] == cam and s[2] <= f <= s[3]]
            if not active:
                continue
            vecs = np.stack([s[4](f) if callable(s[4]) else s[4] for s in active])
            emb = vecs + noise * rng.standard_normal(vecs.shape).astype(np.float32)
            with np.errstate(invalid="ignore"):
                emb = unit(emb)  # NaN rows stay NaN
            xyxy = np.array([[60 * i, 0, 60 * i + 40, 128] for i in range(len(active))], np.float32)
            dets = sv.Detections(
                xyxy=xyxy, confidence=np.full(len(active), 0.9, np.float32), tracker_id=np.array([s[1] for s in active])
            )
            store.update(cam, f, f / FPS, with_embeddings(dets, emb))
        linker.step(store, now=f / FPS)
    run = Simulated(store, linker)
    assert_constraints(run.tracklets())
    return run


@dataclass
class Simulated:
    store: TrackletStore
    linker: OnlineLinker

    def tracklets(self) -> list[Tracklet]:
        """The store's tracklets with the global ids of the linker's identity record."""
        return self.linker.record.label(self.store.all())


def ids_by_track(run: Simulated) -> dict[tuple[str, int], int]:
    return {(t.camera_id, t.track_id): t.global_id for t in run.tracklets()}


def assert_constraints(tracklets: list[Tracklet]) -> None:
    for i, a in enumerate(tracklets):
        for b in tracklets[i + 1 :]:
            assert not (a.global_id >= 0 and a.global_id == b.global_id and a.overlaps(b)), (a, b)


def new_linker(**kwargs: object) -> OnlineLinker:
    return OnlineLinker(Gallery(D, device="cpu"), **kwargs)


def test_three_people_two_cameras_get_three_ids() -> None:
    schedule = [
        ("a", 1, 0, 20, PEOPLE[0]),
        ("a", 2, 0, 20, PEOPLE[1]),
        ("a", 3, 30, 50, PEOPLE[2]),
        ("b", 1, 60, 80, PEOPLE[1]),
        ("b", 2, 60, 80, PEOPLE[0]),
        ("b", 7, 90, 110, PEOPLE[2]),
    ]
    ids = ids_by_track(simulate(new_linker(), schedule))
    assert len(set(ids.values())) == 3 and -1 not in ids.values()
    assert ids[("a", 1)] == ids[("b", 2)] and ids[("a", 2)] == ids[("b", 1)] and ids[("a", 3)] == ids[("b", 7)]


def test_same_camera_overlap_never_merged_even_if_identical() -> None:
    schedule = [("a", 1, 0, 20, PEOPLE[0]), ("a", 2, 5, 25, PEOPLE[0]), ("a", 3, 40, 50, PEOPLE[0])]
    linker = new_linker()
    ids = ids_by_track(simulate(linker, schedule, noise=0.0))
    assert ids[("a", 1)] != ids[("a", 2)]
    assert ids[("a", 3)] == 3  # identical to both earlier identities: no margin, so a new one


@pytest.mark.parametrize(
    ("transit", "same"),
    [
        (None, True),
        ({("a", "b"): (10.0, 60.0)}, False),  # gap 0.5 s: too fast
        ({("b", "a"): (10.0, 60.0)}, False),  # one direction serves both
        ({("a", "b"): (0.0, 5.0)}, True),
        ({("a", "c"): (10.0, 60.0)}, True),  # a pair without a window is unconstrained
    ],
)
def test_transit_window(transit: dict | None, same: bool) -> None:
    schedule = [("a", 1, 0, 20, PEOPLE[0]), ("b", 1, 25, 45, PEOPLE[0])]
    ids = ids_by_track(simulate(new_linker(transit=transit, cameras=["a", "b", "c"]), schedule))
    assert (ids[("a", 1)] == ids[("b", 1)]) == same


@pytest.mark.parametrize(
    ("transit", "cameras", "message"),
    [
        ({("a", "x"): (0, 1)}, ["a", "b"], r"expected a pair of known cameras \['a', 'b'\]"),
        ({("a", "b"): (5, 1)}, ["a", "b"], r"min_s <= max_s, got \(5, 1\)"),
        ({("a", "a"): (0, 1)}, ["a", "b"], "two different cameras"),
        ({("a", "b"): (0, 1)}, None, "expected cameras="),
    ],
)
def test_transit_rejected_at_construction(transit: dict, cameras: list | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        new_linker(transit=transit, cameras=cameras)


@pytest.mark.parametrize(
    ("vector", "margin", "expected"),
    [
        (unit(PEOPLE[0] + PEOPLE[1]), 0.05, 3),  # 0.71 to both: ambiguous -> new identity
        (unit(PEOPLE[0] + PEOPLE[1]), 0.0, 1),  # no margin: joins the (barely) best
        (unit(2 * PEOPLE[0] + PEOPLE[1]), 0.05, 1),  # 0.89 vs 0.45: clear
        (unit(PEOPLE[0] + 3 * PEOPLE[2]), 0.05, 3),  # 0.32 < threshold 0.5
    ],
)
def test_margin_and_threshold_against_existing_gallery(vector: np.ndarray, margin: float, expected: int) -> None:
    gallery = Gallery(D, device="cpu")
    gallery.add_identity(PEOPLE[0], "a", 0.0)
    gallery.add_identity(PEOPLE[1] * (1 - 1e-4) + 1e-4 * PEOPLE[3], "a", 0.0)  # breaks the exact tie
    linker = OnlineLinker(gallery, margin=margin)
    ids = ids_by_track(simulate(linker, [("b", 1, 0, 5, vector)], noise=0.0))
    assert ids[("b", 1)] == expected


def test_nan_embeddings_rejected_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    nan = np.full(D, np.nan, np.float32)
    schedule = [
        ("a", 1, 0, 10, nan),  # never a usable crop
        ("a", 2, 0, 10, lambda f: nan if f % 2 else PEOPLE[1]),  # half NaN: the rest still counts
    ]
    linker = new_linker()
    run = simulate(linker, schedule)
    assert ids_by_track(run)[("a", 1)] == -1 and ids_by_track(run)[("a", 2)] == 1
    store = run.store
    np.testing.assert_allclose(store.all()[1].mean, PEOPLE[1], atol=0.05)
    with caplog.at_level(logging.INFO, logger="pipeline.identity.linker"):
        linker.step(store, now=10.0, ended=store.ended({"a": 10.0}, timeout_s=1.0))
    assert "tracklet 0 (camera a, track 1, 11 boxes) ended with no usable crop" in caplog.text


def revised(revise_until: int) -> tuple[OnlineLinker, dict, list[int]]:
    """Track b/1 shows a stranger for six crops, then person 0; returns the linker, ids and b/1's moves."""
    schedule = [("a", 1, 0, 30, PEOPLE[0]), ("b", 1, 40, 70, lambda f: PEOPLE[3] if f < 46 else PEOPLE[0])]
    linker = new_linker(revise_until_crops=revise_until, split_switches=False)  # revision alone, not a cut
    moves: list[int] = []
    real_step = linker.step

    def step(store, now, ended=()):
        changes = real_step(store, now, ended)
        to_1 = [e for e in changes if e.global_id == 1 and store.get(e.tracklet_id).camera_id == "b"]
        moves.extend(round(now * FPS) for _ in to_1)
        return changes

    linker.step = step
    return linker, ids_by_track(simulate(linker, schedule)), moves


def test_young_tracklet_is_revised() -> None:
    # While young (fewer crops than revise_until) a tracklet is re-decided on every crop; later only when it
    # has grown by half since its last decision. Either way b/1 moves once, into person 0's identity (id 1).
    _, young_ids, young_moves = revised(10)
    linker, ids, moves = revised(4)
    assert len(young_moves) == 1 and len(moves) == 1 and young_ids[("a", 1)] == young_ids[("b", 1)]
    merged = ids[("a", 1)] == ids[("b", 1)]
    assert merged
    gallery = linker.gallery
    assert (2 in gallery) != merged  # the identity b/1 founded is dropped once it moved
    assert gallery.add_identity(PEOPLE[2], "c", 99.0) == 3  # and its id is never reused
    assert linker.members(ids[("a", 1)]) == ([0, 1] if merged else [0])


def test_tracklet_that_grows_into_an_overlap_is_detached() -> None:
    # a/1 and a/2 are one person one after the other; then track 1 comes back while a/2 is still active.
    schedule = [("a", 1, 0, 10, PEOPLE[0]), ("a", 2, 20, 40, PEOPLE[0]), ("a", 1, 30, 32, PEOPLE[0])]
    ids = ids_by_track(simulate(new_linker(), schedule, noise=0.0))  # simulate() asserts the constraint
    assert ids[("a", 1)] != ids[("a", 2)] and min(ids.values()) >= 0


def make_tracklet(tid: int, cam: str, first: int, last: int, vec: np.ndarray | None) -> Tracklet:
    return Tracklet(
        tid,
        cam,
        tid,
        first,
        last,
        first / FPS,
        last / FPS,
        n_boxes=last - first + 1,
        n_embedded=0 if vec is None else 3,
        embedding_sum=None if vec is None else vec.astype(np.float32),
    )


def test_offline_relink_recovers_clusters() -> None:
    rng = np.random.default_rng(5)
    truth, tracklets = [], []
    for k in range(12):
        person = [2, 0, 1][k % 3]
        vec = unit(PEOPLE[person] + 0.05 * rng.standard_normal(D))
        tracklets.append(make_tracklet(k, "ab"[k % 2], 20 * k, 20 * k + 10, vec))
        truth.append(person)
    tracklets.append(make_tracklet(12, "a", 0, 5, None))
    ids = offline_relink(tracklets, threshold=0.5)
    assert ids[12] == -1
    got = [ids[k] for k in range(12)]
    assert got == [1, 2, 3] * 4  # numbered by each cluster's smallest tracklet id
    assert len({(g, t) for g, t in zip(got, truth)}) == 3


def test_offline_relink_respects_cannot_link() -> None:
    same = PEOPLE[0]
    tracklets = [
        make_tracklet(0, "a", 0, 50, same),
        make_tracklet(1, "a", 10, 60, same),
        make_tracklet(2, "b", 0, 60, same),
        make_tracklet(3, "a", 70, 80, same),
    ]
    ids = offline_relink(tracklets, threshold=0.5)
    assert ids[0] != ids[1]
    assert len(set(ids.values())) == 2 and ids[2] in (ids[0], ids[1]) and ids[3] in (ids[0], ids[1])


@pytest.mark.parametrize(("linkage", "cut"), [("average", 1.5), ("complete", 2.5), ("single", 0.5)])
def test_constrained_agglomerative_matches_scipy_without_constraints(linkage: str, cut: float) -> None:
    from scipy.cluster.hierarchy import fcluster
    from scipy.cluster.hierarchy import linkage as scipy_linkage
    from scipy.spatial.distance import squareform

    x = np.random.default_rng(6).standard_normal((40, 3))
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
    ours = constrained_agglomerative(dist, np.zeros((40, 40), bool), cut, linkage)
    theirs = fcluster(scipy_linkage(squareform(dist, checks=False), method=linkage), cut, criterion="distance")
    pairs_ours = ours[:, None] == ours[None]
    pairs_theirs = theirs[:, None] == theirs[None]
    assert (pairs_ours == pairs_theirs).all() and 2 < len(set(ours)) < 40


def test_constrained_agglomerative_cannot_link_propagates() -> None:
    # points 0,1,2 on a line, 0 and 2 forbidden: 0-1 merge first, then 2 may not join {0, 1}
    dist = np.array([[0, 1, 2], [1, 0, 1.1], [2, 1.1, 0]], float)
    forbidden = np.zeros((3, 3), bool)
    forbidden[0, 2] = forbidden[2, 0] = True
    assert constrained_agglomerative(dist, forbidden, 5.0, "single").tolist() == [0, 0, 1]


def test_offline_relink_rerank_and_bad_linkage() -> None:
    tracklets = [make_tracklet(k, "ab"[k % 2], 20 * k, 20 * k + 5, unit(PEOPLE[k % 2] + 0.01 * k)) for k in range(8)]
    with pytest.raises(ValueError, match="linkage: expected 'average', 'complete' or 'single', got 'ward'"):
        offline_relink(tracklets, threshold=0.5, linkage="ward")
    pytest.importorskip("reid.cluster", reason="reid/cluster.py (k_reciprocal_jaccard) not written yet")
    ids = offline_relink(tracklets, threshold=0.5, rerank=True, k1=4, k2=2)
    assert [ids[k] for k in range(8)] == [1, 2] * 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_crops": 0}, "expected min_crops, k, max_prototypes >= 1"),
        ({"k": 0}, "expected min_crops, k, max_prototypes >= 1"),
        ({"margin": -0.1}, "margin: expected >= 0, got -0.1"),
    ],
)
def test_linker_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        new_linker(**kwargs)


BASIS = np.linalg.qr(np.random.default_rng(7).standard_normal((D, D)))[0].astype(np.float32)  # orthonormal rows


def test_centre_by_camera_closed_form() -> None:
    vecs = unit(np.random.default_rng(8).standard_normal((4, D)))
    sums = {"a": 3.0 * BASIS[0].astype(np.float64), "b": 2.0 * vecs[3].astype(np.float64)}
    out = centre_by_camera(vecs, ["a", "a", "c", "b"], sums, {"a": 2, "b": 1}, prior=1.0)
    expected = vecs[:2] - BASIS[0] * (3.0 / 3.0)
    np.testing.assert_allclose(out[:2], unit(expected), atol=1e-6)
    np.testing.assert_allclose(out[2], vecs[2], atol=1e-7)  # a camera without a mean is not shifted
    np.testing.assert_allclose(out[3], vecs[3], atol=1e-7)  # a row that would vanish keeps its direction


def cast_scene(n: int, cast: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` people seen plainly by camera a and through a strong colour cast (shared offset) by camera b."""
    people, offset = BASIS[:n], cast * BASIS[n]
    return people, unit(people + offset)


def test_offline_centring_undoes_a_camera_cast() -> None:
    # strangers in b: cos 0.69; one person across a and b: cos 0.55 -> plain cosine links the wrong pairs
    people, cast = cast_scene(16, 1.5)
    tracklets = [make_tracklet(k, "a", 20 * k, 20 * k + 10, people[k]) for k in range(16)]
    tracklets += [make_tracklet(16 + k, "b", 400 + 20 * k, 410 + 20 * k, cast[k]) for k in range(16)]
    plain = offline_relink(tracklets, threshold=0.6, center_cameras=False)
    assert len({plain[16 + k] for k in range(16)}) == 1 and all(plain[k] != plain[16] for k in range(16))
    centred = offline_relink(tracklets, threshold=0.6, center_cameras=True)
    assert all(centred[k] == centred[16 + k] for k in range(16))
    assert len(set(centred.values())) == 16


@pytest.mark.parametrize(("score", "center", "correct"), [("max", False, False), ("mean", False, True),
                                                          ("mean", True, True)])  # fmt: skip
def test_online_mean_score_resists_a_camera_cast(score: str, center: bool, correct: bool) -> None:
    people, cast = cast_scene(8, 1.5)
    schedule = [("a", k + 1, 15 * k, 15 * k + 10, people[k]) for k in range(8)]
    schedule += [("b", k + 1, 200 + 15 * k, 210 + 15 * k, cast[k]) for k in range(8)]
    ids = ids_by_track(simulate(new_linker(threshold=0.5, score=score, center_cameras=center), schedule))
    right = all(ids[("a", k + 1)] == ids[("b", k + 1)] for k in range(8)) and len(set(ids.values())) == 8
    assert right is correct


def test_linker_bad_score() -> None:
    with pytest.raises(ValueError, match="expected score 'mean' or 'max'"):
        new_linker(score="median")


def switch_scene() -> list[tuple]:
    """Camera b sees persons 0 and 1; later camera a's track 1 follows person 0, then (a tracker switch)
    person 1, while track 2 follows person 2."""
    return [
        ("b", 5, 0, 20, PEOPLE[0]),
        ("b", 6, 0, 20, PEOPLE[1]),
        ("a", 1, 30, 70, lambda f: PEOPLE[0] if f < 50 else PEOPLE[1]),
        ("a", 2, 30, 70, PEOPLE[2]),
    ]


@pytest.mark.parametrize("split", [True, False])
def test_a_switch_inside_a_track_is_cut_and_linked(split: bool) -> None:
    run = simulate(new_linker(split_switches=split), switch_scene())
    of = {(t.camera_id, t.track_id, t.first_frame): t for t in run.tracklets()}
    person = {p: of[("b", 5 + p, 0)].global_id for p in (0, 1)}
    first = of[("a", 1, 30)]
    if not split:
        assert run.store.splits == 0 and first.last_frame == 70 and first.global_id == person[0]
        return
    (second,) = [t for k, t in of.items() if k[:2] == ("a", 1) and k[2] > 30]
    assert run.store.splits == 1 and 50 <= second.first_frame <= 53 and 46 <= first.last_frame < 50
    assert first.global_id == person[0] and second.global_id == person[1]
    assert of[("a", 2, 30)].global_id not in person.values()


def test_one_noisy_person_is_never_cut() -> None:
    schedule = [("a", 1, 0, 300, PEOPLE[0]), ("a", 2, 0, 300, PEOPLE[1]), ("b", 1, 320, 400, PEOPLE[0])]
    run = simulate(new_linker(), schedule, noise=0.15)
    assert run.store.splits == 0 and len(run.tracklets()) == 3


def test_constrained_agglomerative_must_links_merge_whatever_their_distance() -> None:
    # four points: 0-1 close, 2 and 3 far from everything; a must-link joins 2 with 0 (first, so 1 then
    # stays out: on average it is far from the pair), and one on a forbidden pair (1-3) is ignored
    pts = np.array([[0.0], [0.1], [5.0], [9.0]])
    dist = np.abs(pts - pts.T)
    forbidden = np.zeros((4, 4), bool)
    forbidden[1, 3] = forbidden[3, 1] = True
    plain = constrained_agglomerative(dist, forbidden, 0.5, "average")
    linked = constrained_agglomerative(dist, forbidden, 0.5, "average", must_link=np.array([[2, 0], [1, 3]]))
    assert len(set(plain.tolist())) == 3
    assert plain[0] == plain[1]
    assert linked[0] == linked[2] and len({linked[0], linked[1], linked[3]}) == 3
