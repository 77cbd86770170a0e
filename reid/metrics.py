"""Re-identification ranking metrics under the standard Market-1501 protocol, as a pure function.

For every query, gallery samples with the query's person id *and* camera are removed (they are the same
tracklet, not a re-identification), junk samples (pid -1) are removed, and distractors (pid 0) stay as
negatives. On what remains, for each query with at least one true match:

- CMC(k): 1 when a true match ranks within the first k (averaged over queries);
- AP: mean of precision@r over the ranks r of the true matches (torchreid ``eval_market1501``);
- INP: (number of true matches) / (rank of the hardest true match) (Ye et al., AGW, TPAMI 2021).

Queries with no true match in the gallery are skipped, as in torchreid.
"""

from __future__ import annotations

import numpy as np

JUNK_PID = -1


def _check_inputs(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray
) -> None:
    if distmat.ndim != 2:
        raise ValueError(f"distmat: expected (Q, G), got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    for name, arr, n in (
        ("q_pids", q_pids, num_q),
        ("q_camids", q_camids, num_q),
        ("g_pids", g_pids, num_g),
        ("g_camids", g_camids, num_g),
    ):
        if arr.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},) to match distmat {distmat.shape}, got {arr.shape}")
    if num_q == 0 or num_g == 0:
        raise ValueError(f"distmat: expected at least one query and one gallery sample, got {distmat.shape}")


def _rank_chunk(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per query of a chunk: (has_match (Q,), cmc hits (Q, max_rank) bool, AP (Q,), INP (Q,))."""
    order = np.argsort(distmat, axis=1)
    pids, cams = g_pids[order], g_camids[order]
    same_pid = pids == q_pids[:, None]
    keep = ~(same_pid & (cams == q_camids[:, None])) & (pids != JUNK_PID)
    hits = same_pid & keep
    kept_rank = np.cumsum(keep, axis=1)  # 1-based rank among kept samples (valid where keep)
    num_hits = hits.sum(axis=1)
    has_match = num_hits > 0
    hit_count = np.cumsum(hits, axis=1)
    precision_at_hits = np.where(hits, hit_count / np.maximum(kept_rank, 1), 0.0)
    ap = precision_at_hits.sum(axis=1) / np.maximum(num_hits, 1)
    big = np.iinfo(np.int64).max
    first_rank = np.where(hits, kept_rank, big).min(axis=1)
    last_rank = np.where(hits, kept_rank, 0).max(axis=1)
    inp = num_hits / np.maximum(last_rank, 1)
    cmc = first_rank[:, None] <= np.arange(1, max_rank + 1)[None, :]
    return has_match, cmc, ap, inp


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
    chunk_size: int = 256,
) -> dict[str, object]:
    """CMC, mAP and mINP of a query-gallery distance matrix (smaller = more similar).

    Args:
        distmat: (Q, G) float distances.
        q_pids, g_pids: (Q,), (G,) int person ids; gallery pid -1 = junk (ignored), 0 = distractor.
        q_camids, g_camids: (Q,), (G,) int camera ids.
        max_rank: length of the returned CMC curve (clipped to G).
        chunk_size: queries ranked at once (bounds memory to ~chunk_size x G x 30 bytes).

    Returns:
        ``{"cmc": (max_rank,) float64 (cmc[0] = Rank-1), "mAP": float, "mINP": float,
        "num_valid_queries": int}``; fractions in [0, 1].

    Raises:
        ValueError: shape mismatch, empty input, or no query has a true match in the gallery.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    _check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    max_rank = min(int(max_rank), distmat.shape[1])
    if max_rank < 1:
        raise ValueError(f"max_rank: expected >= 1, got {max_rank}")
    parts = [
        _rank_chunk(
            distmat[s : s + chunk_size],
            q_pids[s : s + chunk_size],
            g_pids,
            q_camids[s : s + chunk_size],
            g_camids,
            max_rank,
        )
        for s in range(0, distmat.shape[0], chunk_size)
    ]
    has_match = np.concatenate([p[0] for p in parts])
    if not has_match.any():
        raise ValueError("evaluate_rank: expected at least one query whose identity appears in the gallery, got none")
    cmc = np.concatenate([p[1] for p in parts])[has_match].mean(axis=0)
    ap = np.concatenate([p[2] for p in parts])[has_match]
    inp = np.concatenate([p[3] for p in parts])[has_match]
    return {
        "cmc": cmc,
        "mAP": float(ap.mean()),
        "mINP": float(inp.mean()),
        "num_valid_queries": int(has_match.sum()),
    }
