"""Hand-over timing learned from a run: the fit on synthetic pairs with a known geometry, and its effect on linking."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.identity.linker import offline_relink
from pipeline.identity.tracklets import Tracklet
from reid.handover import EDGES_S, MAX_LOG_LR, NO_HANDOVER, WEIGHT, fit_handover, time_gap

D = 64


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_time_gap_is_symmetric_and_negative_for_overlap() -> None:
    assert time_gap(np.array(0.0), np.array(10.0), np.array(10.5), np.array(20.0)) == pytest.approx(0.5)
    assert time_gap(np.array(10.5), np.array(20.0), np.array(0.0), np.array(10.0)) == pytest.approx(0.5)
    assert time_gap(np.array(0.0), np.array(10.0), np.array(4.0), np.array(20.0)) == pytest.approx(-6.0)


def hand_over_scene(n: int = 40, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """``n`` people, each seen in camera a and then in camera b 0.2 s after leaving a (a hand-over), at random
    times over 20 minutes; similarities: one person 0.8, strangers 0 +- 0.2."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 1200, n)
    first = np.concatenate([start, start + 10.2])
    last = np.concatenate([start + 10, start + 20])
    cams = ["a"] * n + ["b"] * n
    sims = rng.normal(0.0, 0.2, (2 * n, 2 * n))
    sims = (sims + sims.T) / 2
    person = np.tile(np.arange(n), 2)
    sims[person[:, None] == person[None, :]] = 0.8
    return sims, cams, first, last


def test_fit_finds_the_hand_over_bin() -> None:
    sims, cams, first, last = hand_over_scene()
    model = fit_handover(sims, cams, first, last, threshold=0.5, scale_span=1.0)
    assert model.active and model.n_links >= 40
    best = int(np.argmax(model.log_lr))
    assert EDGES_S[best] <= 0.2 < EDGES_S[best + 1]
    assert model.log_lr[best] > np.log(5)
    bonus = model.bonus(["a", "a", "a"], ["b", "b", "a"], np.array([0.2, 300.0, 0.2]))
    assert bonus[0] > 0.15 and bonus[1] < 0 and bonus[2] == 0.0  # same camera: nothing
    assert bonus[0] <= WEIGHT * MAX_LOG_LR + 1e-9
    matrix = model.bonus_matrix(cams, first, last)
    assert matrix.shape == (80, 80) and np.allclose(matrix, matrix.T) and np.all(np.diag(matrix) == 0)
    assert matrix[0, 40] == pytest.approx(bonus[0])


def test_flat_timing_learns_nearly_nothing() -> None:
    """Links spread over time like every other pair (clips laid end to end): the ratio stays near 1."""
    sims, cams, first, _ = hand_over_scene(n=60, seed=1)
    rng = np.random.default_rng(2)
    first = rng.uniform(0, 1200, len(cams))  # every tracklet at a random time: timing carries nothing
    model = fit_handover(sims, cams, first, first + 10, threshold=0.5, scale_span=1.0)
    assert np.max(np.abs(model.log_lr)) < 0.7


@pytest.mark.parametrize(
    "case",
    ["one camera", "too few links", "no scale", "one tracklet"],
)
def test_degenerate_inputs_turn_it_off(case: str) -> None:
    sims, cams, first, last = hand_over_scene(n=20)
    threshold, span = 0.5, 1.0
    if case == "one camera":
        cams = ["a"] * len(cams)
    elif case == "too few links":
        threshold = 0.95
    elif case == "no scale":
        span = float("nan")
    else:
        sims, cams, first, last = sims[:1, :1], cams[:1], first[:1], last[:1]
    model = fit_handover(sims, cams, first, last, threshold, span)
    assert not model.active
    assert np.all(model.bonus(["a"], ["b"], np.array([0.2])) == 0)


def test_nan_similarities_are_skipped() -> None:
    sims, cams, first, last = hand_over_scene()
    sims[:5] = np.nan
    sims[:, :5] = np.nan
    model = fit_handover(sims, cams, first, last, threshold=0.5, scale_span=1.0)
    assert model.active and np.all(np.isfinite(model.log_lr))


