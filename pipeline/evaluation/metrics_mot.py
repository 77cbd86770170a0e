"""Per-sequence MOT data preparation and the CLEAR-MOT and identity (IDF1) metrics.

The definitions and every edge case follow TrackEval (``MotChallenge2DBox`` preprocessing, ``CLEAR`` and
``Identity``), so numbers agree with it; ``tests/test_evaluate_trackeval.py`` checks that.

Ground-truth preprocessing (``prepare_sequence``):

- 'mot15' ground truth has no classes: rows with ``consider == 0`` are dropped, and predictions on them
  stay in the evaluation (they become false positives), exactly as TrackEval's MOT15 benchmark.
- 'mot17' / 'mot20' ground truth: per frame, predictions are matched one-to-one (Hungarian on IoU, pairs
  with IoU >= 0.5 only) to *all* ground-truth rows; predictions matched to a distractor class
  (2 person_on_vehicle, 7 static_person, 8 distractor, 12 reflection, and for 'mot20' also
  6 non_mot_vehicle) are removed; then only ground truth with class 1 (pedestrian) and ``consider != 0`` is
  kept. Classes must be in 1..13.
- ``ignore_zero_marked=True`` (not TrackEval's default) additionally removes predictions matched to any
  ground-truth row with ``consider == 0``, so those boxes count neither as TP nor FP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

EPS = float(np.finfo(np.float64).eps)
PEDESTRIAN = 1
VALID_CLASSES = np.arange(1, 14)
DISTRACTOR_CLASSES = {"mot17": (2, 7, 8, 12), "mot20": (2, 6, 7, 8, 12), "mot15": ()}


@dataclass(frozen=True)
class SequenceData:
    """One sequence after preprocessing, split by frame (only frames with any box, in increasing order).

    Attributes:
        frames: int64 (T,) frame numbers.
        gt_ids, pred_ids: per frame int64 (n_t,) contiguous ids in [0, num_gt_ids) / [0, num_pred_ids).
        similarity: per frame float64 (n_gt_t, n_pred_t) IoU.
        gt_id_values, pred_id_values: int64 original id of each contiguous id.
    """

    frames: np.ndarray
    gt_ids: list[np.ndarray]
    pred_ids: list[np.ndarray]
    similarity: list[np.ndarray]
    gt_id_values: np.ndarray
    pred_id_values: np.ndarray

    @property
    def num_gt_ids(self) -> int:
        return len(self.gt_id_values)

    @property
    def num_pred_ids(self) -> int:
        return len(self.pred_id_values)

    @property
    def num_gt_dets(self) -> int:
        return int(sum(len(g) for g in self.gt_ids))

    @property
    def num_pred_dets(self) -> int:
        return int(sum(len(p) for p in self.pred_ids))

    def id_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Number of boxes of every gt id (G,) and predicted id (P,), float64."""
        gt = np.concatenate([np.zeros(0, np.int64), *self.gt_ids])
        pred = np.concatenate([np.zeros(0, np.int64), *self.pred_ids])
        return (
            np.bincount(gt, minlength=self.num_gt_ids).astype(np.float64),
            np.bincount(pred, minlength=self.num_pred_ids).astype(np.float64),
        )


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` (N, 4) and ``b`` (M, 4) in x, y, w, h -> float64 (N, M); degenerate boxes give 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    a = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
    b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.maximum(hi[..., 0] - lo[..., 0], 0) * np.maximum(hi[..., 1] - lo[..., 1], 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    invalid = (area_a[:, None] <= EPS) | (area_b[None, :] <= EPS) | (union <= EPS)
    return np.where(invalid, 0.0, inter / np.where(union <= EPS, 1.0, union))


def _frame_slices(frames_sorted: np.ndarray, all_frames: np.ndarray) -> np.ndarray:
    """Start/stop (T, 2) of each frame of ``all_frames`` inside the sorted per-row frame array."""
    start = np.searchsorted(frames_sorted, all_frames, side="left")
    stop = np.searchsorted(frames_sorted, all_frames, side="right")
    return np.stack([start, stop], axis=1)


def _check_unique_ids(frames: np.ndarray, ids: np.ndarray, what: str) -> None:
    """Raise if an id occurs twice in one frame."""
    if len(ids) == 0:
        return
    pairs, counts = np.unique(np.stack([frames, ids], axis=1), axis=0, return_counts=True)
    if (counts > 1).any():
        frame, dup = pairs[np.argmax(counts > 1)]
        raise ValueError(
            f"{what}: expected each id once per frame, got id {dup} more than once in frame {frame}"
        )


def _removed_predictions(
    sim: np.ndarray, gt_classes: np.ndarray, gt_consider: np.ndarray, distractors: tuple, ignore_zero: bool
) -> np.ndarray:
    """Indices of a frame's predictions matched (IoU >= 0.5, Hungarian) to distractor / ignored gt rows."""
    if sim.size == 0:
        return np.zeros(0, dtype=np.int64)
    scores = np.where(sim < 0.5 - EPS, 0.0, sim)
    rows, cols = linear_sum_assignment(-scores)
    ok = scores[rows, cols] > EPS
    rows, cols = rows[ok], cols[ok]
    drop = np.isin(gt_classes[rows], distractors)
    if ignore_zero:
        drop |= gt_consider[rows] == 0
    return cols[drop]


def _gt_flags(gt: np.ndarray, gt_format: str) -> tuple[np.ndarray, np.ndarray]:
    """``consider`` (N,) int64 (1 without column 6) and class (N,) int64 (pedestrian for 'mot15') of gt rows."""
    if gt_format not in DISTRACTOR_CLASSES:
        raise ValueError(f"gt_format: expected one of {sorted(DISTRACTOR_CLASSES)}, got {gt_format!r}")
    consider = gt[:, 6].astype(np.int64) if gt.shape[1] > 6 else np.ones(len(gt), np.int64)
    if gt_format == "mot15" or len(gt) == 0:
        return consider, np.full(len(gt), PEDESTRIAN, np.int64)
    if gt.shape[1] < 8:
        raise ValueError(f"gt_format {gt_format!r}: expected a class column 8, got {gt.shape[1]} columns")
    classes = gt[:, 7].astype(np.int64)
    invalid = np.setdiff1d(classes, VALID_CLASSES)
    if len(invalid):
        raise ValueError(f"gt classes: expected values in 1..13 for {gt_format}, got {invalid.tolist()}")
    return consider, classes


def prepare_sequence(
    gt: np.ndarray, pred: np.ndarray, gt_format: str = "mot15", ignore_zero_marked: bool = False
) -> SequenceData:
    """Split rows by frame, compute IoUs, apply the ground-truth conventions (module docstring).

    Args:
        gt: float (N, >=6) ground-truth rows; column 6 is ``consider`` (1 when absent), column 7 the class
            for 'mot17' / 'mot20'.
        pred: float (M, >=6) prediction rows.
        gt_format: 'mot15', 'mot17' or 'mot20' (see ``mot_io.resolve_gt_format``).
    """
    gt, pred = as_rows(gt, "gt"), as_rows(pred, "pred")
    consider, classes = _gt_flags(gt, gt_format)
    g_order = np.argsort(gt[:, 0], kind="stable")
    p_order = np.argsort(pred[:, 0], kind="stable")
    gt, consider, classes, pred = gt[g_order], consider[g_order], classes[g_order], pred[p_order]
    g_frames, p_frames = gt[:, 0].astype(np.int64), pred[:, 0].astype(np.int64)
    g_ids, p_ids = gt[:, 1].astype(np.int64), pred[:, 1].astype(np.int64)
    _check_unique_ids(g_frames, g_ids, "ground truth")
    _check_unique_ids(p_frames, p_ids, "predictions")
    frames = np.union1d(g_frames, p_frames)
    g_sl, p_sl = _frame_slices(g_frames, frames), _frame_slices(p_frames, frames)
    distractors = DISTRACTOR_CLASSES[gt_format]
    match_first = gt_format != "mot15" or ignore_zero_marked
    keep_gt = (consider != 0) & (classes == PEDESTRIAN)
    keep_pred = np.ones(len(pred), dtype=bool)
    sims = []
    for (g0, g1), (p0, p1) in zip(g_sl, p_sl):
        sim = box_iou_xywh(gt[g0:g1, 2:6], pred[p0:p1, 2:6])
        if match_first:
            removed = _removed_predictions(
                sim, classes[g0:g1], consider[g0:g1], distractors, ignore_zero_marked
            )
            keep_pred[p0 + removed] = False
        sims.append(sim[keep_gt[g0:g1]][:, keep_pred[p0:p1]])
    gt_values, gt_contig = np.unique(g_ids[keep_gt], return_inverse=True)
    pred_values, pred_contig = np.unique(p_ids[keep_pred], return_inverse=True)
    g_cut = np.concatenate([[0], np.cumsum(keep_gt)])[g_sl]  # row slices -> slices of kept rows
    p_cut = np.concatenate([[0], np.cumsum(keep_pred)])[p_sl]
    return SequenceData(
        frames=frames,
        gt_ids=[gt_contig[a:b] for a, b in g_cut],
        pred_ids=[pred_contig[a:b] for a, b in p_cut],
        similarity=sims,
        gt_id_values=gt_values.astype(np.int64),
        pred_id_values=pred_values.astype(np.int64),
    )


def as_rows(rows: np.ndarray, what: str) -> np.ndarray:
    """``rows`` as float64 (N, C >= 6); any empty input becomes (0, max(6, C))."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return np.zeros((0, max(6, rows.shape[-1] if rows.ndim == 2 else 6)), dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < 6:
        raise ValueError(f"{what}: expected rows (N, >=6) frame,id,x,y,w,h,..., got shape {rows.shape}")
    return rows


def clear_metrics(seq: SequenceData, threshold: float = 0.5) -> dict:
    """CLEAR-MOT counts (TP, FN, FP, IDSW, MT, PT, ML, Frag, MOTP_sum) and ratios for one sequence.

    Matching per frame: Hungarian on IoU (pairs below ``threshold`` excluded) with a bonus of 1000 for
    continuing the previous frame's match, so identity switches are only counted when unavoidable.
    """
    res = dict.fromkeys(("TP", "FN", "FP", "IDSW", "MT", "PT", "ML", "Frag"), 0)
    res["MOTP_sum"] = 0.0
    n_gt, n_pred = seq.num_gt_dets, seq.num_pred_dets
    if n_pred == 0 or n_gt == 0:  # TrackEval leaves the ratios at 0 for an empty side
        res.update(FN=n_gt, FP=n_pred, ML=seq.num_gt_ids if n_pred == 0 else 0)
        return {**res, "MOTA": 0.0, "MODA": 0.0, "MOTP": 0.0, "Recall": 0.0, "Precision": 0.0}
    n_ids = seq.num_gt_ids
    seen, tracked, frag = np.zeros(n_ids), np.zeros(n_ids), np.zeros(n_ids)
    last_pred = np.full(n_ids, -1)  # last matched prediction, any frame earlier (for IDSW)
    prev_pred = np.full(n_ids, -1)  # match in the previous processed frame (for matching and Frag)
    for g, p, sim in zip(seq.gt_ids, seq.pred_ids, seq.similarity):
        if len(g) == 0 or len(p) == 0:
            res["FP"] += len(p) if len(g) == 0 else 0
            res["FN"] += len(g)
            seen[g] += 1
            continue
        score = 1000.0 * (p[None, :] == prev_pred[g][:, None]) + sim
        score[sim < threshold - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > EPS
        rows, cols = rows[ok], cols[ok]
        mg, mp = g[rows], p[cols]
        res["IDSW"] += int(np.sum((last_pred[mg] >= 0) & (last_pred[mg] != mp)))
        seen[g] += 1
        tracked[mg] += 1
        was_free = prev_pred < 0
        last_pred[mg] = mp
        prev_pred[:] = -1
        prev_pred[mg] = mp
        frag += was_free & (prev_pred >= 0)
        res["TP"] += len(mg)
        res["FN"] += len(g) - len(mg)
        res["FP"] += len(p) - len(mg)
        res["MOTP_sum"] += float(sim[rows, cols].sum())
    ratio = tracked[seen > 0] / seen[seen > 0]
    res["MT"] = int(np.sum(ratio > 0.8))
    res["PT"] = int(np.sum(ratio >= 0.2)) - res["MT"]
    res["ML"] = n_ids - res["MT"] - res["PT"]
    res["Frag"] = int(np.sum(frag[frag > 0] - 1))
    return finish_clear(res)


def finish_clear(res: dict) -> dict:
    """Ratios from the summed CLEAR counts (also used to combine sequences)."""
    tp, fn, fp, idsw = res["TP"], res["FN"], res["FP"], res["IDSW"]
    gt = max(1.0, tp + fn)
    return {
        **res,
        "MOTA": (tp - fp - idsw) / gt,
        "MODA": (tp - fp) / gt,
        "MOTP": res["MOTP_sum"] / max(1.0, tp),
        "Recall": tp / gt,
        "Precision": tp / max(1.0, tp + fp),
    }


def id_assignment(potential: np.ndarray, gt_count: np.ndarray, pred_count: np.ndarray) -> dict:
    """Optimal identity matching (Ristani et al. 2016) with dummy nodes for unmatched ids.

    Args:
        potential: (G, P) number of boxes where gt id g and predicted id p overlap (IoU >= threshold).
        gt_count, pred_count: (G,), (P,) boxes per id.
    Returns:
        dict with integer IDTP, IDFP, IDFN and IDF1, IDP, IDR.
    The (G+P) x (G+P) cost: real pair (g, p) costs its false negatives plus false positives
    ``gt_count[g] + pred_count[p] - 2 * potential[g, p]``; gt g alone costs ``gt_count[g]``, predicted p
    alone ``pred_count[p]``; dummy-to-dummy costs 0; impossible pairs 1e10.
    """
    n_g, n_p = potential.shape
    big = 1e10
    fn = np.zeros((n_g + n_p, n_g + n_p))
    fp = np.zeros_like(fn)
    fn[:n_g, :n_p] = gt_count[:, None] - potential
    fp[:n_g, :n_p] = pred_count[None, :] - potential
    fn[:n_g, n_p:] = np.where(np.eye(n_g, dtype=bool), gt_count[:, None], big)
    fp[n_g:, :n_p] = np.where(np.eye(n_p, dtype=bool), pred_count[None, :], big)
    rows, cols = linear_sum_assignment(fn + fp)
    idfn = round(float(fn[rows, cols].sum()))
    idfp = round(float(fp[rows, cols].sum()))
    return finish_identity({"IDTP": int(gt_count.sum()) - idfn, "IDFN": idfn, "IDFP": idfp})


def finish_identity(res: dict) -> dict:
    """IDF1, IDP, IDR from IDTP, IDFP, IDFN."""
    tp, fp, fn = res["IDTP"], res["IDFP"], res["IDFN"]
    return {
        **res,
        "IDF1": tp / max(1.0, tp + 0.5 * fp + 0.5 * fn),
        "IDP": tp / max(1.0, tp + fp),
        "IDR": tp / max(1.0, tp + fn),
    }


def overlap_pairs(seq: SequenceData, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous (gt id, predicted id) of every box pair with IoU >= threshold, over all frames, (K,) each."""
    gts, preds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for g, p, sim in zip(seq.gt_ids, seq.pred_ids, seq.similarity):
        r, c = np.nonzero(sim >= threshold)
        gts.append(g[r])
        preds.append(p[c])
    return np.concatenate(gts), np.concatenate(preds)


def identity_metrics(seq: SequenceData, threshold: float = 0.5) -> dict:
    """IDF1 / IDP / IDR for one sequence (global id matching over all its frames)."""
    n_gt, n_pred = seq.num_gt_dets, seq.num_pred_dets
    if n_gt == 0 or n_pred == 0:
        return finish_identity({"IDTP": 0, "IDFN": n_gt, "IDFP": n_pred})
    g, p = overlap_pairs(seq, threshold)
    potential = np.zeros((seq.num_gt_ids, seq.num_pred_ids))
    np.add.at(potential, (g, p), 1.0)
    gt_count, pred_count = seq.id_counts()
    return id_assignment(potential, gt_count, pred_count)
