"""Pseudo-labels from a distance matrix: DBSCAN, video constraints and SpCL's self-paced reliability.

- :func:`dbscan` clusters a precomputed (N, N) distance matrix (sklearn's semantics: ``min_samples``
  counts the point itself, or the points' weights; a border point joins the cluster of its *nearest*
  core neighbour, so the result does not depend on sample order).
- Video constraints (:func:`make_units`, :func:`cluster_units`): crops of one tracklet are must-link,
  two boxes of one camera in one frame are cannot-link. Must-link clusters *units* (a tracklet, or a
  crop without one) linked by :func:`tracklet_linkage`, which needs half of the crops of each within
  reach of the other: one close crop pair cannot merge two tracklets (it did when the distances inside
  tracklets were set to 0 before a crop-level DBSCAN, and people chained together). Cannot-link unit
  pairs get a distance above any eps; clusters still holding one are split (:func:`split_cannot_link`).
- :func:`self_paced_labels`: SpCL's reliability criterion with clusterings at a tight and a loose eps.

Labels are int64 arrays, clusters numbered 0..C-1 in order of their lowest sample index, -1 = outlier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

log = logging.getLogger(__name__)

CANNOT_LINK_DISTANCE = 2.0  # Jaccard distances lie in [0, 1]; any usable eps is below this.
_CHUNK = 2048
_BLOCK_ELEMENTS = 1 << 24  # elements of a dense float32 working block (64 MiB)


class NoClustersError(ValueError):
    """DBSCAN found no cluster at all: every sample is an outlier."""


@dataclass(frozen=True)
class PseudoLabels:
    """Result of one clustering round: ``labels`` (N,) int64, -1 = outlier; counts for the log."""

    labels: np.ndarray
    num_clusters: int
    num_outliers: int
    eps: float


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber non-negative labels 0..C-1 in order of each cluster's lowest index; -1 stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    keep = labels >= 0
    if not keep.any():
        return out
    _, first, inverse = np.unique(labels[keep], return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    out[keep] = rank[inverse.ravel()]
    return out


def _check_dist(dist: np.ndarray) -> None:
    if not isinstance(dist, np.ndarray) or dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist: expected a square (N, N) array, got {getattr(dist, 'shape', type(dist).__name__)}")


def dbscan(dist: np.ndarray, eps: float, min_samples: int, weights: np.ndarray | None = None) -> np.ndarray:
    """DBSCAN on a precomputed symmetric distance matrix.

    Args:
        dist: (N, N) float distances (diagonal treated as 0).
        eps: neighbourhood radius (``dist <= eps`` are neighbours).
        min_samples: neighbours (the point included) a core point needs; with ``weights``, the summed
            weight of the neighbours.
        weights: (N,) int64 weight per point (the crops a tracklet unit stands for), None = all 1.
    Returns:
        (N,) int64 labels, -1 for noise, clusters in canonical order.
    """
    _check_dist(dist)
    if min_samples < 1:
        raise ValueError(f"min_samples: expected >= 1, got {min_samples}")
    n = dist.shape[0]
    if weights is not None and np.shape(weights) != (n,):
        raise ValueError(f"weights: expected shape ({n},), got {np.shape(weights)}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        block = dist[start : start + _CHUNK] <= eps
        block[np.arange(len(block)), np.arange(start, start + len(block))] = True
        counts[start : start + len(block)] = block.sum(axis=1) if weights is None else block @ weights
    core = np.flatnonzero(counts >= min_samples)
    labels = np.full(n, -1, dtype=np.int64)
    if len(core) == 0:
        return labels
    edges = []  # core-core neighbour pairs, by row blocks to bound memory on large N
    for start in range(0, len(core), _CHUNK):
        block_rows, block_cols = np.nonzero(dist[np.ix_(core[start : start + _CHUNK], core)] <= eps)
        edges.append((block_rows + start, block_cols))
    rows, cols = np.concatenate([e[0] for e in edges]), np.concatenate([e[1] for e in edges])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(len(core), len(core)))
    _, components = connected_components(graph, directed=False)
    labels[core] = components
    others = np.setdiff1d(np.arange(n), core)
    for start in range(0, len(others), _CHUNK):
        idx = others[start : start + _CHUNK]
        block = dist[np.ix_(idx, core)]
        nearest = block.argmin(axis=1)
        near_enough = block[np.arange(len(idx)), nearest] <= eps
        labels[idx[near_enough]] = components[nearest[near_enough]]
    return canonical_labels(labels)


def pairs_within_groups(keys: np.ndarray) -> np.ndarray:
    """All index pairs (i < j) whose ``keys`` are equal and non-negative.

    Args:
        keys: (N,) int64 group key per sample, -1 = no group.
    Returns:
        (P, 2) int64 pairs, sorted.
    """
    keys = np.asarray(keys, dtype=np.int64)
    idx = np.flatnonzero(keys >= 0)
    idx = idx[np.argsort(keys[idx], kind="stable")]
    _, starts, sizes = np.unique(keys[idx], return_index=True, return_counts=True)
    pairs = []
    for size in np.unique(sizes[sizes > 1]):
        members = idx[starts[sizes == size][:, None] + np.arange(size)[None, :]]  # (G, size)
        a, b = np.triu_indices(size, k=1)
        pairs.append(np.stack([members[:, a].ravel(), members[:, b].ravel()], axis=1))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    out = np.sort(np.concatenate(pairs), axis=1)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def cannot_link_pairs(camera_ids: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
    """Pairs of samples seen by one camera in one frame (two boxes there are two people).

    Args:
        camera_ids: (N,) int64 camera index per crop.
        frame_indices: (N,) int64 frame index per crop (-1 = unknown, never paired).
    Returns:
        (P, 2) int64 pairs (i < j).
    """
    camera_ids = np.asarray(camera_ids, dtype=np.int64)
    frame_indices = np.asarray(frame_indices, dtype=np.int64)
    if camera_ids.shape != frame_indices.shape:
        raise ValueError(
            f"camera_ids, frame_indices: expected equal shapes, got {camera_ids.shape}, {frame_indices.shape}"
        )
    known = frame_indices >= 0
    _, keys = np.unique(np.stack([camera_ids, frame_indices], axis=1), axis=0, return_inverse=True)
    return pairs_within_groups(np.where(known, keys.ravel(), -1))


def crop_units(tracklets: np.ndarray) -> np.ndarray:
    """The clustering unit of each crop: crops of one tracklet (id >= 0) share one, any other crop is its own.

    Args:
        tracklets: (N,) int64 tracklet id per crop, -1 = none.
    Returns:
        (N,) int64 unit ids 0..U-1, numbered in order of each unit's first crop.
    """
    tracklets = np.asarray(tracklets, dtype=np.int64)
    if tracklets.ndim != 1:
        raise ValueError(f"tracklets: expected a (N,) array, got shape {tracklets.shape}")
    keys = np.where(tracklets >= 0, tracklets, -1 - np.arange(len(tracklets)))
    return canonical_labels(np.unique(keys, return_inverse=True)[1].ravel())


def tracklet_linkage(dist: np.ndarray, units: np.ndarray, quantile: float = 0.5) -> np.ndarray:
    """Distance of every two units from the distances of their crops.

    One way, A -> B is the ``quantile`` (lower) over the crops of A of their distance to the nearest crop
    of B; the linkage is the larger of A -> B and B -> A. With the default median, A and B are within eps
    only when at least half of the crops of each (rounded up) have a crop of the other within eps, so one
    close crop pair cannot link two tracklets. ``quantile=0`` is single linkage (any one pair links),
    which is what setting the distances inside tracklets to 0 before a crop-level DBSCAN amounts to.

    Args:
        dist: (N, N) float crop distances. units: (N,) int64 unit of each crop, 0..U-1 (:func:`crop_units`).
        quantile: in [0, 1].
    Returns:
        (U, U) float32, symmetric, 0 on the diagonal.
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile: expected a value in [0, 1], got {quantile}")
    n = dist.shape[0]
    order = np.argsort(units, kind="stable")
    sizes = np.bincount(units)
    starts = np.cumsum(sizes) - sizes
    nearest = np.empty((n, len(sizes)), dtype=np.float32)  # row r: crop order[r]; column: unit
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for s in range(0, n, step):
        nearest[s : s + step] = np.minimum.reduceat(dist[np.ix_(order[s : s + step], order)], starts, axis=1)
    linkage = np.empty((len(sizes), len(sizes)), dtype=np.float32)
    for size in np.unique(sizes):  # all units of one size at once: (G, size, U)
        group = np.flatnonzero(sizes == size)
        rank = int(np.floor((size - 1) * quantile))
        rows = nearest[starts[group][:, None] + np.arange(size)]
        linkage[group] = np.partition(rows, rank, axis=1)[:, rank]
    linkage = np.maximum(linkage, linkage.T)
    np.fill_diagonal(linkage, 0.0)
    return linkage


