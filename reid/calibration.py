"""Self-calibrated link threshold: where "same person" starts, read off the run's own evidence.

A cosine threshold belongs to one embedder and one deployment, so none is written in a config. The video
carries its own labels, for free:

- **same person**: the two halves of one tracklet (its even and its odd embedded crops) are one person;
- **different people**: two tracklets of one camera active on a common frame are two people (the
  cannot-link pairs). Where a run has too few of those, pairs of tracklets of *different* cameras stand in
  for them, and failing those any two tracklets, since most such pairs are different people (their median
  barely moves with a few matches).

The model. In the space the linker compares in (camera-centred unit means, see :mod:`pipeline.identity.linker`),
let ``m_neg`` be the median similarity of the different-people pairs and ``m_pos`` the median similarity
of the tracklet halves. The link threshold is

    threshold = m_neg + fraction * (m_pos - m_neg)        (fraction = 0.6 by default)

i.e. a fixed position on the run's own scale from "strangers" to "one tracklet with itself". Medians make
the two anchors robust to the minority of mislabelled pairs (a same-person pair among the stand-in
negatives, an identity switch inside a tracklet). Assumptions: the halves of a tracklet are closer than
two sightings of one person in different cameras (so the threshold must sit below ``m_pos``, which the
fraction < 1 does), and strangers are, on the median, as far apart across cameras as within one.

Why a position and not a posterior. A pairwise P(same | s) from the two distributions was measured on
Market-1501 tracklets: it crosses 0.5 near cosine 0.78 (OSNet x0.25 MSMT17, camera-centred), where
average-linkage clustering has lost most same-person links (IDF1 0.45); the IDF1-best threshold of the
clustering is near 0.52, where the pairwise posterior is about 0.06 but the posterior that a tracklet's
*best* candidate is right is about 0.5. The position rule lands there for every embedder we measured
(see ``benchmarks/market_tracklets.py``); ``fraction`` is the one knob (higher: fewer, surer links).

Which halves. Interleaved crops (kept) were measured against alternating one-second blocks and against a
tracklet's first vs latest two seconds, all at fraction 0.6 (IDF1; 2026-12-01, see the closing note of
issue 10). Interleaved crops were best or tied on Market-1501 tracklets (offline 0.602 / 0.846 for the
MSMT17 / Market-supervised OSNet, vs 0.589 / 0.808 and 0.449 / 0.702) and on the PETS virtual-camera split
(online 0.638 vs 0.628 and 0.552). Start-vs-end halves were better on the single PETS view (online 0.810 vs
0.792) and on EPFL campus4 (9 identities vs 11 for 5 people): their lower same-person anchor lowers the
threshold, which suits those scenes and over-merges the others.

Too little evidence (fewer than ``min_pairs`` pairs of a kind, e.g. the first seconds of a run) falls back
to a documented prior for that kind: strangers at 0 and halves at 0.85 in the camera-centred space
(threshold 0.51 at the default fraction when both are missing); with measured strangers but no halves yet,
the halves are put halfway from the strangers to 1 (at least at 0.85), a cautious guess for any embedder.
The fallback is logged.

Offline, the position is a floor: :mod:`reid.consistency` raises the threshold where people of different
cameras look more alike than these two anchors can see (both anchors come from one camera at a time).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

PRIOR_NEGATIVE = 0.0  # median stranger similarity in the camera-centred space (centred features are ~orthogonal)
PRIOR_POSITIVE = 0.85  # median tracklet-halves similarity of learned ReID models there
DEFAULT_FRACTION = 0.6
MIN_PAIRS = 3
MAX_PAIRS = 50_000  # pairs of a kind used at most (a random subset beyond): a fit takes milliseconds


@dataclass(frozen=True)
class Calibration:
    """A fitted link threshold and the evidence behind it.

    Attributes:
        threshold: cosine similarity from which two tracklets (or a tracklet and an identity) link.
        m_neg, m_pos: median similarity of the different-people pairs and of the tracklet halves.
        n_neg, n_pos: how many pairs each median is taken over (0 when the prior stands in).
        negatives: "cannot-link", "cross-camera" (stand-ins) or "prior"; positives: "halves" or "prior".
    """

    threshold: float
    m_neg: float
    m_pos: float
    n_neg: int
    n_pos: int
    negatives: str
    positives: str

    @property
    def from_prior(self) -> bool:
        return self.negatives == "prior" or self.positives == "prior"

    def describe(self) -> str:
        return (
            f"threshold {self.threshold:.3f} (strangers {self.m_neg:.3f} from {self.n_neg} {self.negatives} pairs, "
            f"same person {self.m_pos:.3f} from {self.n_pos} {self.positives} pairs)"
        )


def fit_threshold(
    means: np.ndarray,
    halves_a: np.ndarray,
    halves_b: np.ndarray,
    cameras: Sequence[str] | np.ndarray,
    first_frame: np.ndarray,
    last_frame: np.ndarray,
    *,
    fraction: float = DEFAULT_FRACTION,
    min_pairs: int = MIN_PAIRS,
    seed: int = 0,
) -> Calibration:
    """Fit the threshold on N tracklets (module docstring).

    Args:
        means: (N, D) unit mean embeddings, in the space the linker compares (already camera-centred).
        halves_a, halves_b: (N, D) unit means of each tracklet's even and odd crops, same space; rows with
            a NaN (tracklets of one crop) give no positive pair.
        cameras: (N,) camera of each tracklet. first_frame, last_frame: (N,) its frame span.
        fraction: position of the threshold between the two medians, in (0, 1).
        min_pairs: fewer pairs of a kind than this and the prior stands in for that kind.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: expected a number in (0, 1), got {fraction}")
    means = np.asarray(means, np.float64)
    n = len(means)
    for name, arr in (("halves_a", halves_a), ("halves_b", halves_b)):
        if np.shape(arr) != means.shape:
            raise ValueError(f"{name}: expected shape {means.shape} like means, got {np.shape(arr)}")
    if not (len(cameras) == len(first_frame) == len(last_frame) == n):
        raise ValueError(f"cameras, first_frame, last_frame: expected {n} entries each like means")
    usable = np.isfinite(means).all(axis=1) if n else np.zeros(0, bool)
    pos = np.sum(np.asarray(halves_a, np.float64) * np.asarray(halves_b, np.float64), axis=1)
    pos = pos[np.isfinite(pos) & usable]
    neg, neg_kind = _negative_similarities(
        means[usable], np.asarray(cameras)[usable], np.asarray(first_frame)[usable],
        np.asarray(last_frame)[usable], min_pairs, seed,
    )  # fmt: skip
    m_neg, n_neg = (float(np.median(neg)), len(neg)) if neg_kind != "prior" else (PRIOR_NEGATIVE, 0)
    if len(pos) >= min_pairs:
        m_pos, n_pos, pos_kind = float(np.median(pos)), len(pos), "halves"
    else:
        m_pos, n_pos, pos_kind = max(PRIOR_POSITIVE, (1.0 + m_neg) / 2), 0, "prior"

    if m_pos <= m_neg:  # an embedder that separates nothing: the prior scale is the safer guess
        log.warning(
            "calibration: tracklet halves (%.3f) are no closer than strangers (%.3f); using the prior scale",
            m_pos,
            m_neg,
        )
        m_neg, m_pos, n_neg, n_pos, neg_kind, pos_kind = PRIOR_NEGATIVE, PRIOR_POSITIVE, 0, 0, "prior", "prior"
    threshold = m_neg + fraction * (m_pos - m_neg)
    return Calibration(float(threshold), m_neg, m_pos, n_neg, n_pos, neg_kind, pos_kind)


