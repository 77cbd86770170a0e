"""Clustering helpers for unsupervised ReID: the k-reciprocal Jaccard distance.

Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017, in the form
SpCL / cluster-contrast use for pseudo labelling (``compute_jaccard_distance``), rebuilt on sparse
matrices so that nothing dense but the (rows, N) output is ever allocated:

1. R(i, k): the k-reciprocal neighbours of i — j in the top k+1 of i and i in the top k+1 of j
   (self included);
2. expansion: R*(i) = R(i, k1) plus R(c, round(k1/2)) for each c in R(i, k1) whose half-set shares more
   than 2/3 of its members with R(i, k1);
3. V[i, j] = exp(-d(i, j) / s_i) over j in R*(i), normalised to sum 1; d = squared euclidean distance of
   unit features (= 2 - 2 cos), s_i = 1 (SpCL) or a per-row scale (re-ranking uses max_j d(i, j));
4. local query expansion: V[i] <- mean of V over the k2 nearest neighbours of i;
5. Jaccard distance: 1 - sum_k min(V_ik, V_jk) / sum_k max(V_ik, V_jk), with sum max = 2 - sum min.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

SEARCH_BACKENDS = ("faiss", "numpy")
_DENSE_BLOCK_ELEMENTS = 1 << 22  # elements of a dense (rows, N) working block
_PAIR_BUDGET = 1 << 21  # (row, column) overlaps expanded at once in the Jaccard sums


def as_unit_features(features: object) -> np.ndarray:
    """(N, D) numpy or torch features -> C-contiguous float32 numpy with rows of unit L2 norm."""
    if hasattr(features, "detach"):
        features = features.detach().float().cpu().numpy()
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"features: expected a (N, D) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features: expected finite values, got NaN or inf")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def faiss_inner_product_search(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search with faiss (``IndexFlatIP``; on GPU 0 when faiss sees a GPU).

    Args:
        base: (N, D) float32 C-contiguous rows to search.
        queries: (M, D) float32 C-contiguous.
        k: results per query (<= N).

    Returns:
        ``(similarities (M, k) float32, indices (M, k) int64)``, most similar first.
    """
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    resources = None
    if faiss.get_num_gpus() > 0:
        resources = faiss.StandardGpuResources()  # must outlive the GPU index
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    del index, resources
    return sims, idx.astype(np.int64)


def nearest_neighbours(features: np.ndarray, k: int, search_with: str = "faiss") -> np.ndarray:
    """Indices of the k most similar rows (by inner product) of each row, most similar first.

    Args:
        features: (N, D) float32 unit rows.
        k: neighbours per row (clipped to N); a row is normally its own first neighbour.
        search_with: ``"faiss"`` (IndexFlatIP, on the GPU when faiss sees one) or ``"numpy"`` (blocked).

    Returns:
        (N, min(k, N)) int64.
    """
    if search_with not in SEARCH_BACKENDS:
        raise ValueError(f"search_with: expected one of {SEARCH_BACKENDS}, got {search_with!r}")
    n = features.shape[0]
    k = min(int(k), n)
    if search_with == "faiss":
        return faiss_inner_product_search(features, features, k)[1]
    out = np.empty((n, k), dtype=np.int64)
    step = max(1, _DENSE_BLOCK_ELEMENTS // n)
    for s in range(0, n, step):
        sims = features[s : s + step] @ features.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(sims), 1))
        top_sims = np.take_along_axis(sims, top, axis=1)
        out[s : s + step] = np.take_along_axis(top, np.argsort(-top_sims, axis=1, kind="stable"), axis=1)
    return out


def _membership(neighbours: np.ndarray, n: int) -> sp.csr_matrix:
    """(N, N) float32 0/1 matrix with M[i, j] = 1 when j is in row i of ``neighbours``."""
    rows = np.repeat(np.arange(neighbours.shape[0]), neighbours.shape[1])
    ones = np.ones(rows.shape[0], dtype=np.float32)
    return sp.csr_matrix((ones, (rows, neighbours.ravel())), shape=(n, n))


def _reciprocal(neighbours: np.ndarray, n: int) -> sp.csr_matrix:
    """k-reciprocal sets as an (N, N) float32 0/1 matrix (symmetric)."""
    member = _membership(neighbours, n)
    return member.multiply(member.T).tocsr()


