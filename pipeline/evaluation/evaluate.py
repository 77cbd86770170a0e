"""Tracking evaluation: HOTA, CLEAR-MOT and identity metrics per camera, combined, and multi-camera IDF1.

``python -m pipeline.evaluate --gt GT --pred PRED [--iou 0.5] [--json OUT.json]``

GT and PRED are MOTChallenge text files, or folders of ``<camera_id>.txt`` files matched by name (PRED
may also be a run folder: its ``mot_global/`` is scored when the run linked identities, else its ``mot/``;
give ``RUN/mot`` to score the tracker's per-camera ids). Rows are named by camera: the file stem.
A camera without a prediction file counts as one with no
predictions; a prediction file without ground truth is an error. Per-sequence numbers equal TrackEval's
(``MotChallenge2DBox`` + ``HOTA``, ``CLEAR``, ``Identity``; see ``pipeline/evaluation/metrics_mot.py`` for the
ground-truth conventions); COMBINED merges cameras the way TrackEval merges sequences (counts summed, HOTA
through its per-alpha sums; GT / pred id counts are summed over cameras, as TrackEval's ``Count``).

Multi-camera IDF1 (Ristani et al. 2016, "MTMC"): one optimal bipartite matching between ground-truth and
predicted ids over all cameras and frames together, where an id means the same person in every camera
(ground-truth files must use global person ids). An id pair's overlap is the number of boxes, in any camera
and frame, where the two boxes have IoU >= the threshold. Per-camera-only predicted ids lower it; with
global predicted ids it equals the combined per-camera IDF1 whenever the per-camera optimal matchings agree
(it can never exceed it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pipeline.evaluation.metrics_hota import combine_hota, hota_metrics
from pipeline.evaluation.metrics_mot import (
    SequenceData,
    as_rows,
    clear_metrics,
    finish_clear,
    finish_identity,
    id_assignment,
    identity_metrics,
    overlap_pairs,
    prepare_sequence,
)
from pipeline.evaluation.mot_io import (
    GT_FORMATS,
    camera_files,
    load_mot,
    pair_camera_files,
    resolve_gt_format,
    resolve_pred_dir,
)
from reid.console import progress, setup_logging

logger = logging.getLogger(__name__)

HOTA_SUMMARY = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA")
CLEAR_COUNTS = ("TP", "FN", "FP", "IDSW", "MT", "PT", "ML", "Frag", "MOTP_sum")
ID_COUNTS = ("IDTP", "IDFP", "IDFN")
OTHER_COUNTS = ("GT_IDs", "PRED_IDs", "GT_DETS", "PRED_DETS")
TABLE = (  # (header, key, is_ratio)
    ("HOTA", "HOTA", True),
    ("DetA", "DetA", True),
    ("AssA", "AssA", True),
    ("MOTA", "MOTA", True),
    ("IDF1", "IDF1", True),
    ("IDP", "IDP", True),
    ("IDR", "IDR", True),
    ("IDsw", "IDSW", False),
    ("FP", "FP", False),
    ("FN", "FN", False),
    ("GT ids", "GT_IDs", False),
    ("pred ids", "PRED_IDs", False),
)


def _summarise(hota: dict[str, np.ndarray], clear: dict, ident: dict, counts: dict) -> dict:
    """One flat result dict: alpha-averaged HOTA fields, CLEAR and identity numbers, id/box counts."""
    res = {f: float(np.mean(hota[f])) for f in HOTA_SUMMARY}
    res.update({k: (float(v) if isinstance(v, float) else int(v)) for k, v in clear.items()})
    res.update({k: (float(v) if isinstance(v, float) else int(v)) for k, v in ident.items()})
    res.update(counts)
    res["per_alpha"] = hota
    return res


def _evaluate_prepared(seq: SequenceData, iou: float) -> dict:
    counts = {
        "GT_IDs": seq.num_gt_ids,
        "PRED_IDs": seq.num_pred_ids,
        "GT_DETS": seq.num_gt_dets,
        "PRED_DETS": seq.num_pred_dets,
    }
    return _summarise(hota_metrics(seq), clear_metrics(seq, iou), identity_metrics(seq, iou), counts)


def _prepare(gt: np.ndarray, pred: np.ndarray, gt_format: str, ignore_zero_marked: bool) -> SequenceData:
    gt = as_rows(gt, "gt")
    return prepare_sequence(gt, pred, resolve_gt_format(gt, gt_format), ignore_zero_marked)


def evaluate_sequence(
    gt: np.ndarray,
    pred: np.ndarray,
    iou: float = 0.5,
    gt_format: str = "auto",
    ignore_zero_marked: bool = False,
) -> dict:
    """Metrics of one sequence (one camera).

    Args:
        gt: float (N, >=6) MOT ground-truth rows (``load_mot``); pred: float (M, >=6) prediction rows.
        iou: IoU threshold of CLEAR and identity matching (HOTA always uses alphas 0.05..0.95).
        gt_format: 'auto' (9 columns -> 'mot17', else 'mot15'), 'mot15', 'mot17' or 'mot20'.
        ignore_zero_marked: also drop predictions matched to ``consider == 0`` ground truth (not TrackEval).
    Returns:
        dict of floats (HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA, MOTA, MODA, MOTP, Recall,
        Precision, IDF1, IDP, IDR), ints (TP, FN, FP, IDSW, MT, PT, ML, Frag, IDTP, IDFP, IDFN, GT_IDs,
        PRED_IDs, GT_DETS, PRED_DETS) and ``per_alpha``: HOTA fields as float64 (19,) arrays.
    """
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou: expected a value in (0, 1], got {iou}")
    return _evaluate_prepared(_prepare(gt, pred, gt_format, ignore_zero_marked), iou)


def combine_results(results: list[dict]) -> dict:
    """Combine per-sequence results (``evaluate_sequence`` dicts) the way TrackEval combines sequences."""
    hota = combine_hota([r["per_alpha"] for r in results])
    clear = finish_clear({k: sum(r[k] for r in results) for k in CLEAR_COUNTS})
    ident = finish_identity({k: sum(r[k] for r in results) for k in ID_COUNTS})
    return _summarise(hota, clear, ident, {k: sum(r[k] for r in results) for k in OTHER_COUNTS})


def _multicamera(seqs: Mapping[str, SequenceData], iou: float) -> dict:
    """Multi-camera identity matching over prepared sequences whose ids are global (module docstring)."""
    gt_box, pred_box, pair_gt, pair_pred = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [], []
    for seq in seqs.values():
        gt_box += [seq.gt_id_values[g] for g in seq.gt_ids]
        pred_box += [seq.pred_id_values[p] for p in seq.pred_ids]
        g, p = overlap_pairs(seq, iou)
        pair_gt.append(seq.gt_id_values[g])
        pair_pred.append(seq.pred_id_values[p])
    gt_values, gt_box_idx = np.unique(np.concatenate(gt_box), return_inverse=True)
    pred_values, pred_box_idx = np.unique(np.concatenate(pred_box), return_inverse=True)
    extra = {"gt_ids": len(gt_values), "pred_ids": len(pred_values)}
    if len(gt_box_idx) == 0 or len(pred_box_idx) == 0:
        res = finish_identity({"IDTP": 0, "IDFN": len(gt_box_idx), "IDFP": len(pred_box_idx)})
    else:
        potential = np.zeros((len(gt_values), len(pred_values)))
        pg = np.searchsorted(gt_values, np.concatenate([np.zeros(0, np.int64), *pair_gt]))
        pp = np.searchsorted(pred_values, np.concatenate([np.zeros(0, np.int64), *pair_pred]))
        np.add.at(potential, (pg, pp), 1.0)
        gt_count = np.bincount(gt_box_idx, minlength=len(gt_values)).astype(np.float64)
        pred_count = np.bincount(pred_box_idx, minlength=len(pred_values)).astype(np.float64)
        res = id_assignment(potential, gt_count, pred_count)
    return {k.lower(): v for k, v in res.items()} | extra


def multicamera_idf1(
    gt_by_cam: Mapping[str, np.ndarray],
    pred_by_cam: Mapping[str, np.ndarray],
    iou: float = 0.5,
    gt_format: str = "auto",
    ignore_zero_marked: bool = False,
) -> dict:
    """Multi-camera IDF1 / IDP / IDR (Ristani et al. 2016) over cameras whose ids are global.

    Args:
        gt_by_cam, pred_by_cam: camera id -> MOT rows float (N, >=6); a camera absent from ``pred_by_cam``
            has no predictions, one absent from ``gt_by_cam`` is an error.
    Returns:
        dict with idf1, idp, idr (floats), idtp, idfp, idfn (box counts) and gt_ids, pred_ids (distinct ids).
    """
    extra = sorted(set(pred_by_cam) - set(gt_by_cam))
    if extra:
        raise ValueError(
            f"predictions for cameras without ground truth: {extra}, expected only {sorted(gt_by_cam)}"
        )
    empty = np.zeros((0, 10))
    seqs = {
        cam: _prepare(gt, pred_by_cam.get(cam, empty), gt_format, ignore_zero_marked)
        for cam, gt in gt_by_cam.items()
    }
    return _multicamera(seqs, iou)


def evaluate_folders(
    gt_dir: str | Path,
    pred_dir: str | Path,
    iou: float = 0.5,
    gt_format: str = "auto",
    ignore_zero_marked: bool = False,
) -> dict:
    """Evaluate folders of ``<camera_id>.txt`` files (``pred_dir`` may be a run folder holding ``mot/``).

    Returns:
        {"cameras": {camera_id: evaluate_sequence dict}, "combined": dict, "multicamera": multicamera dict}.
    """
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou: expected a value in (0, 1], got {iou}")
    pairs = pair_camera_files(gt_dir, pred_dir)
    seqs: dict[str, SequenceData] = {}
    cameras: dict[str, dict] = {}
    for cam, (gt_path, pred_path) in progress(pairs.items(), desc="evaluate", unit="camera"):
        if pred_path is None:
            logger.warning("camera %s: no prediction file in %s, counted as no predictions", cam, pred_dir)
        pred = load_mot(pred_path) if pred_path is not None else np.zeros((0, 10))
        seqs[cam] = _prepare(load_mot(gt_path), pred, gt_format, ignore_zero_marked)
        cameras[cam] = _evaluate_prepared(seqs[cam], iou)
    return {
        "cameras": cameras,
        "combined": combine_results(list(cameras.values())),
        "multicamera": _multicamera(seqs, iou),
        "pred_dir": str(pred_dir),
    }


def evaluate_paths(
    gt: str | Path,
    pred: str | Path,
    iou: float = 0.5,
    gt_format: str = "auto",
    ignore_zero_marked: bool = False,
) -> dict:
    """Files or folders, as the CLI takes them; a single file pair gives {"cameras": {stem: ...}, "combined"}."""
    gt, pred = Path(gt), Path(pred)
    if not gt.exists():
        raise FileNotFoundError(f"--gt: expected a MOT file or a folder of <camera_id>.txt, got missing {gt}")
    if not pred.exists():
        raise FileNotFoundError(f"--pred: expected a MOT file or a folder, got missing {pred}")
    if gt.is_dir():
        if not pred.is_dir():
            raise ValueError(f"--pred: expected a folder when --gt is a folder, got file {pred}")
        return evaluate_folders(gt, resolve_pred_dir(pred), iou, gt_format, ignore_zero_marked)
    pred_dir = None
    if pred.is_dir():  # a one-camera run folder (or folder of one file) scored against one ground-truth file
        pred_dir = resolve_pred_dir(pred)
        files = camera_files(pred_dir)
        if len(files) != 1:
            names = ", ".join(files) or "none"
            raise ValueError(
                f"--pred: expected a file, or a folder holding one camera's file, when --gt is a file; "
                f"{pred_dir} holds {len(files)} ({names}): pass one of them, or a ground-truth folder"
            )
        pred = next(iter(files.values()))
    res = evaluate_sequence(load_mot(gt), load_mot(pred), iou, gt_format, ignore_zero_marked)
    out = {"cameras": {pred.stem: res}, "combined": res}  # the prediction file is named after its camera
    return out if pred_dir is None else {**out, "pred_dir": str(pred_dir)}


def format_table(result: dict) -> str:
    """Text table of ``evaluate_paths`` output: ratios in percent, one row per camera, COMBINED, MTMC line."""
    rows = list(result["cameras"].items())
    if len(rows) > 1:
        rows.append(("COMBINED", result["combined"]))
    width = max(8, *(len(name) for name, _ in rows))
    cells = [f"{h:>9}" for h, _, _ in TABLE]
    lines = [f"{'camera':<{width}}" + "".join(cells)]
    for name, res in rows:
        vals = [f"{100 * res[k]:9.3f}" if ratio else f"{res[k]:9d}" for _, k, ratio in TABLE]
        lines.append(f"{name:<{width}}" + "".join(vals))
    mc = result.get("multicamera")
    if mc is not None:
        lines.append(
            f"multi-camera (Ristani MTMC): IDF1 {100 * mc['idf1']:.3f}  IDP {100 * mc['idp']:.3f}  "
            f"IDR {100 * mc['idr']:.3f}  (IDTP {mc['idtp']}, IDFP {mc['idfp']}, IDFN {mc['idfn']}; "
            f"{mc['gt_ids']} gt ids, {mc['pred_ids']} pred ids)"
        )
    if "pred_dir" in result:
        pred_dir = Path(result["pred_dir"])
        kind = "global ids" if pred_dir.name == "mot_global" else "ids as written"
        if pred_dir.name == "mot":
            kind = "per-camera tracker ids: the multi-camera line does not score cross-camera linking"
        lines.append(f"predictions: {pred_dir} ({kind})")
    return "\n".join(lines)


def _to_json(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", required=True, help="MOT ground-truth file or folder of <camera_id>.txt")
    parser.add_argument("--pred", required=True, help="MOT prediction file, folder, or run folder with mot/")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold for CLEAR / IDF1 (default 0.5)")
    parser.add_argument("--json", type=Path, help="also write all numbers to this JSON file")
    parser.add_argument("--gt-format", choices=GT_FORMATS, default="auto", help="ground-truth convention")
    parser.add_argument(
        "--ignore-zero-marked",
        action="store_true",
        help="drop predictions matched to consider==0 ground truth (TrackEval counts them as FP for MOT15)",
    )
    args = parser.parse_args(argv)
    setup_logging("INFO")
    try:
        result = evaluate_paths(args.gt, args.pred, args.iou, args.gt_format, args.ignore_zero_marked)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    print(format_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=_to_json))
        logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
