"""k-reciprocal re-ranking of a query-gallery ranking (Zhong et al., CVPR 2017).

Follows the authors' reference ``re_ranking(q_g_dist, q_q_dist, g_g_dist)`` given euclidean distances of
unit features: the original distance is the squared euclidean distance ``2 - 2 cos`` divided by its row
maximum over all query+gallery samples, the Gaussian kernel of the k-reciprocal encoding uses that
normalised distance, and the final distance is ``(1 - lambda) * jaccard + lambda * original``. Only the
query rows of the Jaccard distance are computed, so memory is O(Q x (Q + G)), not O((Q + G)^2).
"""

from __future__ import annotations

import numpy as np

from reid.cluster import (
    SEARCH_BACKENDS,
    as_unit_features,
    faiss_inner_product_search,
    jaccard_from_weights,
    k_reciprocal_weights,
    nearest_neighbours,
)

_BLOCK_ELEMENTS = 1 << 22


def _min_similarity(x: np.ndarray, search_with: str) -> np.ndarray:
    """(N,) smallest inner product of each row with any row (itself included)."""
    if search_with == "faiss":
        return -faiss_inner_product_search(x, -x, 1)[0][:, 0]
    step = max(1, _BLOCK_ELEMENTS // x.shape[0])
    return np.concatenate([(x[s : s + step] @ x.T).min(axis=1) for s in range(0, x.shape[0], step)])


def re_rank(
    q_feats: object,
    g_feats: object,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    search_with: str = "faiss",
) -> np.ndarray:
    """Re-ranked query-gallery distance.

    Args:
        q_feats: (Q, D) query features (numpy or torch), unit rows (re-normalised here anyway).
        g_feats: (G, D) gallery features.
        k1, k2, lambda_value: the paper's parameters (20, 6, 0.3).
        search_with: nearest-neighbour backend, ``"faiss"`` or ``"numpy"``.

    Returns:
        (Q, G) float32 distance, smaller = more similar.
    """
    if search_with not in SEARCH_BACKENDS:
        raise ValueError(f"search_with: expected one of {SEARCH_BACKENDS}, got {search_with!r}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value: expected a value in [0, 1], got {lambda_value}")
    q, g = as_unit_features(q_feats), as_unit_features(g_feats)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"re_rank: expected query and gallery of one dimension, got {q.shape} and {g.shape}")
    num_q = q.shape[0]
    if num_q == 0 or g.shape[0] == 0:
        return np.zeros((num_q, g.shape[0]), dtype=np.float32)
    x = np.concatenate([q, g], axis=0)
    row_max = np.maximum(2.0 - 2.0 * _min_similarity(x, search_with), 1e-12).astype(np.float32)
    neighbours = nearest_neighbours(x, k1 + 1, search_with)
    v = k_reciprocal_weights(x, neighbours, k1=k1, k2=k2, row_scale=row_max)
    jaccard = jaccard_from_weights(v, rows=np.arange(num_q))[:, num_q:]
    original = np.maximum(2.0 - 2.0 * (q @ g.T), 0.0) / row_max[:num_q, None]
    return ((1.0 - lambda_value) * jaccard + lambda_value * original).astype(np.float32)
