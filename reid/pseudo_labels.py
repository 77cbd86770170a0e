"""Pseudo-labels from a distance matrix: DBSCAN, video constraints and SpCL's self-paced reliability.

- :func:`dbscan` clusters a precomputed (N, N) distance matrix (sklearn's semantics: ``min_samples``
  counts the point itself; a non-core point within ``eps`` of a core point is a border point and joins
  the cluster of its *nearest* core neighbour, which makes the result independent of sample order).
- Video constraints from harvested crops (:func:`apply_constraints`, :func:`enforce_must_link`,
  :func:`split_cannot_link`): crops of one tracklet are must-link (distance 0 before clustering, then one
  label per tracklet by majority vote), two boxes of one camera in one frame are cannot-link (distance
  raised above any eps before clustering, then clusters still holding such a pair are split).
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


def dbscan(dist: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN on a precomputed symmetric distance matrix.

    Args:
        dist: (N, N) float distances (diagonal treated as 0).
        eps: neighbourhood radius (``dist <= eps`` are neighbours).
        min_samples: neighbours (the point included) a core point needs.
    Returns:
        (N,) int64 labels, -1 for noise, clusters in canonical order.
    """
    _check_dist(dist)
    if min_samples < 1:
        raise ValueError(f"min_samples: expected >= 1, got {min_samples}")
    n = dist.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        block = dist[start : start + _CHUNK] <= eps
        block[np.arange(len(block)), np.arange(start, start + len(block))] = True
        counts[start : start + len(block)] = block.sum(axis=1)
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


def apply_constraints(dist: np.ndarray, tracklets: np.ndarray | None, cannot_link: np.ndarray | None) -> None:
    """Write the constraints into ``dist`` in place (it can be large: no copy is made).

    Args:
        dist: (N, N) float32 distance matrix.
        tracklets: (N,) int64 tracklet id per crop (-1 = none) or None: must-link pairs get distance 0.
        cannot_link: (P, 2) int64 pairs or None: they get :data:`CANNOT_LINK_DISTANCE`.
    """
    _check_dist(dist)
    if tracklets is not None:
        pairs = pairs_within_groups(tracklets)
        dist[pairs[:, 0], pairs[:, 1]] = 0.0
        dist[pairs[:, 1], pairs[:, 0]] = 0.0
    if cannot_link is not None and len(cannot_link):
        dist[cannot_link[:, 0], cannot_link[:, 1]] = CANNOT_LINK_DISTANCE
        dist[cannot_link[:, 1], cannot_link[:, 0]] = CANNOT_LINK_DISTANCE


def enforce_must_link(labels: np.ndarray, tracklets: np.ndarray) -> np.ndarray:
    """One label per tracklet: the majority cluster of its members; an all-outlier tracklet of two or
    more crops becomes a new cluster of its own. Crops with tracklet -1 keep their label.

    Args:
        labels: (N,) int64, -1 = outlier. tracklets: (N,) int64, -1 = none.
    Returns:
        (N,) int64 canonical labels.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    tracklets = np.asarray(tracklets, dtype=np.int64)
    has = tracklets >= 0
    if not has.any():
        return canonical_labels(labels)
    tids, t_inv = np.unique(tracklets[has], return_inverse=True)
    t_inv = t_inv.ravel()
    # Majority vote: count (tracklet, label) pairs over clustered members.
    clustered = labels[has] >= 0
    pair_t, pair_l = t_inv[clustered], labels[has][clustered]
    voted = np.full(len(tids), -1, dtype=np.int64)
    if len(pair_t):
        pairs, votes = np.unique(np.stack([pair_t, pair_l], axis=1), axis=0, return_counts=True)
        order = np.lexsort((pairs[:, 1], -votes, pairs[:, 0]))  # per tracklet: most votes, then lowest label
        best = pairs[order]
        first = np.unique(best[:, 0], return_index=True)[1]
        voted[best[first, 0]] = best[first, 1]
    sizes = np.bincount(t_inv, minlength=len(tids))
    fresh = np.flatnonzero((voted < 0) & (sizes >= 2))
    voted[fresh] = labels.max(initial=-1) + 1 + np.arange(len(fresh))
    labels[has] = voted[t_inv]
    return canonical_labels(labels)


def split_cannot_link(
    labels: np.ndarray, dist: np.ndarray, cannot_link: np.ndarray, tracklets: np.ndarray | None = None
) -> np.ndarray:
    """Split every cluster that holds a cannot-link pair into conflict-free parts.

    Units are tracklets (when given) or single crops. Within a conflicting cluster the units of the
    conflicting pairs are seeds, placed in order into the nearest existing part (mean distance) holding
    no cannot-link partner, else into a new part; the other units join their nearest part.

    Args:
        labels: (N,) int64, -1 = outlier. dist: (N, N) float distances (with constraints applied or not).
        cannot_link: (P, 2) int64 pairs. tracklets: (N,) int64 or None.
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
        parts = _split_cluster(members, dist, conflicts[labels[conflicts[:, 0]] == cluster], tracklets)
        moved = parts > 0
        labels[members[moved]] = next_label + parts[moved] - 1
        next_label += parts.max()
    return canonical_labels(labels)