@dataclass(frozen=True)
class ClusterUnits:
    """What DBSCAN clusters, with the video constraints built in (see :func:`make_units`).

    Attributes:
        of_crop: (N,) int64 unit of each crop, 0..U-1.
        dist: (U, U) float32 unit distances, cannot-link pairs at :data:`CANNOT_LINK_DISTANCE`.
        weights: (U,) int64 crops per unit (they count towards ``min_samples``), None = one crop each.
        cannot_link: (P, 2) int64 cannot-link unit pairs (i < j).
    """

    of_crop: np.ndarray
    dist: np.ndarray
    weights: np.ndarray | None
    cannot_link: np.ndarray


def make_units(
    dist: np.ndarray,
    tracklets: np.ndarray | None = None,
    cannot_link: np.ndarray | None = None,
    quantile: float = 0.5,
) -> ClusterUnits:
    """Units to cluster: tracklets (must-link) when ``tracklets`` is given, else single crops.

    Args:
        dist: (N, N) float32 crop distances. When every unit is one crop it *is* the units' matrix and
            the cannot-link pairs are written into it in place (it can be large: no copy is made).
        tracklets: (N,) int64 tracklet id per crop (-1 = none) or None: must-link off.
        cannot_link: (P, 2) int64 crop pairs or None: cannot-link off.
        quantile: of :func:`tracklet_linkage`.
    """
    _check_dist(dist)
    n = dist.shape[0]
    of_crop = np.arange(n, dtype=np.int64) if tracklets is None else crop_units(tracklets)
    if len(of_crop) != n:
        raise ValueError(f"tracklets: expected shape ({n},), got {np.shape(tracklets)}")
    grouped = of_crop.max(initial=-1) + 1 < n
    unit_dist = tracklet_linkage(dist, of_crop, quantile) if grouped else dist
    pairs = np.zeros((0, 2), dtype=np.int64)
    if cannot_link is not None:
        pairs = np.sort(of_crop[np.asarray(cannot_link, dtype=np.int64).reshape(-1, 2)], axis=1)
        inside = pairs[:, 0] == pairs[:, 1]
        if inside.any():
            log.warning("%d cannot-link pairs lie inside one tracklet: ignored", int(inside.sum()))
        pairs = np.unique(pairs[~inside], axis=0).reshape(-1, 2)
    unit_dist[pairs[:, 0], pairs[:, 1]] = CANNOT_LINK_DISTANCE
    unit_dist[pairs[:, 1], pairs[:, 0]] = CANNOT_LINK_DISTANCE
    return ClusterUnits(of_crop, unit_dist, np.bincount(of_crop) if grouped else None, pairs)