def tracklet(tid: int, cam: str, first: float, last: float, vec: np.ndarray) -> Tracklet:
    return Tracklet(tid, cam, tid, int(first * 10), int(last * 10), first, last, n_boxes=int((last - first) * 10) + 1,
                    n_embedded=3, embedding_sum=vec.astype(np.float32))  # fmt: skip


def along(vec: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at exactly ``cosine`` to the unit ``vec``."""
    other = rng.standard_normal(vec.shape[-1])
    other = unit(other - (other @ vec) * vec)
    return unit(cosine * vec + np.sqrt(1 - cosine**2) * other)


def linking_scene() -> tuple[list[Tracklet], int]:
    """30 people handed over from camera a to b 0.2 s after leaving a (one person at cosine 0.8 across the
    views), then one hand-over whose views are at cosine 0.45, below the threshold (0.55)."""
    rng = np.random.default_rng(3)
    out = []
    base = unit(rng.standard_normal((31, D)))
    for k in range(31):
        t0 = 40.0 * k
        view_b = along(base[k], 0.45 if k == 30 else 0.8, rng)
        out += [tracklet(2 * k, "a", t0, t0 + 10, base[k]), tracklet(2 * k + 1, "b", t0 + 10.2, t0 + 20, view_b)]
    return out, 61


def test_hand_over_timing_links_a_hand_over_that_appearance_alone_misses() -> None:
    tracklets, hard = linking_scene()
    without = offline_relink(tracklets, threshold=0.55, center_cameras=False, handover=False)
    report: dict = {}
    with_timing = offline_relink(tracklets, threshold=0.55, center_cameras=False, report=report)
    assert report["handover"].active
    assert without[hard] != without[hard - 1]
    assert with_timing[hard] == with_timing[hard - 1]
    assert all(with_timing[2 * k + 1] == with_timing[2 * k] for k in range(31))
    assert len(set(with_timing.values())) == 31


def test_a_look_alike_far_from_any_hand_over_time_gains_nothing() -> None:
    """A tracklet of b at cosine 0.45 to a person of a, but minutes away: timing does not carry it over."""
    tracklets, hard = linking_scene()
    far = tracklets[hard]
    tracklets[hard] = tracklet(hard, "b", far.first_timestamp + 400, far.last_timestamp + 400, far.mean)
    with_timing = offline_relink(tracklets, threshold=0.55, center_cameras=False)
    assert with_timing[hard] != with_timing[hard - 1]


def test_no_hand_over_is_the_default_off_switch() -> None:
    assert not NO_HANDOVER.active
    assert NO_HANDOVER.bonus_matrix(["a", "b"], np.zeros(2), np.ones(2)).sum() == 0


def test_online_linker_uses_the_learned_hand_over() -> None:
    """Online: 12 people walk from camera a into camera b (0.1 s later, cosine 0.8 across the views); the
    13th looks less alike across the cut (cosine 0.5) than the threshold (0.55) asks. With the learned
    timing it keeps its identity; without, it founds a new one."""
    from test_linker import simulate  # the frame-by-frame driver of the linker tests

    from pipeline.identity.gallery import Gallery
    from pipeline.identity.linker import OnlineLinker

    rng = np.random.default_rng(4)
    dim = 32
    base = unit(rng.standard_normal((13, dim)))
    schedule = []
    for k in range(13):
        view_b = along(base[k], 0.5 if k == 12 else 0.8, rng)
        start = 45 * k
        schedule += [("a", k + 1, start, start + 20, base[k]), ("b", k + 1, start + 21, start + 40, view_b)]
    ids = {}
    for handover in (True, False):
        linker = OnlineLinker(Gallery(dim, device="cpu"), threshold=0.55, center_cameras=False, handover=handover)
        run = simulate(linker, schedule, noise=0.01)
        ids[handover] = {(t.camera_id, t.track_id): t.global_id for t in run.tracklets()}
        if handover:
            assert linker.timing.active
    assert all(ids[True][("a", k)] == ids[True][("b", k)] for k in range(1, 14))
    assert ids[False][("a", 13)] != ids[False][("b", 13)]
    assert len(set(ids[True].values())) == 13
