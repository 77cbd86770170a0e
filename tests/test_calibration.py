"""Self-calibrated link threshold: known answers on synthetic evidence, degenerate inputs, the linkers at auto,
and the re-stitching guard within one camera."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.identity.gallery import Gallery
from pipeline.identity.linker import OnlineLinker, calibrate_tracklets, offline_relink
from pipeline.identity.tracklets import Tracklet, TrackletStore, implausible_motion, motion_cannot_link
from pipeline.records import with_embeddings
from reid.calibration import PRIOR_NEGATIVE, PRIOR_POSITIVE, fit_threshold, prior_calibration

D = 64


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def evidence(n: int, half_cos: float, seed: int = 0) -> dict:
    """n tracklets of n strangers (near-orthogonal in D=64), two cameras, camera a's all on one frame span;
    each tracklet's halves have cosine ``half_cos`` with each other."""
    rng = np.random.default_rng(seed)
    means = unit(rng.standard_normal((n, D)))
    side = unit(rng.standard_normal((n, D)))
    side = unit(side - (side * means).sum(1, keepdims=True) * means)  # orthogonal to the mean
    angle = np.arccos(half_cos) / 2
    half_a = unit(np.cos(angle) * means + np.sin(angle) * side)
    half_b = unit(np.cos(angle) * means - np.sin(angle) * side)
    cams = np.array(["a"] * (n // 2) + ["b"] * (n - n // 2))
    first = np.where(cams == "a", 0, np.arange(n) * 100)
    last = np.where(cams == "a", 50, np.arange(n) * 100 + 10)
    return {"means": means, "halves_a": half_a, "halves_b": half_b, "cameras": cams, "first_frame": first,
            "last_frame": last}  # fmt: skip


@pytest.mark.parametrize("half_cos", [0.6, 0.9])
def test_threshold_recovers_the_position_between_known_medians(half_cos: float) -> None:
    cal = fit_threshold(**evidence(80, half_cos))
    assert cal.negatives == "cannot-link" and cal.positives == "halves" and not cal.from_prior
    assert abs(cal.m_pos - half_cos) < 1e-4 and abs(cal.m_neg) < 0.05  # strangers: ~orthogonal
    assert abs(cal.threshold - (cal.m_neg + 0.6 * (cal.m_pos - cal.m_neg))) < 1e-9
    assert abs(cal.threshold - 0.6 * half_cos) < 0.04
    higher = fit_threshold(**evidence(80, half_cos), fraction=0.8)
    assert higher.threshold > cal.threshold


def test_a_shifted_embedder_moves_the_threshold_with_it() -> None:
    """Everything shares one big component (as colour histograms do): raw cosines are all high."""
    ev = evidence(80, 0.9)
    common = unit(np.random.default_rng(1).standard_normal(D))
    for key in ("means", "halves_a", "halves_b"):
        ev[key] = unit(ev[key] + 2.5 * common)
    cal = fit_threshold(**ev)
    assert cal.m_neg > 0.8 and cal.m_neg < cal.threshold < cal.m_pos  # far from the learned-model prior 0.51


def test_degenerate_evidence_falls_back_to_the_prior_and_says_so() -> None:
    empty = np.zeros((0, D), np.float32)
    cal = fit_threshold(empty, empty, empty, [], np.zeros(0), np.zeros(0))
    assert cal == prior_calibration() and cal.from_prior
    assert abs(cal.threshold - (PRIOR_NEGATIVE + 0.6 * (PRIOR_POSITIVE - PRIOR_NEGATIVE))) < 1e-9
    ev = evidence(40, 0.9)
    ev["halves_a"][:] = np.nan  # one-crop tracklets only: no positives
    no_pos = fit_threshold(**ev)
    assert no_pos.positives == "prior" and no_pos.negatives == "cannot-link" and no_pos.m_pos == PRIOR_POSITIVE
    ev["means"] = unit(ev["means"] + 3.0 * unit(np.ones(D)))  # strangers near 0.9: the halves guess moves up
    shifted = fit_threshold(**ev)
    assert shifted.m_pos == pytest.approx((1 + shifted.m_neg) / 2) and shifted.m_neg < shifted.threshold < 1
    ev = evidence(40, 0.9)
    ev["cameras"][:] = "a"
    ev["first_frame"], ev["last_frame"] = np.arange(40) * 100, np.arange(40) * 100 + 10  # no two at once
    one_cam = fit_threshold(**ev)
    assert one_cam.negatives == "any-two" and one_cam.positives == "halves" and abs(one_cam.m_neg) < 0.05
    two = {k: v[:2] for k, v in ev.items()}  # one pair only: below min_pairs
    assert fit_threshold(**two).negatives == "prior"
    ev = evidence(40, 0.9)
    ev["means"][:5] = np.nan  # tracklets without an embedding are ignored, not propagated
    assert np.isfinite(fit_threshold(**ev).threshold)


def test_cross_camera_pairs_stand_in_when_no_cannot_link_exists() -> None:
    ev = evidence(40, 0.9)
    ev["first_frame"], ev["last_frame"] = np.arange(40) * 100, np.arange(40) * 100 + 10
    cal = fit_threshold(**ev)
    assert cal.negatives == "cross-camera" and abs(cal.m_neg) < 0.05


def test_an_embedder_that_separates_nothing_gets_the_prior(caplog) -> None:
    ev = evidence(40, 0.9)
    ev["halves_a"], ev["halves_b"] = ev["means"][::-1].copy(), ev["means"].copy()  # halves: strangers
    ev["means"] = unit(ev["means"] + 3.0 * unit(np.ones(D)))  # strangers: near-identical
    cal = fit_threshold(**ev)
    assert cal.from_prior and "no closer than strangers" in caplog.text


def test_bad_arguments_are_named() -> None:
    ev = evidence(10, 0.9)
    with pytest.raises(ValueError, match="fraction: expected a number in \\(0, 1\\)"):
        fit_threshold(**ev, fraction=1.0)
    with pytest.raises(ValueError, match="halves_a: expected shape"):
        fit_threshold(ev["means"], ev["halves_a"][:3], ev["halves_b"], ev["cameras"], ev["first_frame"],
                      ev["last_frame"])  # fmt: skip
    with pytest.raises(ValueError, match="threshold: expected a number in \\[-1, 1\\] or 'auto'"):
        offline_relink([], threshold="often")


# ---------------------------------------------------------------------- the linkers at auto
def feed(linker: OnlineLinker | None, schedule: list[tuple], noise: float, seed: int = 0,
         boxes: dict | None = None) -> list[Tracklet]:  # fmt: skip
    """[(camera, track, first, last, vector)] frame by frame; ``boxes[(camera, track)](frame)`` -> xyxy.
    Returns the tracklets, with the linker's global ids when there is a linker."""
    store, rng = TrackletStore(), np.random.default_rng(seed)
    for f in range(max(s[3] for s in schedule) + 1):
        for cam in sorted({s[0] for s in schedule}):
            active = [s for s in schedule if s[0] == cam and s[2] <= f <= s[3]]
            if not active:
                continue
            emb = unit(np.stack([s[4] for s in active]) + noise * rng.standard_normal((len(active), D)))
            xyxy = np.array([boxes[(cam, s[1])](f) if boxes else [60 * i, 0, 60 * i + 40, 128]
                             for i, s in enumerate(active)], np.float32)  # fmt: skip
            dets = sv.Detections(xyxy=xyxy, confidence=np.full(len(active), 0.9, np.float32),
                                 tracker_id=np.array([s[1] for s in active]))  # fmt: skip
            store.update(cam, f, f / 10.0, with_embeddings(dets, emb))
        if linker is not None:
            linker.step(store, now=f / 10.0)
    return store.all() if linker is None else linker.record.label(store.all())


def crowd(n_people: int, shift: float, newcomers: int = 0, seed: int = 0) -> tuple[list[tuple], np.ndarray]:
    """n people seen in camera a in groups of 4 at once, later one by one in camera b, with ``newcomers``
    more people only camera b sees, interleaved; all share a common component of weight ``shift`` (raw
    cosines between strangers ~ shift^2 / (1 + shift^2))."""
    rng = np.random.default_rng(seed)
    people = unit(rng.standard_normal((n_people + newcomers, D)) / np.sqrt(D) + shift * unit(rng.standard_normal(D)))
    schedule = [("a", k + 1, 30 * (k // 4), 30 * (k // 4) + 20, people[k]) for k in range(n_people)]
    start = 30 * (n_people // 4 + 1)
    order = list(range(n_people + newcomers))
    rng.shuffle(order)
    schedule += [("b", k + 1, start + 25 * i, start + 25 * i + 15, people[k]) for i, k in enumerate(order)]
    return schedule, people


def test_online_auto_links_an_embedder_whose_scale_no_fixed_number_fits() -> None:
    # strangers at raw cosine ~0.86: a fixed 0.5 gives camera b's newcomers the id of someone camera a saw (no margin)
    schedule, _ = crowd(12, shift=2.5, newcomers=6)
    fixed = OnlineLinker(Gallery(D, device="cpu"), threshold=0.5, margin=0.0, center_cameras=False)
    fixed_ids = {t.global_id for t in feed(fixed, schedule, noise=0.05)}
    assert len(fixed_ids) <= 14
    auto = OnlineLinker(Gallery(D, device="cpu"), margin=0.0, center_cameras=False)  # the threshold alone
    tracklets = feed(auto, schedule, noise=0.05)
    assert not auto.calibration.from_prior and auto.calibration.m_neg > 0.7
    by_person = {}
    for t in tracklets:
        person = [s for s in schedule if s[0] == t.camera_id and s[1] == t.track_id][0][4]
        by_person.setdefault(person.tobytes(), set()).add(t.global_id)
    assert sum(len(ids) == 1 for ids in by_person.values()) >= 17  # one id per person
    assert len({t.global_id for t in tracklets}) in (18, 19)


def test_offline_auto_clusters_the_same_scene() -> None:
    schedule, _ = crowd(12, shift=2.5)  # everyone camera b sees was in camera a
    tracklets = feed(None, schedule, noise=0.05)
    cal = calibrate_tracklets(tracklets, center_cameras=False)
    assert cal.negatives == "cannot-link" and cal.positives == "halves"
    report: dict = {}
    mapping = offline_relink(tracklets, threshold="auto", center_cameras=False, report=report)
    ids = {(t.camera_id, t.track_id): mapping[t.tracklet_id] for t in tracklets}
    assert report["calibration"] == cal and report["threshold"] == cal.threshold
    assert len(set(ids.values())) == 12
    by_vector = {}
    for (cam, track), gid in ids.items():
        person = [s for s in schedule if s[0] == cam and s[1] == track][0][4]
        by_vector.setdefault(person.tobytes(), set()).add(gid)
    assert all(len(g) == 1 for g in by_vector.values())


# ---------------------------------------------------------------------- re-stitching within a camera
def walker(x0: float, speed: float) -> callable:
    return lambda f: [x0 + speed * f, 100, x0 + speed * f + 40, 228]  # 128 px tall, moving right


def test_a_person_hidden_long_enough_to_lose_the_track_is_restitched() -> None:
    """One camera: person 0 walks, is hidden for 3 s (the tracker starts a new track 3), comes back further
    along her path; person 1 (another look) walks elsewhere the whole time."""
    rng = np.random.default_rng(3)
    people = unit(rng.standard_normal((3, D)))
    schedule = [("a", 1, 0, 40, people[0]), ("a", 3, 71, 110, people[0]), ("a", 2, 0, 110, people[1]),
                ("a", 4, 20, 60, people[2])]  # fmt: skip
    boxes = {("a", 1): walker(0, 3), ("a", 3): walker(0, 3), ("a", 2): walker(900, -1), ("a", 4): walker(400, 0)}
    tracklets = feed(OnlineLinker(Gallery(D, device="cpu")), schedule, noise=0.05, boxes=boxes)
    ids = {t.track_id: t.global_id for t in tracklets}
    assert ids[1] == ids[3] and len({ids[1], ids[2], ids[4]}) == 3  # one id per person: never worse than tracks
    mapping = offline_relink(tracklets)
    offline = {t.track_id: mapping[t.tracklet_id] for t in tracklets}
    assert offline[1] == offline[3] and len(set(offline.values())) == 3


def test_a_look_alike_too_far_away_too_soon_is_not_stitched() -> None:
    rng = np.random.default_rng(4)
    person = unit(rng.standard_normal(D))
    schedule = [("a", 1, 0, 30, person), ("a", 2, 33, 60, person)]  # 0.3 s later, 6 heights away
    boxes = {("a", 1): walker(0, 1), ("a", 2): walker(800, 1)}
    tracklets = feed(OnlineLinker(Gallery(D, device="cpu")), schedule, noise=0.05, boxes=boxes)
    ids = [t.global_id for t in tracklets]
    assert ids[0] != ids[1] and min(ids) >= 0
    assert motion_cannot_link(tracklets)[0, 1]
    mapping = offline_relink(tracklets, threshold=0.0)
    assert len(set(mapping.values())) == 2


def test_motion_rule_allows_long_gaps_and_ignores_unknown_boxes() -> None:
    box = np.array([[0, 0, 40, 128]], np.float32)
    far = np.array([[600, 0, 640, 128]], np.float32)
    nan = np.full((1, 4), np.nan, np.float32)

    def call(gap: float, end: np.ndarray, start: np.ndarray) -> bool:
        return bool(implausible_motion(np.array([1.0]), np.array([0.0]), box, end, np.array([9.0]),
                                       np.array([1.0 + gap]), start, start)[0])  # fmt: skip

    assert call(0.2, box, far)  # ~4.7 heights in 0.2 s
    assert not call(5.0, box, far)  # in 5 s anyone gets there
    assert not call(0.2, box, nan) and not call(0.2, nan, far)
    t = Tracklet(0, "a", 1, 0, 5, 0.0, 0.5)
    assert not motion_cannot_link([t, Tracklet(1, "a", 2, 9, 12, 0.9, 1.2)]).any()  # boxes unknown