def split_cannot_link(labels: np.ndarray, dist: np.ndarray, cannot_link: np.ndarray) -> np.ndarray:
    """Split every cluster that holds a cannot-link pair into conflict-free parts.

    Within a conflicting cluster the points of the conflicting pairs are seeds, placed in order into the
    nearest existing part (mean distance) holding no cannot-link partner, else into a new part; the other
    members join the part of seeds they are nearest to on average.

    Args:
        labels: (N,) int64, -1 = outlier. dist: (N, N) float distances. cannot_link: (P, 2) int64 pairs.
    Returns:
        (N,) int64 canonical labels.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    cannot_link = np.asarray(cannot_link, dtype=np.int64).reshape(-1, 2)
    la, lb = labels[cannot_link[:, 0]], labels[cannot_link[:, 1]]
    conflicts = cannot_link[(la == lb) & (la >= 0)]
    next_label = labels.max(initial=-1) + 1
    for cluster in np.unique(labels[conflicts[:, 0]]):
        members = np.flatnonzero(labels == cluster)
        parts = _split_cluster(members, dist, conflicts[labels[conflicts[:, 0]] == cluster])
        moved = parts > 0
        labels[members[moved]] = next_label + parts[moved] - 1
        next_label += parts.max()
    return canonical_labels(labels)


def _split_cluster(members: np.ndarray, dist: np.ndarray, conflicts: np.ndarray) -> np.ndarray:
    """Part index (0 = stays) of each member of one cluster; see :func:`split_cannot_link`."""
    sub = dist[np.ix_(members, members)].astype(np.float64)
    position = np.searchsorted(members, conflicts)  # members is sorted (flatnonzero)
    banned = np.zeros((len(members), len(members)), dtype=bool)
    banned[position[:, 0], position[:, 1]] = banned[position[:, 1], position[:, 0]] = True
    seeds = np.unique(position)
    part_of = np.full(len(members), -1, dtype=np.int64)
    for seed in seeds:
        placed = np.flatnonzero(part_of >= 0)
        best, best_d = -1, np.inf
        for part in np.unique(part_of[placed]):
            group = placed[part_of[placed] == part]
            if banned[seed, group].any():
                continue
            d = sub[seed, group].mean()
            if d < best_d:
                best, best_d = part, d
        part_of[seed] = best if best >= 0 else part_of.max() + 1
    rest = np.flatnonzero(part_of < 0)
    if len(rest):
        seed_parts = part_of[seeds]
        per_part = np.stack(
            [sub[np.ix_(rest, seeds[seed_parts == p])].mean(axis=1) for p in range(part_of.max() + 1)], axis=1
        )
        part_of[rest] = per_part.argmin(axis=1)
    return part_of


def cluster_units(units: ClusterUnits, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN on the units (a unit's crops count towards ``min_samples``), the cannot-link split, then
    every crop takes its unit's label: one label per tracklet.

    Returns:
        (N,) int64 canonical labels, -1 = outlier.
    """
    labels = dbscan(units.dist, eps, min_samples, units.weights)
    if len(units.cannot_link):
        labels = split_cannot_link(labels, units.dist, units.cannot_link)
    return canonical_labels(labels[units.of_crop])


