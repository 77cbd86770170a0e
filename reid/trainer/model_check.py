"""A label-free check of a ReID model on a deployment's own crops, from the run's own constraints.

No identity labels exist on harvested crops, but the video says three things for free (as in
:mod:`reid.calibration`): the first and second half of one tracklet are one person; two tracklets of one
camera active on a common frame are two people; across two cameras, a person seen by both should be each
other's best match. The check scores a model on those:

- ``separation``: the probability that a same-person pair (first vs second half in time of one tracklet)
  is more similar than a different-people pair (the cannot-link pairs; where a run has too few, pairs of
  tracklets of different cameras stand in). The halves are split in time, not interleaved, so pose and
  position change between them and the score does not saturate at 1 for any model.
- ``cross_camera``: for every two cameras, the mutual nearest-neighbour tracklet pairs whose similarity is
  above the calibrated link threshold (:func:`reid.calibration.fit_threshold` on this model's own
  evidence), divided by the tracklets of the smaller camera. A model that learned to tell cameras apart
  (one person seen by two cameras becomes two people) loses these links while keeping its separation.
- ``consistency``: one minus the share of tracklets that an *unconstrained* average-linkage clustering at
  that calibrated threshold puts in a cluster holding a cannot-link pair (two people seen at once). The
  constraints are held out here, so a model that merges different people (look-alikes, or everyone after
  training on over-merged pseudo-labels) shows it: on Market-1501's test tracklets 25 % of the tracklets
  sit in such clusters with OSNet x0.25 MSMT17, 44 % after training on over-merged labels, 5 % with the
  Market-supervised model.
- ``continuity``: where the crops carry their boxes and times, the share of *continuations* linked at that
  calibrated threshold. A continuation is a track of one camera that starts within :data:`CONTINUE_S` of
  another's end, within :data:`CONTINUE_HEIGHTS` of a box height of where it ended, each the other's nearest
  such track: mostly the tracker losing a person for a moment (an occlusion, a turn), so mostly one person
  before and after. A model that learned to tell apart the stretches of one person's walk (trained on labels
  that kept them in separate clusters) loses these while every other part rises: on EPFL campus4 a candidate
  trained with the overlapping views' must-links scored better on the other three parts, linked 33 % of the
  continuations instead of 48 %, and its next run split the 5 people into 10 identities.
- ``score``: the mean of the parts (without ``cross_camera`` when the crops come from one camera, without
  ``continuity`` when fewer than :data:`MIN_CONTINUATIONS` are found or the boxes carry no place).

All comparisons happen on camera-centred tracklet means (:mod:`reid.trainer.tracklet_labels`), the space the
linker links in. The score compares models *on the same crops*; its absolute value depends on the scene.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from reid.agglomerative import constrained_agglomerative
from reid.calibration import DEFAULT_FRACTION, MAX_PAIRS, MIN_PAIRS, fit_threshold
from reid.trainer.tracklet_labels import TrackletSet, tracklet_set

MAX_CLUSTERED = 4000  # tracklets clustered for ``consistency`` (dense U x U work: ~0.5 GB at this size)
CONTINUE_S = 3.0  # a continuation starts at most this long after the other track's end (or 0.5 s before)
CONTINUE_HEIGHTS = 0.5  # ... its first foot point within this many box heights of the other's last
MIN_CONTINUATIONS = 5  # fewer: no ``continuity`` part
DIGITS = 4  # decimals a recorded check keeps (``as_dict``)


@dataclass(frozen=True)
class ModelCheck:
    """The label-free check of one model (module docstring); ``score`` is the number to compare."""

    score: float
    separation: float
    cross_camera: float
    consistency: float
    threshold: float
    positives: int
    negatives: int
    tracklets: int
    continuity: float = float("nan")
    continuations: int = 0

    def row(self) -> dict[str, float]:
        """The columns a training epoch records in ``metrics.csv``."""
        return {"check": self.score, "separation": self.separation, "cross_camera": self.cross_camera,
                "consistency": self.consistency, "continuity": self.continuity,
                "link_threshold": self.threshold}  # fmt: skip

    def as_dict(self) -> dict[str, float | int]:
        """The fields, floats rounded to :data:`DIGITS` (what ``adapt.json`` and the trainer's record keep)."""
        return {k: (round(v, DIGITS) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def rank_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a positive beats a negative), ties counting half (the Mann-Whitney AUC); NaN when either is empty."""
    positives, negatives = np.asarray(positives, np.float64), np.sort(np.asarray(negatives, np.float64))
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    below = np.searchsorted(negatives, positives, side="left")
    ties = np.searchsorted(negatives, positives, side="right") - below
    return float(np.mean(below + 0.5 * ties) / len(negatives))


def _negative_pairs(ts: TrackletSet, cannot_link: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cannot-link pairs (i < j), else cross-camera pairs, at most ``MAX_PAIRS`` (a seeded sample)."""
    usable = np.isfinite(ts.means).all(axis=1)
    clash = np.triu(cannot_link & usable[:, None] & usable[None, :], 1)
    a, b = np.nonzero(clash)
    if len(a) < MIN_PAIRS:
        cross = np.triu((ts.cameras[:, None] != ts.cameras[None, :]) & usable[:, None] & usable[None, :], 1)
        a, b = np.nonzero(cross)
    if len(a) > MAX_PAIRS:
        pick = np.random.default_rng(seed).choice(len(a), MAX_PAIRS, replace=False)
        a, b = a[pick], b[pick]
    return a, b


def cross_camera_links(means: np.ndarray, cameras: np.ndarray, threshold: float) -> float:
    """Mutual nearest-neighbour pairs above ``threshold`` per camera pair, over the smaller camera's count.

    Args:
        means: (U, D) unit rows (NaN rows ignored). cameras: (U,) int64. threshold: cosine similarity.
    Returns:
        the rate in [0, 1]; NaN with fewer than two cameras.
    """
    usable = np.isfinite(means).all(axis=1)
    cams = np.unique(cameras[usable])
    links, possible = 0, 0
    for ia, ca in enumerate(cams):
        rows_a = np.flatnonzero(usable & (cameras == ca))
        for cb in cams[ia + 1 :]:
            rows_b = np.flatnonzero(usable & (cameras == cb))
            sims = means[rows_a] @ means[rows_b].T
            best_b, best_a = sims.argmax(axis=1), sims.argmax(axis=0)
            mutual = best_a[best_b] == np.arange(len(rows_a))
            links += int(np.count_nonzero(mutual & (sims[np.arange(len(rows_a)), best_b] >= threshold)))
            possible += min(len(rows_a), len(rows_b))
    return links / possible if possible else float("nan")


def conflict_share(means: np.ndarray, cannot_link: np.ndarray, threshold: float, seed: int = 0) -> float:
    """Share of tracklets whose cluster, in an unconstrained average-linkage clustering cut at ``threshold``,
    holds a cannot-link pair (at most ``MAX_CLUSTERED`` tracklets, a seeded sample, are clustered).

    Args:
        means: (U, D) unit rows (NaN rows ignored). cannot_link: (U, U) bool. threshold: cosine similarity.
    """
    rows = np.flatnonzero(np.isfinite(means).all(axis=1))
    if len(rows) > MAX_CLUSTERED:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_CLUSTERED, replace=False))
    if len(rows) < 2:
        return 0.0
    m = means[rows].astype(np.float64)
    dist = np.clip(1.0 - m @ m.T, 0.0, 2.0)
    labels = constrained_agglomerative(dist, np.zeros(dist.shape, bool), 1.0 - threshold, "average")
    a, b = np.nonzero(np.triu(cannot_link[np.ix_(rows, rows)], 1))
    bad = labels[a][labels[a] == labels[b]]
    return float(np.isin(labels, bad).mean())


