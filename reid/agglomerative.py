"""Agglomerative clustering with cannot-link constraints, shared by offline linking and the trainer."""

from __future__ import annotations

import numpy as np

MUST_LINK_DIST = -100.0  # a must-linked pair's distance: merged first, and their clusters after, however large


def constrained_agglomerative(
    dist: np.ndarray, forbidden: np.ndarray, max_dist: float, linkage: str, ignored: np.ndarray | None = None,
    must_link: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """(N,) int cluster labels of agglomerative clustering with cannot-link constraints.

    ``dist`` (N, N) symmetric distances; ``forbidden`` (N, N) bool pairs that may never share a cluster.
    Merges the closest allowed pair (Lance-Williams update) while its distance is <= ``max_dist``. Keeps
    each cluster's nearest allowed neighbour, so a merge costs O(N) plus a row rescan for the clusters
    whose neighbour was one of the merged two. ``ignored`` (N, N) bool: pairs whose distance is no
    evidence (average linkage averages over the other pairs; two clusters with no counted pair never
    merge; with single or complete linkage they are forbidden). ``must_link`` (L, 2) index pairs that are
    one whatever their distance (evidence other than appearance): their distance becomes
    :data:`MUST_LINK_DIST`, so they merge first and pull their clusters together (with average linkage);
    a forbidden pair stays forbidden.
    """
    n = len(dist)
    d = np.array(dist, dtype=np.float64)
    ban = np.array(forbidden, dtype=bool) | np.eye(n, dtype=bool)
    if must_link is not None and len(must_link):
        i, j = np.asarray(must_link, np.int64).reshape(-1, 2).T
        keep = ~ban[i, j]
        d[i[keep], j[keep]] = d[j[keep], i[keep]] = MUST_LINK_DIST
    total = count = None
    if ignored is not None and np.any(ignored):
        if linkage != "average":
            ban |= np.asarray(ignored, bool)
        else:
            count = (~np.asarray(ignored, bool)).astype(np.float64)
            total = np.where(count > 0, d, 0.0)
            d = np.where(count > 0, d, np.inf)
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    labels = np.arange(n)
    masked = np.where(ban, np.inf, d)
    nn = masked.argmin(axis=1)
    nn_d = masked[np.arange(n), nn]
    while True:
        i = int(np.argmin(np.where(alive, nn_d, np.inf)))
        if not alive[i] or nn_d[i] > max_dist:
            break
        j = int(nn[i])
        if total is not None:  # average over the counted pairs only
            total[i] += total[j]
            count[i] += count[j]
            total[:, i], count[:, i] = total[i], count[i]
            with np.errstate(invalid="ignore", divide="ignore"):
                row = np.where(count[i] > 0, total[i] / np.maximum(count[i], 1e-12), np.inf)
        elif linkage == "average":
            row = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        else:
            row = np.maximum(d[i], d[j]) if linkage == "complete" else np.minimum(d[i], d[j])
        d[i], d[:, i] = row, row
        ban[i] |= ban[j]
        ban[:, i] = ban[i]
        size[i] += size[j]
        alive[j], labels[labels == j] = False, i
        ban[j], ban[:, j] = True, True
        row_masked = np.where(ban[i] | ~alive, np.inf, d[i])
        nn_d[j] = np.inf
        nn[i], nn_d[i] = int(row_masked.argmin()), row_masked.min()
        stale = np.flatnonzero(alive & ((nn == i) | (nn == j)))
        stale = stale[stale != i]
        closer = alive & (row_masked < nn_d)
        closer[i] = False
        nn[closer], nn_d[closer] = i, row_masked[closer]
        if len(stale):
            sub = np.where(ban[stale] | ~alive[None], np.inf, d[stale])
            nn[stale] = sub.argmin(axis=1)
            nn_d[stale] = sub[np.arange(len(stale)), nn[stale]]
    return np.unique(labels, return_inverse=True)[1]