def cluster_pseudo_labels(units: ClusterUnits, eps: float, min_samples: int) -> PseudoLabels:
    """:func:`cluster_units` with counts for the log.

    Raises:
        NoClustersError: every crop is an outlier; the message names eps and what to try.
    """
    labels = cluster_units(units, eps, min_samples)
    num_clusters = int(labels.max(initial=-1)) + 1
    if num_clusters == 0:
        raise NoClustersError(_no_cluster_message(units, eps, min_samples))
    return PseudoLabels(labels, num_clusters, int((labels < 0).sum()), float(eps))


def _no_cluster_message(units: ClusterUnits, eps: float, min_samples: int) -> str:
    dist, num_units = units.dist, len(units.dist)
    what = "samples" if units.weights is None else f"crops ({num_units} tracklet units)"
    hint = "there is a single unit"
    if num_units > 1:
        kth = min(max(min_samples - 1, 1), num_units - 1)
        off = dist + np.diag(np.full(num_units, np.inf, dtype=dist.dtype))
        radius = float(np.median(np.partition(off, kth - 1, axis=1)[:, kth - 1]))
        hint = f"the median distance to the {kth}-th nearest neighbour is {radius:.3f}"
    return (
        f"DBSCAN found no cluster among {len(units.of_crop)} {what} with eps={eps:g} and min_samples="
        f"{min_samples}: every sample is an outlier ({hint}). Try a larger --eps "
        f"(e.g. {min(eps + 0.1, 1.0):g}) or a smaller --min-samples, start from better weights (--init), "
        "or add more crops per person."
    )


