"""Reading MOTChallenge text files and pairing ground-truth with prediction files per camera.

Row layouts (one box a row, comma- or whitespace-separated, frames and ids are arbitrary integers):

- MOT15 ground truth: ``frame,id,x,y,w,h,consider,wx,wy,-1`` (10 columns, no class column);
- MOT16/17/20 ground truth: ``frame,id,x,y,w,h,consider,class,visibility`` (9 columns);
- predictions: ``frame,id,x,y,w,h,conf,-1,-1,-1`` (only the first 6 columns are read).

Boxes are ``x, y`` (top-left) ``w, h`` in pixels.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Literal

import numpy as np

GtFormat = Literal["auto", "mot15", "mot17", "mot20"]
GT_FORMATS: tuple[str, ...] = ("auto", "mot15", "mot17", "mot20")
MOT_COLUMNS = 10
_TRAILING_DELIMITER = re.compile(r"[,\t\r ]+$", flags=re.MULTILINE)


def load_mot(path: str | Path) -> np.ndarray:
    """Read a MOTChallenge text file.

    Returns:
        float64 array (N, C) with C >= 6 columns in file order; an empty file gives shape (0, 10).
    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: ragged rows, non-numeric values, fewer than 6 columns, or non-integer frame/id values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MOT file not found: expected a file at {path}")
    text = _TRAILING_DELIMITER.sub("", path.read_text())
    if not text.strip():
        return np.zeros((0, MOT_COLUMNS), dtype=np.float64)
    first = text.lstrip().split("\n", 1)[0]
    delimiter = "," if "," in first else None
    try:
        rows = np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: expected rows of numbers with equal column counts, got: {err}") from err
    if rows.shape[1] < 6:
        raise ValueError(f"{path}: expected at least 6 columns (frame,id,x,y,w,h), got {rows.shape[1]}")
    frame_id = rows[:, :2]
    bad = ~np.isfinite(frame_id) | (frame_id != np.round(frame_id))
    if bad.any():
        line = int(np.nonzero(bad.any(axis=1))[0][0]) + 1
        raise ValueError(
            f"{path}: expected integer frame and id, got {rows[line - 1, :2].tolist()} (row {line})"
        )
    return rows


def resolve_gt_format(rows: np.ndarray, gt_format: GtFormat = "auto") -> Literal["mot15", "mot17", "mot20"]:
    """Pick the ground-truth convention: 'auto' means 9 columns -> 'mot17' (has a class column), else 'mot15'."""
    if gt_format not in GT_FORMATS:
        raise ValueError(f"gt_format: expected one of {GT_FORMATS}, got {gt_format!r}")
    if gt_format != "auto":
        if gt_format != "mot15" and rows.shape[1] < 8:
            raise ValueError(f"gt_format {gt_format!r} needs a class column 8, got {rows.shape[1]} columns")
        return gt_format
    return "mot17" if rows.shape[1] == 9 else "mot15"


def resolve_pred_dir(path: str | Path) -> Path:
    """A prediction folder: ``path`` itself, or for a run folder its ``mot_global/`` (global ids, written when
    the run linked identities) and otherwise its ``mot/`` (per-camera tracker ids)."""
    path = Path(path)
    for name in ("mot_global", "mot"):
        if (path / name).is_dir():
            return path / name
    return path


def camera_files(folder: str | Path) -> dict[str, Path]:
    """Map camera id (file stem) -> path for every ``<camera_id>.txt`` directly inside ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"expected a folder of <camera_id>.txt files, got {folder}")
    return {p.stem: p for p in sorted(folder.glob("*.txt")) if p.is_file()}


def pair_camera_files(gt_dir: str | Path, pred_dir: str | Path) -> dict[str, tuple[Path, Path | None]]:
    """Pair ground-truth and prediction files by camera id.

    A camera missing from the predictions maps to ``None`` (no predictions); a prediction file with no
    ground-truth partner is an error naming it.
    """
    gt_files = camera_files(gt_dir)
    if not gt_files:
        raise ValueError(f"expected <camera_id>.txt ground-truth files in {gt_dir}, found none")
    pred_files = camera_files(resolve_pred_dir(pred_dir))
    extra = sorted(set(pred_files) - set(gt_files))
    if extra:
        raise ValueError(
            f"prediction files without ground truth: {', '.join(pred_files[c].name for c in extra)} "
            f"(expected only cameras {sorted(gt_files)})"
        )
    return {cam: (gt_path, pred_files.get(cam)) for cam, gt_path in gt_files.items()}
