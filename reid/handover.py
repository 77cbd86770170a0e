"""Learned hand-over timing: how soon after one camera loses a person another camera picks them up.

Cameras of one deployment have a geometry: adjacent views hand people over within a second or two,
overlapping views see them at the same time, distant ones minutes apart. A run shows its own geometry
without labels, and the linker uses it beside appearance (as multi-camera trackers use camera topology),
learned afresh on every run, so no transit time is written in a config.

The model. For two tracklets ``a``, ``b`` of different cameras the time relation is

    gap = max(first_a, first_b) - min(last_a, last_b)      (seconds; < 0: both seen at once for -gap s)

binned on fixed edges (:data:`EDGES_S`: overlap, hand-over, short and long absence). Among the run's
cross-camera pairs, those whose appearance already says "same person" (camera-centred similarity at or above
the link threshold) are the candidate links. A bin holding ``n`` pairs would hold ``expected = n * K / N``
of the ``K`` candidate links if timing carried nothing (``N`` pairs in all); it holds ``observed``. Its
likelihood ratio P(bin | link) / P(bin | pair) is estimated as

    LR(bin) = (observed + PSEUDO_LINKS) / (expected + PSEUDO_LINKS)

i.e. shrunk towards 1 by :data:`PSEUDO_LINKS` pseudo-links, so a bin needs several links more than chance
before it counts (one link among two pairs is not evidence), with ``|log LR|`` capped at :data:`MAX_LOG_LR`.
Each camera pair has its own ratio where it has links, shrunk the same way towards the pooled one (its
pseudo-links carry the pooled ratio). A cross-camera pair's similarity then
gains

    bonus = WEIGHT * (m_pos - m_neg) * log LR(bin)

i.e. :data:`WEIGHT` of the run's own similarity scale (strangers -> tracklet halves, :mod:`reid.calibration`)
per nat of timing evidence: a bin where candidate links are 7 times as common as pairs in general lifts a
pair by about a fifth of the scale, enough to carry a look-alike-free hand-over over the threshold, not
enough to link two strangers who happen to swap views. Same-camera pairs gain nothing (re-stitching has
its own motion rule, :func:`pipeline.identity.tracklets.implausible_motion`).

Assumptions: cameras share a clock (the pipeline's timestamps); the candidate links are mostly right
(a run whose threshold over-links everywhere learns a flat ratio, i.e. nothing); the geometry is stable over
the pairs it is fitted on. Where timestamps carry no geometry (e.g. clips laid end to end) both
distributions agree and the ratio stays near 1. With fewer than :data:`MIN_LINKS` candidate links the model is
off (every bonus 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

EDGES_S = np.array([-np.inf, -5.0, -2.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, np.inf])
PSEUDO_LINKS = 5.0  # candidate links a bin's ratio is shrunk by (towards 1, or a camera pair's towards the pool)
MAX_LOG_LR = float(np.log(10.0))
MIN_LINKS = 10
WEIGHT = 0.1  # share of the similarity scale (m_pos - m_neg) per nat of timing evidence
MAX_PAIRS = 400_000  # cross-camera pairs a fit reads at most (a seeded random subset beyond)


def time_gap(first_a: np.ndarray, last_a: np.ndarray, first_b: np.ndarray, last_b: np.ndarray) -> np.ndarray:
    """Seconds from the end of the earlier-ending tracklet to the start of the later-starting one
    (negative: the two were active together for that long); broadcasts."""
    return np.maximum(first_a, first_b) - np.minimum(last_a, last_b)


def _bins(gap: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(EDGES_S, gap, side="right") - 1, 0, len(EDGES_S) - 2)


@dataclass(frozen=True)
class Handover:
    """A fitted timing model (see the module docstring); :data:`NO_HANDOVER` adds nothing.

    Attributes:
        log_lr: (B,) pooled log likelihood ratio per gap bin.
        pair_log_lr: sorted camera pair -> (B,) its own ratio (shrunk towards the pool).
        scale: similarity per nat (``WEIGHT * (m_pos - m_neg)``).
        n_pairs, n_links: the cross-camera pairs and candidate links it was fitted on.
    """

    log_lr: np.ndarray
    pair_log_lr: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    scale: float = 0.0
    n_pairs: int = 0
    n_links: int = 0

    @property
    def active(self) -> bool:
        return self.scale > 0 and bool(np.any(self.log_lr != 0))

    def bonus(self, cams_a: Sequence[str], cams_b: Sequence[str], gap: np.ndarray) -> np.ndarray:
        """Similarity added to each pair ``(cams_a[i], cams_b[i])`` at ``gap[i]`` seconds; 0 within a camera."""
        gap = np.asarray(gap, np.float64)
        out = np.zeros(gap.shape, np.float64)
        if not self.active or gap.size == 0:
            return out
        bins = _bins(gap)
        for i, (a, b) in enumerate(zip(cams_a, cams_b)):
            if a != b:
                out.flat[i] = self.pair_log_lr.get(_pair(a, b), self.log_lr)[bins.flat[i]]
        return self.scale * out

    def bonus_matrix(self, cams: Sequence[str], first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """(N, N) bonus of every pair of N tracklets (0 on the diagonal and within a camera)."""
        n = len(cams)
        out = np.zeros((n, n), np.float64)
        if not self.active or n == 0:
            return out
        gap = time_gap(first[:, None], last[:, None], first[None, :], last[None, :])
        bins = _bins(gap)
        codes, cam_idx = np.unique(np.asarray(cams, dtype=object), return_inverse=True)
        for i in range(len(codes)):
            for j in range(i + 1, len(codes)):
                table = self.pair_log_lr.get(_pair(codes[i], codes[j]), self.log_lr)
                mask = (cam_idx[:, None] == i) & (cam_idx[None, :] == j)
                mask |= mask.T
                out[mask] = table[bins[mask]]
        return self.scale * out

    def describe(self) -> str:
        if not self.active:
            return f"hand-over timing off ({self.n_links} candidate links of {self.n_pairs} cross-camera pairs)"
        best = int(np.argmax(self.log_lr))
        lo, hi = EDGES_S[best], EDGES_S[best + 1]
        return (
            f"hand-over timing from {self.n_links} candidate links of {self.n_pairs} cross-camera pairs: "
            f"most likely gap {lo:g}..{hi:g} s (x{np.exp(self.log_lr[best]):.1f})"
        )


NO_HANDOVER = Handover(np.zeros(len(EDGES_S) - 1))


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def fit_handover(
    sims: np.ndarray,
    cams: Sequence[str],
    first: np.ndarray,
    last: np.ndarray,
    threshold: float,
    scale_span: float,
    seed: int = 0,
) -> Handover:
    """Fit the timing model on N tracklets.

    Args:
        sims: (N, N) similarity in the space the linker compares in (camera-centred unit means).
        cams: N camera ids. first, last: (N,) first and last timestamps (seconds, the shared clock).
        threshold: the link threshold (a pair at or above it is a candidate link).
        scale_span: the similarity scale ``m_pos - m_neg`` (the bonus is ``WEIGHT`` of it per nat).
    """
    n = len(cams)
    n_bins = len(EDGES_S) - 1
    if n < 2 or not np.isfinite(scale_span) or scale_span <= 0:
        return NO_HANDOVER
    codes, cam_idx = np.unique(np.asarray(cams, dtype=object), return_inverse=True)
    if len(codes) < 2:
        return NO_HANDOVER
    a, b = np.triu_indices(n, 1)
    keep = cam_idx[a] != cam_idx[b]
    a, b = a[keep], b[keep]
    if len(a) > MAX_PAIRS:
        pick = np.sort(np.random.default_rng(seed).choice(len(a), MAX_PAIRS, replace=False))
        a, b = a[pick], b[pick]
    s = sims[a, b]
    ok = np.isfinite(s)
    a, b, s = a[ok], b[ok], s[ok]
    bins = _bins(time_gap(first[a], last[a], first[b], last[b]))
    link = s >= threshold
    if np.count_nonzero(link) < MIN_LINKS:
        return Handover(np.zeros(n_bins), n_pairs=len(a), n_links=int(np.count_nonzero(link)))
    pooled = _log_ratio(bins, link, n_bins, None)
    pair_code = np.minimum(cam_idx[a], cam_idx[b]) * len(codes) + np.maximum(cam_idx[a], cam_idx[b])
    per_pair = {}
    for code in np.unique(pair_code):
        mine = pair_code == code
        if np.count_nonzero(link[mine]) == 0:
            continue
        i, j = divmod(int(code), len(codes))
        per_pair[_pair(str(codes[i]), str(codes[j]))] = _log_ratio(bins[mine], link[mine], n_bins, pooled)
    return Handover(pooled, per_pair, WEIGHT * float(scale_span), len(a), int(np.count_nonzero(link)))


def _log_ratio(bins: np.ndarray, link: np.ndarray, n_bins: int, prior: np.ndarray | None) -> np.ndarray:
    """Capped log of (links observed + PSEUDO_LINKS) / (links expected + PSEUDO_LINKS) per bin, the expected
    count being the bin's pairs times the overall link rate, scaled by ``prior``'s ratio when given."""
    pairs = np.bincount(bins, minlength=n_bins).astype(np.float64)
    links = np.bincount(bins[link], minlength=n_bins).astype(np.float64)
    prior_lr = np.ones(n_bins) if prior is None else np.exp(prior)
    expected = pairs * links.sum() / max(len(bins), 1)
    ratio = (links + PSEUDO_LINKS * prior_lr) / (expected + PSEUDO_LINKS)
    return np.clip(np.log(ratio), -MAX_LOG_LR, MAX_LOG_LR)