def singleton_slots(labels: np.ndarray) -> np.ndarray:
    """Give every outlier (-1) its own label after the clusters: (N,) int64 labels all >= 0."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    outliers = labels < 0
    labels[outliers] = labels.max(initial=-1) + 1 + np.arange(int(outliers.sum()))
    return labels


def _iou_with(labels: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(N,) IoU of each sample's cluster under ``labels`` and under ``other`` (both without -1)."""
    _, joint_inv, joint_n = np.unique(np.stack([labels, other], 1), axis=0, return_inverse=True, return_counts=True)
    inter = joint_n[joint_inv.ravel()]
    size_a = np.bincount(labels)[labels]
    size_b = np.bincount(other)[other]
    return inter / (size_a + size_b - inter)


def self_paced_labels(
    labels: np.ndarray,
    labels_tight: np.ndarray,
    labels_loose: np.ndarray,
    indep_threshold: float | None = None,
) -> tuple[np.ndarray, int, float]:
    """SpCL's self-paced reliability: keep reliable clusters, make the rest un-clustered instances.

    With outliers as singletons, ``R_comp(i) = 1 - IoU(C(i), C_tight(i))`` and
    ``R_indep(i) = 1 - IoU(C(i), C_loose(i))``. A cluster is independent enough when the minimum of
    ``R_indep`` over its members is <= ``indep_threshold`` (default: the 90th percentile of that score
    over the non-singleton clusters, which the caller keeps from the first epoch); a member is compact
    enough when its ``R_comp`` equals the minimum in its cluster. Everything else becomes an
    un-clustered instance.

    Args:
        labels, labels_tight, labels_loose: (N,) int64 DBSCAN labels at eps, eps - gap, eps + gap.
        indep_threshold: the fixed threshold, or None to compute it.
    Returns:
        slots (N,) int64 (clusters 0..C-1 first, then one slot per un-clustered instance), C, threshold.
    """
    base = singleton_slots(labels)
    r_comp = 1.0 - _iou_with(base, singleton_slots(labels_tight))
    r_indep = 1.0 - _iou_with(base, singleton_slots(labels_loose))
    num = base.max() + 1
    cluster_indep = np.full(num, np.inf)
    np.minimum.at(cluster_indep, base, r_indep)
    cluster_comp = np.full(num, np.inf)
    np.minimum.at(cluster_comp, base, r_comp)
    sizes = np.bincount(base, minlength=num)
    if indep_threshold is None:
        scores = np.sort(cluster_indep[sizes > 1])
        indep_threshold = float(scores[min(len(scores) - 1, round(len(scores) * 0.9))]) if len(scores) else 0.0
    keep = (cluster_indep[base] <= indep_threshold + 1e-9) & (r_comp <= cluster_comp[base] + 1e-9)
    kept = np.where(keep, base, -1)
    # A cluster left with one member is an un-clustered instance, not a cluster.
    counts = np.bincount(kept[kept >= 0], minlength=num)
    kept[(kept >= 0) & (counts[np.maximum(kept, 0)] < 2)] = -1
    kept = canonical_labels(kept)
    num_clusters = int(kept.max(initial=-1)) + 1
    return singleton_slots(kept), num_clusters, float(indep_threshold)
