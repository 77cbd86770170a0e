"""Camera-aware pseudo-labels on tracklets: one label per tracklet, tracklets joined across cameras.

Why not DBSCAN on crops. A tracklet contributes tens of near-duplicate crops, so the k-reciprocal
neighbourhoods of its crops are filled by the tracklet itself and a crop from another camera never enters
them: the Jaccard distance across cameras is 1 and the pseudo-labels almost never cross a camera
(EPFL campus4: 35 clusters from 40 tracklets). Training on those labels teaches the model that one person
seen by two cameras is two people.

Here the units are tracklets (must-link), described by what the linker uses (:mod:`pipeline.identity.linker`):

1. per tracklet, the unit mean of its crops' features and the means of its even and odd crops in time
   (the calibration's same-person evidence), all centred on their camera (:mod:`reid.camera_centring`);
2. cannot-link: two tracklets of one camera whose frame spans overlap are two people;
3. the link threshold is calibrated on that evidence (:func:`reid.calibration.fit_threshold`, ``fraction``
   of the way from the strangers' median similarity to the halves' median);
4. constrained average-linkage agglomerative clustering (:func:`reid.agglomerative.constrained_agglomerative`)
   merges tracklets, across cameras and within one, while the linkage similarity is above the threshold;
5. every crop takes its tracklet's cluster; clusters with fewer than ``min_crops`` crops are outliers (-1).

Must-links beyond the tracklet (``links``): pairs of tracklets that evidence other than appearance shows to
be one person (the run's overlapping views, where two cameras see one person on one spot at once:
:mod:`pipeline.identity.ground`, passed by ``pipeline.adapt``) are merged before any appearance evidence
(:func:`reid.agglomerative.constrained_agglomerative`'s ``must_link``), unless a cannot-link forbids it.
These are exactly the cross-camera positives appearance misses (a person's front in one view and back in the
other), which the model must learn to bring together; without them the labels keep the views apart and
training teaches the model that one person seen by two cameras is two people.

Intra-camera association is the tracker's (tracklets), inter-camera association is the calibrated
clustering: the two stages of the camera-aware methods, with the run's own threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reid.agglomerative import constrained_agglomerative
from reid.calibration import DEFAULT_FRACTION, Calibration, fit_threshold
from reid.camera_centring import camera_sums, centre_by_camera, centre_finite_rows
from reid.handover import fit_handover
from reid.trainer.pseudo_labels import canonical_labels, crop_units

CAMERA_PRIOR = 10.0  # pseudo-tracklets shrinking a camera's mean towards zero, as the linker does


@dataclass(frozen=True)
class TrackletSet:
    """Crops grouped into tracklets, with the evidence the linker reads.

    Attributes:
        of_crop: (N,) int64 tracklet unit of each crop, 0..U-1. sizes: (U,) int64 crops per unit.
        means: (U, D) float32 unit means (camera-centred when asked).
        even, odd: (U, D) float32 unit means of the even and odd crops in frame order (NaN rows: one crop).
        head, tail: (U, D) float32 unit means of the first and second half in time (NaN rows: one crop).
        cameras: (U,) int64 camera of each unit. first, last: (U,) int64 frame span (-1: unknown).
    """

    of_crop: np.ndarray
    sizes: np.ndarray
    means: np.ndarray
    even: np.ndarray
    odd: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    cameras: np.ndarray
    first: np.ndarray
    last: np.ndarray

    def cannot_link(self) -> np.ndarray:
        """(U, U) bool: same camera and overlapping known frame spans (two people at once)."""
        known = self.first >= 0
        same = (self.cameras[:, None] == self.cameras[None, :]) & known[:, None] & known[None, :]
        overlap = (self.first[:, None] <= self.last[None, :]) & (self.first[None, :] <= self.last[:, None])
        out = same & overlap
        np.fill_diagonal(out, False)
        return out


def _unit_means(features: np.ndarray, units: np.ndarray, mask: np.ndarray, num: int) -> np.ndarray:
    """(num, D) unit-normalised means of the masked crops of each unit; NaN rows where a unit has none."""
    rows = np.flatnonzero(mask)
    member = sp.csr_matrix((np.ones(len(rows)), (units[rows], rows)), shape=(num, len(features)))
    sums = np.asarray(member @ features.astype(np.float64))
    norm = np.linalg.norm(sums, axis=1, keepdims=True)
    out = np.full(sums.shape, np.nan, np.float32)
    ok = norm[:, 0] > 1e-12
    out[ok] = sums[ok] / norm[ok]
    return out


def tracklet_set(
    features: np.ndarray, tracklets: np.ndarray, cameras: np.ndarray, frames: np.ndarray | None,
    center_cameras: bool = True,
) -> TrackletSet:  # fmt: skip
    """Group crop features into tracklet units (a crop without a tracklet, id -1, is its own unit).

    Args:
        features: (N, D) float crop features (rows are normalised here).
        tracklets: (N,) int64 tracklet id per crop, -1 = none. cameras: (N,) int64 camera per crop.
        frames: (N,) int64 frame index per crop (-1 unknown), or None: no spans, no cannot-link.
        center_cameras: centre the means (and halves) on their camera's mean over all units.
    """
    features = np.asarray(features, np.float32)
    n = len(features)
    if features.ndim != 2 or np.shape(tracklets) != (n,) or np.shape(cameras) != (n,):
        raise ValueError(
            f"features, tracklets, cameras: expected (N, D), (N,), (N,), got {features.shape}, "
            f"{np.shape(tracklets)}, {np.shape(cameras)}"
        )
    frames = np.full(n, -1, np.int64) if frames is None else np.asarray(frames, np.int64)
    if frames.shape != (n,):
        raise ValueError(f"frames: expected shape ({n},), got {frames.shape}")
    features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    units = crop_units(tracklets)
    num = int(units.max(initial=-1)) + 1
    order = np.lexsort((np.arange(n), frames, units))
    sizes = np.bincount(units, minlength=num)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - (np.cumsum(sizes) - sizes)[units[order]]
    everything = np.ones(n, bool)
    means = _unit_means(features, units, everything, num)
    halves = [_unit_means(features, units, m, num) for m in (rank % 2 == 0, rank % 2 == 1)]
    early = rank < (sizes[units] + 1) // 2
    split = [_unit_means(features, units, m, num) for m in (early, ~early)]
    for pair in (halves, split):
        single = sizes < 2
        pair[0][single] = pair[1][single] = np.nan
    unit_cams = np.zeros(num, np.int64)
    unit_cams[units] = cameras
    first = np.full(num, np.iinfo(np.int64).max)
    last = np.full(num, -1, np.int64)
    np.minimum.at(first, units, np.where(frames >= 0, frames, np.iinfo(np.int64).max))
    np.maximum.at(last, units, frames)
    first[last < 0] = -1
    if center_cameras:
        names = unit_cams.astype(str)
        sums, counts = camera_sums(means, names)
        means = centre_by_camera(means, names, sums, counts, CAMERA_PRIOR)
        halves = [centre_finite_rows(h, names, sums, counts, CAMERA_PRIOR) for h in halves]
        split = [centre_finite_rows(h, names, sums, counts, CAMERA_PRIOR) for h in split]
    return TrackletSet(units, sizes, means, halves[0], halves[1], split[0], split[1], unit_cams, first, last)


@dataclass(frozen=True)
class TrackletLabels:
    """Result of :func:`tracklet_pseudo_labels`.

    Attributes:
        labels: (N,) int64 crop labels 0..C-1, -1 = outlier. num_clusters, num_outliers: counts.
        calibration: the fitted threshold and its evidence. cross_camera: clusters spanning several cameras.
        merged: tracklet units that share their cluster with another unit.
        linked: must-link pairs given that joined two units (those a cannot-link forbids are dropped).
    """

    labels: np.ndarray
    num_clusters: int
    num_outliers: int
    calibration: Calibration
    cross_camera: int
    merged: int
    linked: int = 0


def link_units(ts: TrackletSet, tracklets: np.ndarray, links: np.ndarray | None) -> np.ndarray:
    """(L, 2) int64 unit pairs of the must-linked tracklet id pairs ``links`` (L, 2) whose tracklets both
    have crops here, are two units and no cannot-link keeps apart."""
    if links is None or not len(links):
        return np.zeros((0, 2), np.int64)
    links = np.asarray(links, np.int64)
    if links.ndim != 2 or links.shape[1] != 2:
        raise ValueError(f"links: expected (L, 2) tracklet id pairs, got shape {links.shape}")
    tracklets = np.asarray(tracklets, np.int64)
    ids, first = np.unique(tracklets, return_index=True)
    unit_of = dict(zip(ids.tolist(), ts.of_crop[first].tolist()))
    pairs = np.array([(unit_of[a], unit_of[b]) for a, b in links.tolist() if a >= 0 and b >= 0
                      and a in unit_of and b in unit_of], np.int64).reshape(-1, 2)  # fmt: skip
    if not len(pairs):
        return pairs
    ok = (pairs[:, 0] != pairs[:, 1]) & ~ts.cannot_link()[pairs[:, 0], pairs[:, 1]]
    return np.unique(np.sort(pairs[ok], axis=1), axis=0)


def cluster_tracklets(
    ts: TrackletSet, fraction: float = DEFAULT_FRACTION, times: tuple[np.ndarray, np.ndarray] | None = None,
    linked: np.ndarray | None = None,
) -> tuple[np.ndarray, Calibration]:  # fmt: skip
    """(U,) int64 cluster of each tracklet unit and the calibration whose threshold cut the clustering.
    ``times``: (U,) first and last seconds of each unit: the hand-over timing learned from them
    (:mod:`reid.handover`, as the linker) joins the similarities. ``linked``: (L, 2) unit pairs that are one
    person whatever their appearance (:func:`link_units`)."""
    calibration = fit_threshold(ts.means, ts.even, ts.odd, ts.cameras, ts.first, ts.last, fraction=fraction)
    means = ts.means.astype(np.float64)
    sims = means @ means.T
    dist = np.clip(1.0 - sims, 0.0, 2.0)
    if times is not None:
        cams = [str(c) for c in ts.cameras.tolist()]
        span = calibration.m_pos - calibration.m_neg
        timing = fit_handover(sims, cams, times[0], times[1], calibration.threshold, span)
        dist = dist - timing.bonus_matrix(cams, times[0], times[1])
    labels = constrained_agglomerative(dist, ts.cannot_link(), 1.0 - calibration.threshold, "average",
                                       must_link=linked)  # fmt: skip
    return labels.astype(np.int64), calibration


def tracklet_pseudo_labels(
    features: np.ndarray, tracklets: np.ndarray, cameras: np.ndarray, frames: np.ndarray | None, *,
    fraction: float = DEFAULT_FRACTION, min_crops: int = 4, center_cameras: bool = True,
    timestamps: np.ndarray | None = None, links: np.ndarray | None = None,
) -> TrackletLabels:  # fmt: skip
    """Pseudo-labels of N crops from their tracklets, joined across cameras (module docstring).

    Args:
        features: (N, D) crop features of the current model. tracklets, cameras, frames: see :func:`tracklet_set`.
        fraction: calibration position of the threshold between strangers and halves (higher: surer merges).
        min_crops: a cluster with fewer crops is left out of training (-1).
        timestamps: (N,) seconds of each crop on the cameras' shared clock: cross-camera similarities gain the
            hand-over timing learned from them (the linker's, :mod:`reid.handover`); None: none.
        links: (L, 2) tracklet id pairs that are one person (module docstring, "Must-links"); None: none.
    """
    if min_crops < 1:
        raise ValueError(f"min_crops: expected >= 1, got {min_crops}")
    ts = tracklet_set(features, tracklets, cameras, frames, center_cameras)
    times = None
    if timestamps is not None:
        stamps = np.asarray(timestamps, np.float64)
        if stamps.shape != (len(ts.of_crop),):
            raise ValueError(f"timestamps: expected shape ({len(ts.of_crop)},), got {stamps.shape}")
        first = np.full(len(ts.sizes), np.inf)
        last = np.full(len(ts.sizes), -np.inf)
        np.minimum.at(first, ts.of_crop, stamps)
        np.maximum.at(last, ts.of_crop, stamps)
        times = (first, last)
    linked = link_units(ts, tracklets, links)
    unit_labels, calibration = cluster_tracklets(ts, fraction, times, linked)
    num = int(unit_labels.max(initial=-1)) + 1
    crops = np.bincount(unit_labels, weights=ts.sizes, minlength=num)
    unit_labels = np.where(crops[unit_labels] >= min_crops, unit_labels, -1)
    labels = canonical_labels(unit_labels[ts.of_crop])
    kept = unit_labels[unit_labels >= 0]
    per_cluster = np.bincount(kept, minlength=num)
    pairs = np.unique(np.stack([unit_labels, ts.cameras], 1)[unit_labels >= 0], axis=0)
    cross = int((np.bincount(pairs[:, 0], minlength=num) > 1).sum()) if len(pairs) else 0
    num_clusters = int(labels.max(initial=-1)) + 1
    return TrackletLabels(labels, num_clusters, int((labels < 0).sum()), calibration, cross,
                          int((per_cluster[kept] > 1).sum()), len(linked))  # fmt: skip