def prior_calibration(fraction: float = DEFAULT_FRACTION) -> Calibration:
    """The fallback used before any evidence exists."""
    threshold = PRIOR_NEGATIVE + fraction * (PRIOR_POSITIVE - PRIOR_NEGATIVE)
    return Calibration(threshold, PRIOR_NEGATIVE, PRIOR_POSITIVE, 0, 0, "prior", "prior")


def _negative_similarities(
    means: np.ndarray, cams: np.ndarray, first: np.ndarray, last: np.ndarray, min_pairs: int, seed: int
) -> tuple[np.ndarray, str]:
    """Similarities of cannot-link pairs, else of cross-camera pairs, else of any two tracklets (stand-ins,
    a random sample of at most ``MAX_PAIRS``), else nothing ("prior")."""
    n = len(means)
    if n < 2:
        return np.zeros(0), "prior"
    pairs = []
    for cam in np.unique(cams):  # cannot-links live inside one camera: per-camera blocks, not all N^2 pairs
        idx = np.flatnonzero(cams == cam)
        i, j = np.triu_indices(len(idx), 1)
        clash = (first[idx[i]] <= last[idx[j]]) & (first[idx[j]] <= last[idx[i]])
        pairs.append(np.stack([idx[i[clash]], idx[j[clash]]]))
    a, b = np.concatenate(pairs, axis=1)
    rng = np.random.default_rng(seed)
    if len(a) >= min_pairs:
        if len(a) > MAX_PAIRS:
            pick = rng.choice(len(a), MAX_PAIRS, replace=False)
            a, b = a[pick], b[pick]
        return np.sum(means[a] * means[b], axis=1), "cannot-link"
    if n * (n - 1) // 2 <= MAX_PAIRS:
        a, b = np.triu_indices(n, 1)
    else:
        a, b = rng.integers(0, n, MAX_PAIRS), rng.integers(0, n, MAX_PAIRS)
        keep = a != b
        a, b = a[keep], b[keep]
    cross = cams[a] != cams[b]
    for mask, kind in ((cross, "cross-camera"), (np.ones_like(cross), "any-two")):
        if mask.sum() >= min_pairs:
            return np.sum(means[a[mask]] * means[b[mask]], axis=1), kind
    return np.zeros(0), "prior"
