"""The pipeline's harvested crops: a folder of JPEG crops plus ``manifest.csv``, one row a crop.

Columns (ARCHITECTURE.md): ``path, camera_id, track_id, tracklet_id, frame_index, timestamp, x1, y1, x2,
y2, confidence, global_id``. ``path`` is relative to the manifest's folder (or absolute). No person labels:
``global_id`` is the pipeline's own linking output, kept for analysis, and not a ground-truth identity.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reid.console import progress
from reid.data.images import ImageStore

if TYPE_CHECKING:
    from reid.data.datasets import UnlabeledImages

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "path",
    "camera_id",
    "track_id",
    "tracklet_id",
    "frame_index",
    "timestamp",
    "x1",
    "y1",
    "x2",
    "y2",
    "confidence",
    "global_id",
)
_INT_COLUMNS = ("track_id", "tracklet_id", "frame_index", "global_id")
_FLOAT_COLUMNS = ("timestamp", "x1", "y1", "x2", "y2", "confidence")


def _read_rows(manifest: Path) -> list[dict[str, str]]:
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest: expected a manifest.csv file, got missing path {manifest}")
    try:
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in MANIFEST_COLUMNS if c not in header]
            if missing:
                raise ValueError(
                    f"{manifest}: expected columns {list(MANIFEST_COLUMNS)}, missing {missing} (got {header})"
                )
            reader.fieldnames = header
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{manifest}: expected a UTF-8 CSV manifest, could not read it: {exc}") from exc
    if not rows:
        raise ValueError(f"{manifest}: expected at least one crop row, got an empty manifest")
    return rows


def _column(rows: list[dict[str, str]], name: str, dtype: type, manifest: Path) -> np.ndarray:
    values = []
    for i, row in enumerate(rows):
        text = (row.get(name) or "").strip()
        if name == "global_id" and text == "":
            text = "-1"
        try:
            values.append(dtype(float(text)) if dtype is int else dtype(text))
        except ValueError:
            raise ValueError(
                f"{manifest}: row {i + 2} column {name}: expected a number, got {row.get(name)!r}"
            ) from None
    return np.asarray(values, dtype=np.int64 if dtype is int else np.float32)


class HarvestedCrops:
    """Crops listed in a pipeline ``manifest.csv``, with per-crop arrays aligned to ``paths``.

    Args:
        manifest: path to ``manifest.csv`` (or the folder holding it).
        verify: decode every crop once and drop those that fail (counted in ``skipped`` and logged);
            without it only missing files are dropped.
        num_threads: decoding threads for ``verify``.

    Attributes:
        paths: (N,) crop keys relative to ``root``; ``camera_names``: sorted distinct camera ids;
        camids: (N,) int64 index into ``camera_names``; ``track_ids``, ``tracklet_ids``, ``frame_index``,
        ``global_ids``: (N,) int64; ``timestamps``, ``confidence``: (N,) float32; ``boxes``: (N, 4) float32
        xyxy in the source frame; ``skipped``: crops dropped because they were missing or undecodable.

    Raises:
        FileNotFoundError: no manifest at that path.
        ValueError: the manifest is empty, unreadable, misses columns, has non-numeric values, or none of
            its crops can be read.
    """

    def __init__(self, manifest: str | os.PathLike, verify: bool = True, num_threads: int = 4) -> None:
        manifest = Path(manifest)
        if manifest.is_dir():
            manifest = manifest / "manifest.csv"
        self.manifest = manifest
        rows = _read_rows(manifest)
        self.store = ImageStore(manifest.parent)
        paths = [(r.get("path") or "").strip() for r in rows]
        cams = [(r.get("camera_id") or "").strip() for r in rows]
        ints = {c: _column(rows, c, int, manifest) for c in _INT_COLUMNS}  # parse (and fail) before decoding
        floats = {c: _column(rows, c, float, manifest) for c in _FLOAT_COLUMNS}
        keep = self._readable(paths, verify, num_threads)
        self.skipped = int((~keep).sum())
        if self.skipped:
            bad = [p for p, k in zip(paths, keep) if not k][:3]
            logger.warning(
                "%s: skipped %d of %d crops that are missing or undecodable, e.g. %s",
                manifest,
                self.skipped,
                len(paths),
                bad,
            )
        if not keep.any():
            raise ValueError(f"{manifest}: expected readable crop images, got none of {len(paths)} readable")
        self.paths = [p for p, k in zip(paths, keep) if k]
        cams = [c for c, k in zip(cams, keep) if k]
        self.camera_names = sorted(set(cams))
        lookup = {c: i for i, c in enumerate(self.camera_names)}
        self.camids = np.asarray([lookup[c] for c in cams], dtype=np.int64)
        ints = {c: a[keep] for c, a in ints.items()}
        floats = {c: a[keep] for c, a in floats.items()}
        self.track_ids, self.tracklet_ids = ints["track_id"], ints["tracklet_id"]
        self.frame_index, self.global_ids = ints["frame_index"], ints["global_id"]
        self.timestamps, self.confidence = floats["timestamp"], floats["confidence"]
        self.boxes = np.stack([floats[c] for c in ("x1", "y1", "x2", "y2")], axis=1)

    def _readable(self, paths: list[str], verify: bool, num_threads: int) -> np.ndarray:
        """(N,) bool: the crop exists (and decodes, with ``verify``)."""

        def ok(key: str) -> bool:
            if not key:
                return False
            if not verify:
                return (self.store.root / key).is_file()
            try:
                self.store.read(key)
                return True
            except (OSError, ValueError):
                return False

        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            flags = list(
                progress(
                    pool.map(ok, paths),
                    total=len(paths),
                    desc="checking crops",
                    enabled=len(paths) >= 2000,
                    leave=False,
                )
            )
        return np.asarray(flags, dtype=bool)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        """Decode crop ``index`` to (H, W, 3) uint8 BGR."""
        return self.store.read(self.paths[index])

    def unlabeled(self, transform: Callable | None = None) -> UnlabeledImages:
        """A label-free dataset view yielding ``(image, camid, index)``; tracklet ids ride along."""
        from reid.data.datasets import UnlabeledImages

        return UnlabeledImages(self.store, self.paths, self.camids, transform, tracklet_ids=self.tracklet_ids)

    def __repr__(self) -> str:
        return (
            f"HarvestedCrops({str(self.manifest)!r}: {len(self)} crops, {len(self.camera_names)} cameras, "
            f"{len(np.unique(self.tracklet_ids))} tracklets, {self.skipped} skipped)"
        )
