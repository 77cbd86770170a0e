"""HOTA (Luiten et al., IJCV 2020): detection and association accuracy over 19 IoU thresholds.

For each localisation threshold alpha in 0.05, 0.10, ..., 0.95:
``DetA = |TP| / (|TP| + |FN| + |FP|)`` and ``AssA = 1/|TP| * sum_{c in TP} A(c)`` with
``A(c) = |TPA| / (|TPA| + |FNA| + |FPA|)`` for the gt / predicted id pair of match c, and
``HOTA = sqrt(DetA * AssA)``; the reported scores are means over alpha.

Matching, as in the paper and TrackEval: per frame one Hungarian assignment maximises
``IoU * global_alignment(gt id, pred id)``, where the global alignment is a soft Jaccard score of the two
ids over the whole sequence (per-frame IoUs normalised by the row and column sums of that frame). A match
counts at alpha when its IoU >= alpha. One assignment serves all alphas, so they are evaluated at once.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.evaluation.metrics_mot import EPS, SequenceData

ALPHAS = np.arange(0.05, 0.99, 0.05)  # the 19 thresholds, built as TrackEval builds them (same floats)
HOTA_COUNT_FIELDS = ("HOTA_TP", "HOTA_FN", "HOTA_FP")
HOTA_RATIO_FIELDS = ("AssA", "AssRe", "AssPr")


def _global_alignment(seq: SequenceData, gt_count: np.ndarray, pred_count: np.ndarray) -> np.ndarray:
    """Soft Jaccard alignment (G, P) of every gt id with every predicted id over the sequence."""
    overlap = np.zeros((seq.num_gt_ids, seq.num_pred_ids))
    for g, p, sim in zip(seq.gt_ids, seq.pred_ids, seq.similarity):
        if sim.size == 0:
            continue
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        ok = denom > EPS
        overlap[g[:, None], p[None, :]] += np.where(ok, sim / np.where(ok, denom, 1.0), 0.0)
    return overlap / (gt_count[:, None] + pred_count[None, :] - overlap)


def _matches(seq: SequenceData, alignment: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame Hungarian matches over all frames: gt id (K,), predicted id (K,), IoU (K,)."""
    gts, preds, ious = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for g, p, sim in zip(seq.gt_ids, seq.pred_ids, seq.similarity):
        if sim.size == 0:
            continue
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], p[None, :]] * sim))
        gts.append(g[rows])
        preds.append(p[cols])
        ious.append(sim[rows, cols])
    return np.concatenate(gts), np.concatenate(preds), np.concatenate(ious)


def hota_metrics(seq: SequenceData) -> dict[str, np.ndarray]:
    """Per-alpha HOTA fields for one sequence, each float64 (19,).

    Returns HOTA_TP, HOTA_FN, HOTA_FP, AssA, AssRe, AssPr, LocA and the derived HOTA, DetA, DetRe, DetPr.
    """
    n_a = len(ALPHAS)
    n_gt, n_pred = seq.num_gt_dets, seq.num_pred_dets
    if n_gt == 0 or n_pred == 0:  # TrackEval returns all-zero scores (LocA 1) when one side is empty
        res = {f: np.zeros(n_a) for f in (*HOTA_COUNT_FIELDS, *HOTA_RATIO_FIELDS)}
        res["HOTA_FN"] += n_gt
        res["HOTA_FP"] += n_pred
        return finish_hota({**res, "LocA": np.ones(n_a)})
    gt_count, pred_count = seq.id_counts()
    g, p, iou = _matches(seq, _global_alignment(seq, gt_count, pred_count))
    counted = iou[None, :] >= ALPHAS[:, None] - EPS  # (A, K)
    tp = counted.sum(1).astype(np.float64)
    # TPA of every (gt id, pred id) pair that is ever matched, per alpha: (A, U)
    pair_keys, pair_of_match = np.unique(g * seq.num_pred_ids + p, return_inverse=True)
    tpa = np.zeros((n_a, len(pair_keys)))
    alpha_idx, match_idx = np.nonzero(counted)
    np.add.at(tpa, (alpha_idx, pair_of_match[match_idx]), 1.0)
    pair_gt, pair_pred = gt_count[pair_keys // seq.num_pred_ids], pred_count[pair_keys % seq.num_pred_ids]
    per_tp = np.maximum(1.0, tp)
    res = {
        "HOTA_TP": tp,
        "HOTA_FN": n_gt - tp,
        "HOTA_FP": n_pred - tp,
        "AssA": (tpa * tpa / np.maximum(1.0, pair_gt + pair_pred - tpa)).sum(1) / per_tp,
        "AssRe": (tpa * tpa / np.maximum(1.0, pair_gt)).sum(1) / per_tp,
        "AssPr": (tpa * tpa / np.maximum(1.0, pair_pred)).sum(1) / per_tp,
        "LocA": np.maximum(1e-10, (counted * iou[None, :]).sum(1)) / np.maximum(1e-10, tp),
    }
    return finish_hota(res)


def finish_hota(res: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Derived per-alpha fields (DetA, DetRe, DetPr, HOTA) from the counts and AssA."""
    tp, fn, fp = res["HOTA_TP"], res["HOTA_FN"], res["HOTA_FP"]
    det_a = tp / np.maximum(1.0, tp + fn + fp)
    return {
        **res,
        "DetA": det_a,
        "DetRe": tp / np.maximum(1.0, tp + fn),
        "DetPr": tp / np.maximum(1.0, tp + fp),
        "HOTA": np.sqrt(det_a * res["AssA"]),
    }


def combine_hota(results: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine sequences as TrackEval does: sum the counts, TP-weighted averages of AssA / AssRe / AssPr / LocA."""
    n_a = len(ALPHAS)
    res = {f: sum((r[f] for r in results), np.zeros(n_a)) for f in HOTA_COUNT_FIELDS}
    tp = res["HOTA_TP"]
    for f in HOTA_RATIO_FIELDS:
        res[f] = sum((r[f] * r["HOTA_TP"] for r in results), np.zeros(n_a)) / np.maximum(1.0, tp)
    loc = sum((r["LocA"] * r["HOTA_TP"] for r in results), np.zeros(n_a))
    res["LocA"] = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
    return finish_hota(res)