def _expanded_sets(neighbours: np.ndarray, k1: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2: the expanded k-reciprocal sets R*(i) as (row i, member j) pairs sorted by (i, j)."""
    full = _reciprocal(neighbours[:, : k1 + 1], n)
    half = _reciprocal(neighbours[:, : int(np.around(k1 / 2.0)) + 1], n)
    half_sizes = np.diff(half.indptr)
    shared = (full @ half).multiply(full).tocoo()  # |R(c, k1/2) ∩ R(i, k1)| for c in R(i, k1)
    accept = shared.data > 2.0 / 3 * half_sizes[shared.col]
    accepted = sp.csr_matrix(
        (np.ones(accept.sum(), dtype=np.float32), (shared.row[accept], shared.col[accept])), shape=(n, n)
    )
    expanded = (full + accepted @ half).tocoo()
    order = np.lexsort((expanded.col, expanded.row))
    return expanded.row[order].astype(np.int64), expanded.col[order].astype(np.int64)


def k_reciprocal_weights(
    features: np.ndarray,
    neighbours: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    row_scale: np.ndarray | None = None,
) -> sp.csr_matrix:
    """The sparse k-reciprocal encoding V (steps 1-4 of the module doc).

    Args:
        features: (N, D) float32 unit rows.
        neighbours: (N, >= min(k1 + 1, N)) int nearest-neighbour indices, most similar first.
        k1, k2: reciprocal-set size and query-expansion size.
        row_scale: optional (N,) positive divisor of row i's squared distances in the Gaussian kernel.

    Returns:
        (N, N) float32 CSR; every row sums to 1.
    """
    n = features.shape[0]
    if k1 < 1 or k2 < 1 or k2 > k1 + 1:
        raise ValueError(f"k-reciprocal: expected k1 >= 1 and 1 <= k2 <= k1 + 1, got k1={k1}, k2={k2}")
    if neighbours.shape[0] != n or neighbours.shape[1] < min(k1 + 1, n):
        raise ValueError(f"neighbours: expected ({n}, >= {min(k1 + 1, n)}), got {neighbours.shape}")
    rows, cols = _expanded_sets(neighbours, k1, n)
    dist = np.empty(len(rows), dtype=np.float32)
    step = max(1, _DENSE_BLOCK_ELEMENTS // features.shape[1])
    for s in range(0, len(rows), step):
        dots = np.einsum("ij,ij->i", features[rows[s : s + step]], features[cols[s : s + step]])
        dist[s : s + step] = np.maximum(2.0 - 2.0 * dots, 0.0)
    if row_scale is not None:
        dist /= row_scale[rows]
    weight = np.exp(-dist.astype(np.float64))
    weight /= np.bincount(rows, weights=weight, minlength=n)[rows]
    v = sp.csr_matrix((weight.astype(np.float32), (rows, cols)), shape=(n, n))
    if k2 > 1:
        qe = neighbours[:, : min(k2, n)]
        mean = _membership(qe, n).multiply(np.float32(1.0 / qe.shape[1])).tocsr()
        v = (mean @ v).tocsr()
    v.sort_indices()
    return v


def _row_blocks(cost: np.ndarray, max_rows: int, budget: int) -> Iterator[tuple[int, int]]:
    """Contiguous row ranges whose summed ``cost`` stays within ``budget`` (at least one row each)."""
    cum = np.cumsum(cost)
    start, n = 0, len(cost)
    while start < n:
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + budget, side="right"))
        stop = min(max(stop, start + 1), start + max_rows, n)
        yield start, stop
        start = stop


def jaccard_from_weights(v: sp.csr_matrix, rows: np.ndarray | None = None) -> np.ndarray:
    """Jaccard distance between rows of V (step 5): ``(len(rows), N)`` float32 in [0, 1].

    Computed by expanding, per block of rows, every shared non-zero column into its (row, other row)
    overlaps and summing their minima with one ``bincount``; cost ~ sum over rows of the column sizes
    of their support, memory ~ one (block, N) array.
    """
    n = v.shape[1]
    sub = v if rows is None else v[np.asarray(rows)].tocsr()
    vc = v.tocsc()
    col_sizes = np.diff(vc.indptr)
    entry_rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    cost = np.bincount(entry_rows, weights=col_sizes[sub.indices], minlength=sub.shape[0])
    out = np.empty((sub.shape[0], n), dtype=np.float32)
    for s, e in _row_blocks(cost, max(1, _DENSE_BLOCK_ELEMENTS // n), _PAIR_BUDGET):
        a, b = sub.indptr[s], sub.indptr[e]
        cols, vals = sub.indices[a:b], sub.data[a:b]
        local = np.repeat(np.arange(e - s), np.diff(sub.indptr[s : e + 1]))
        starts, lens = vc.indptr[cols], col_sizes[cols]
        rep = np.repeat(np.arange(len(cols)), lens)
        pos = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + starts[rep]
        overlap = np.minimum(vals[rep], vc.data[pos]).astype(np.float64)
        sums = np.bincount(local[rep] * n + vc.indices[pos], weights=overlap, minlength=(e - s) * n)
        sums = sums.reshape(e - s, n)
        out[s:e] = np.clip(1.0 - sums / (2.0 - sums), 0.0, 1.0)
    return out


def k_reciprocal_jaccard(features: object, k1: int = 20, k2: int = 6, search_with: str = "faiss") -> np.ndarray:
    """Pairwise k-reciprocal Jaccard distance of N features (SpCL's pseudo-label distance).

    Args:
        features: (N, D) float32 numpy array or torch tensor, unit rows (re-normalised here anyway).
        k1: k-reciprocal neighbourhood size (20 in SpCL / cluster-contrast).
        k2: local query expansion size (6).
        search_with: nearest-neighbour backend, ``"faiss"`` or ``"numpy"``.

    Returns:
        (N, N) float32 distances in [0, 1], 0 on the diagonal, 1 for pairs sharing no neighbourhood.
    """
    x = as_unit_features(features)
    if len(x) <= 1:  # nothing to compare (k1 may then be 0 when a caller clips it to N - 1)
        return np.zeros((len(x), len(x)), dtype=np.float32)
    neighbours = nearest_neighbours(x, k1 + 1, search_with)
    v = k_reciprocal_weights(x, neighbours, k1=k1, k2=k2)
    return jaccard_from_weights(v)