def continuations(
    units: np.ndarray, cameras: np.ndarray, stamps: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) unit index pairs: unit b continues unit a in its camera (module docstring, ``continuity``).

    Args:
        units: (N,) int64 unit of each crop 0..U-1. cameras: (N,) int64. stamps: (N,) float seconds.
        boxes: (N, 4) float xyxy of each crop's box. A camera whose boxes all stand on one spot gives none.
    """
    num = int(units.max(initial=-1)) + 1
    order = np.lexsort((stamps, units))
    first_row = order[np.searchsorted(units[order], np.arange(num), side="left")]
    last_row = order[np.searchsorted(units[order], np.arange(num), side="right") - 1]
    foot = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]]).astype(np.float64)
    height = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0).astype(np.float64)
    out_a, out_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for cam in np.unique(cameras):
        if np.ptp(foot[cameras == cam], axis=0).max() <= 0:  # boxes that carry no place
            continue
        mine = np.flatnonzero(cameras[first_row] == cam)
        head, tail = first_row[mine], last_row[mine]
        t0, t1 = stamps[head], stamps[tail]
        gap = t0[None, :] - t1[:, None]  # [a, b]: b's start after a's end
        dist = np.linalg.norm(foot[head][None, :, :] - foot[tail][:, None, :], axis=2) / height[head][None, :]
        ok = (gap >= -0.5) & (gap <= CONTINUE_S) & (t0[None, :] > t0[:, None]) & (dist <= CONTINUE_HEIGHTS)
        dist = np.where(ok, dist, np.inf)
        a = np.flatnonzero(np.isfinite(dist).any(axis=1))
        b = dist[a].argmin(axis=1)
        mutual = dist[:, b].argmin(axis=0) == a
        out_a.append(mine[a[mutual]]), out_b.append(mine[b[mutual]])
    return np.concatenate(out_a), np.concatenate(out_b)


def model_check(
    features: np.ndarray, tracklets: np.ndarray, cameras: np.ndarray, frames: np.ndarray | None,
    fraction: float = DEFAULT_FRACTION, stamps: np.ndarray | None = None, boxes: np.ndarray | None = None,
) -> ModelCheck:  # fmt: skip
    """Score features of N harvested crops (a model's embeddings) on the run's own constraints.

    Args:
        features: (N, D) float crop features. tracklets: (N,) int64 tracklet id (-1 none). cameras: (N,)
            int64 camera. frames: (N,) int64 frame index or None (then cross-camera pairs are the negatives).
        fraction: the calibration position of the link threshold used for ``cross_camera``.
        stamps, boxes: (N,) seconds and (N, 4) xyxy boxes of the crops, or None: no ``continuity`` part.
    Raises:
        ValueError: no tracklet has two crops, or there are no two tracklets to contrast.
    """
    if not np.isfinite(features).all():
        raise ValueError("model check: expected finite features, got NaN or inf (a diverged model)")
    ts = tracklet_set(features, tracklets, cameras, frames, center_cameras=True)
    pos = np.sum(ts.head * ts.tail, axis=1)
    pos = pos[np.isfinite(pos)]
    cannot_link = ts.cannot_link()
    a, b = _negative_pairs(ts, cannot_link)
    neg = np.sum(ts.means[a] * ts.means[b], axis=1)
    if len(pos) < MIN_PAIRS or len(neg) < MIN_PAIRS:
        raise ValueError(
            f"model check: expected at least {MIN_PAIRS} tracklets of 2+ crops and {MIN_PAIRS} pairs of "
            f"tracklets to contrast, got {len(pos)} and {len(neg)} ({len(ts.sizes)} tracklets)"
        )
    separation = rank_auc(pos, neg)
    calibration = fit_threshold(ts.means, ts.even, ts.odd, ts.cameras, ts.first, ts.last, fraction=fraction)
    cross = cross_camera_links(ts.means, ts.cameras, calibration.threshold)
    consistency = 1.0 - conflict_share(ts.means, cannot_link, calibration.threshold)
    continuity, n_cont = float("nan"), 0
    if stamps is not None and boxes is not None:
        a, b = continuations(ts.of_crop, np.asarray(cameras, np.int64), np.asarray(stamps, np.float64),
                             np.asarray(boxes, np.float64))  # fmt: skip
        sims = np.sum(ts.means[a] * ts.means[b], axis=1)
        sims = sims[np.isfinite(sims)]
        n_cont = len(sims)
        if n_cont >= MIN_CONTINUATIONS:
            continuity = float(np.mean(sims >= calibration.threshold))
    parts = [separation, consistency] + [p for p in (cross, continuity) if not np.isnan(p)]
    return ModelCheck(float(np.mean(parts)), separation, float(cross), consistency, calibration.threshold,
                      len(pos), len(neg), len(ts.sizes), continuity, n_cont)  # fmt: skip
