"""Self-consistent link threshold (reid/consistency.py): a crowd of look-alikes that the position rule merges is
mostly kept apart, and the rule never lowers a threshold, runs with one camera or past its cap."""

from __future__ import annotations

import numpy as np
import pytest

from reid.agglomerative import constrained_agglomerative
from reid.consistency import consistent_threshold, nearest_outsiders


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def crowd(n: int, dim: int, cameras: int = 3, group: int = 4, noise: float = 0.3, seed: int = 0) -> dict:
    """n people, each seen once by every camera. People are random directions in a ``dim``-dimensional
    appearance space (few dimensions: many look-alikes at every level of similarity); each sighting adds a
    random offset of length ``noise``. Every camera sees the people in a random order, ``group`` at a time:
    those are cannot-links."""
    rng = np.random.default_rng(seed)
    people = unit(rng.standard_normal((n, dim)))
    person = np.concatenate([rng.permutation(n) for _ in range(cameras)])
    cams = np.repeat(np.arange(cameras), n)
    slot = np.tile(np.arange(n) // group, cameras)
    feats = unit(people[person] + noise * unit(rng.standard_normal((len(person), dim))))
    forbidden = (cams[:, None] == cams[None, :]) & (slot[:, None] == slot[None, :])
    np.fill_diagonal(forbidden, False)
    return {"sims": feats @ feats.T, "cameras": cams, "forbidden": forbidden, "person": person}


def pair_f1(labels: np.ndarray, person: np.ndarray) -> float:
    """F1 of "same cluster" against "same person" over all pairs of sightings."""
    iu = np.triu_indices(len(person), 1)
    same = (person[:, None] == person[None, :])[iu]
    linked = (labels[:, None] == labels[None, :])[iu]
    return float(2 * (same & linked).sum() / (same.sum() + linked.sum()))


def cluster(s: dict, t: float) -> np.ndarray:
    return constrained_agglomerative(1 - s["sims"], s["forbidden"], 1 - t, "average")


@pytest.mark.parametrize("dim", [8, 12])
def test_a_crowd_of_lookalikes_merged_at_the_start_is_mostly_kept_apart(dim: int):
    s = crowd(80, dim)
    start = 0.5  # what the position rule gives a learned embedder (strangers ~0, halves ~0.9)
    t, steps = consistent_threshold(s["sims"], s["cameras"], s["forbidden"], start, cap=0.95)
    assert steps >= 1 and start + 0.1 < t < 0.95
    before, after = pair_f1(cluster(s, start), s["person"]), pair_f1(cluster(s, t), s["person"])
    assert before < 0.55 and after > 0.75
    # a fixed point: the median nearest outsider of the final clustering sits within a step of t
    assert abs(np.median(nearest_outsiders(s["sims"], s["cameras"], cluster(s, t))) - t) < 0.05


def test_far_outsiders_leave_the_start_alone():
    s = crowd(40, 256)  # people nearly orthogonal: nothing to raise the cut for
    assert consistent_threshold(s["sims"], s["cameras"], s["forbidden"], 0.5, cap=0.95) == (0.5, 0)
    assert pair_f1(cluster(s, 0.5), s["person"]) == 1.0


def test_one_camera_and_the_cap():
    s = crowd(40, 8)
    one = np.zeros(len(s["cameras"]), np.int64)
    assert consistent_threshold(s["sims"], one, s["forbidden"], 0.5, cap=0.95) == (0.5, 0)
    t, _ = consistent_threshold(s["sims"], s["cameras"], s["forbidden"], 0.5, cap=0.55)
    assert t == pytest.approx(0.55)
    assert consistent_threshold(s["sims"], s["cameras"], s["forbidden"], 0.6, cap=0.55) == (0.6, 0)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="sims: expected shape"):
        consistent_threshold(np.eye(3), np.array(["a", "b"]), np.zeros((3, 3), bool), 0.5, 0.9)


def test_offline_relink_at_auto_raises_its_cut_in_a_crowd_of_lookalikes():
    """The linker end to end: tracklets of a low-dimensional crowd seen by three cameras, four at a time."""
    import supervision as sv

    from pipeline.identity.linker import offline_relink
    from pipeline.identity.tracklets import TrackletStore
    from pipeline.records import with_embeddings

    rng = np.random.default_rng(1)
    n, dim, width = 48, 6, 32
    people = np.zeros((n, width))
    people[:, :dim] = unit(rng.standard_normal((n, dim)))
    store, truth = TrackletStore(), {}
    for cam in "abc":
        order = rng.permutation(n)
        for g in range(0, n, 4):
            group = order[g : g + 4]
            for f in range(10):
                frame = 20 * g + f
                emb = unit(people[group] + 0.08 * unit(rng.standard_normal((len(group), width))))
                xyxy = np.array([[60 * i, 0, 60 * i + 40, 128] for i in range(len(group))], np.float32)
                dets = sv.Detections(xyxy=xyxy, confidence=np.full(len(group), 0.9, np.float32),
                                     tracker_id=group + 1)  # fmt: skip
                store.update(cam, frame, frame / 10.0, with_embeddings(dets, emb.astype(np.float32)))
            truth.update({(cam, int(p) + 1): int(p) for p in group})
    tracklets = store.all()
    person = np.array([truth[(t.camera_id, t.track_id)] for t in tracklets])

    def f1(consistent: bool) -> tuple[float, dict]:
        report: dict = {}
        mapping = offline_relink(tracklets, consistent=consistent, handover=False, handoffs=False, report=report)
        return pair_f1(np.array([mapping[t.tracklet_id] for t in tracklets]), person), report

    (plain, plain_report), (raised, raised_report) = f1(False), f1(True)
    assert plain_report["threshold"] == pytest.approx(plain_report["calibration"].threshold)
    assert "consistency" not in plain_report
    assert raised_report["consistency"].startswith("raised")
    assert raised_report["threshold"] > plain_report["threshold"] + 0.05
    assert raised > plain + 0.1, (plain, raised)