def _split_cluster(
    members: np.ndarray, dist: np.ndarray, conflicts: np.ndarray, tracklets: np.ndarray | None
) -> np.ndarray:
    """Part index (0 = stays) of each member of one cluster; see :func:`split_cannot_link`."""
    keys = (
        members.copy() + 1 if tracklets is None else np.where(tracklets[members] >= 0, tracklets[members], -1 - members)
    )
    _, unit = np.unique(keys, return_inverse=True)
    unit = unit.ravel()
    num_units = unit.max() + 1
    onehot = np.zeros((num_units, len(members)), dtype=np.float64)
    onehot[unit, np.arange(len(members))] = 1.0
    onehot /= onehot.sum(axis=1, keepdims=True)
    unit_dist = onehot @ dist[np.ix_(members, members)].astype(np.float64) @ onehot.T
    position = np.searchsorted(members, conflicts)  # members is sorted (flatnonzero)
    ua, ub = unit[position[:, 0]], unit[position[:, 1]]
    banned = np.zeros((num_units, num_units), dtype=bool)
    banned[ua, ub] = banned[ub, ua] = True
    seeds = np.unique(np.concatenate([ua, ub]))
    part_of = np.full(num_units, -1, dtype=np.int64)
    for seed in seeds:
        placed = np.flatnonzero(part_of >= 0)
        best, best_d = -1, np.inf
        for part in np.unique(part_of[placed]):
            group = placed[part_of[placed] == part]
            if banned[seed, group].any():
                continue
            d = unit_dist[seed, group].mean()
            if d < best_d:
                best, best_d = part, d
        part_of[seed] = best if best >= 0 else part_of.max() + 1
    rest = np.flatnonzero(part_of < 0)
    if len(rest):
        num_parts = part_of.max() + 1
        seed_parts = part_of[seeds]
        per_part = np.stack(
            [unit_dist[np.ix_(rest, seeds[seed_parts == p])].mean(axis=1) for p in range(num_parts)], axis=1
        )
        part_of[rest] = per_part.argmin(axis=1)
    return part_of[unit]


def constrained_dbscan(
    dist: np.ndarray,
    eps: float,
    min_samples: int,
    tracklets: np.ndarray | None = None,
    cannot_link: np.ndarray | None = None,
) -> np.ndarray:
    """DBSCAN followed by the video constraints (``dist`` must already hold them, see
    :func:`apply_constraints`). ``tracklets`` None switches must-link off, ``cannot_link`` None cannot-link.

    Returns (N,) int64 canonical labels, -1 = outlier.
    """
    labels = dbscan(dist, eps, min_samples)
    if tracklets is not None:
        labels = enforce_must_link(labels, tracklets)
    if cannot_link is not None and len(cannot_link):
        labels = split_cannot_link(labels, dist, cannot_link, tracklets)
    return labels


def cluster_pseudo_labels(
    dist: np.ndarray,
    eps: float,
    min_samples: int,
    tracklets: np.ndarray | None = None,
    cannot_link: np.ndarray | None = None,
) -> PseudoLabels:
    """Constraints into ``dist`` (in place), DBSCAN, must-link vote, cannot-link split.

    Raises:
        NoClustersError: every sample is an outlier; the message names eps and what to try.
    """
    apply_constraints(dist, tracklets, cannot_link)
    labels = constrained_dbscan(dist, eps, min_samples, tracklets, cannot_link)
    num_clusters = int(labels.max(initial=-1)) + 1
    if num_clusters == 0:
        raise NoClustersError(_no_cluster_message(dist, eps, min_samples))
    return PseudoLabels(labels, num_clusters, int((labels < 0).sum()), float(eps))


def _no_cluster_message(dist: np.ndarray, eps: float, min_samples: int) -> str:
    n = dist.shape[0]
    kth = min(max(min_samples - 1, 1), n - 1)
    if n > 1:
        off = dist + np.diag(np.full(n, np.inf, dtype=dist.dtype))
        radius = float(np.median(np.partition(off, kth - 1, axis=1)[:, kth - 1]))
        hint = f"the median distance to the {kth}-th nearest neighbour is {radius:.3f}"
    else:
        hint = "there is a single sample"
    return (
        f"DBSCAN found no cluster among {n} samples with eps={eps:g} and min_samples={min_samples}: "
        f"every sample is an outlier ({hint}). Try a larger --eps (e.g. {min(eps + 0.1, 1.0):g}) "
        "or a smaller "
        f"--min-samples, start from better weights (--init), or add more crops per person."
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
