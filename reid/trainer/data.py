"""The trainer's data: label-free training crops with their free signals, and a labelled split for scoring.

The training set is an ``UnlabeledImages`` view: it yields ``(image, camera, index)``, never a person id.
Market-1501's training crops are ordered by their file name *without* the person-id prefix, so the run
does not even depend on the ids' order on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reid.data.market1501 import JUNK_PID

if TYPE_CHECKING:
    from reid.data.datasets import UnlabeledImages
    from reid.trainer.config import TrainConfig


@dataclass(frozen=True)
class EvalSet:
    """A labelled query/gallery split: images without labels plus the (N,) int64 ids used for scoring only."""

    query: UnlabeledImages
    gallery: UnlabeledImages
    q_pids: np.ndarray
    q_cams: np.ndarray
    g_pids: np.ndarray
    g_cams: np.ndarray


@dataclass(frozen=True)
class TrainData:
    """The label-free training set and its free signals.

    Attributes:
        train: crops yielding ``(image, camera, index)``. cameras: (N,) int64 camera index.
        tracklets: (N,) int64 tracklet id (-1 = none) or None. frames: (N,) int64 frame key within a
        camera (two crops of one camera with one key are two people) or None. skipped: undecodable crops
        dropped. evaluation: labelled query/gallery or None. description: for logs and the checkpoint.
        timestamps: (N,) float64 seconds on the cameras' shared clock, or None (no hand-over timing).
        links: (L, 2) int64 tracklet id pairs that are one person by evidence other than appearance
            (``--links``), or None. boxes: (N, 4) float64 xyxy of each crop's box in its frame, or None.
    """

    train: UnlabeledImages
    cameras: np.ndarray
    tracklets: np.ndarray | None
    frames: np.ndarray | None
    skipped: int
    evaluation: EvalSet | None
    description: str
    timestamps: np.ndarray | None = None
    links: np.ndarray | None = None
    boxes: np.ndarray | None = None


def read_links(path: str | Path) -> np.ndarray:
    """(L, 2) int64 tracklet id pairs of a links CSV (header ``tracklet_a,tracklet_b``, more columns allowed).

    Raises:
        FileNotFoundError: no such file. ValueError: another header, or a row that is not two integer ids.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"links: expected a CSV of tracklet_a,tracklet_b pairs, {path} does not exist")
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or header[:2] != ["tracklet_a", "tracklet_b"]:
            raise ValueError(f"{path}: expected a header starting tracklet_a,tracklet_b, got {header}")
        pairs = []
        for line, row in enumerate(reader, start=2):
            try:
                pairs.append((int(row[0]), int(row[1])))
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{line}: expected two integer tracklet ids, got {row}") from None
    return np.array(pairs, np.int64).reshape(-1, 2)


def _label_free_name(path: str) -> str:
    """Market file name without the person id: ``0002_c1s1_000451_03.jpg`` -> ``c1s1_000451_03.jpg``."""
    return path.rsplit("/", 1)[-1].split("_", 1)[-1]


def _subset(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``max_images`` of ``n`` (all when None or larger)."""
    if max_images is None or max_images >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_images, replace=False))


def load_market(cfg: TrainConfig) -> TrainData:
    """Market-1501 ``bounding_box_train`` without labels; query/gallery with labels for scoring."""
    from reid.data.datasets import UnlabeledImages
    from reid.data.market1501 import Market1501

    market = Market1501(cfg.root)
    names = np.array([_label_free_name(r.path) for r in market.train])
    records = [market.train[i] for i in np.argsort(names, kind="stable")]
    records = [records[i] for i in _subset(len(records), cfg.max_images, cfg.seed)]
    cameras = np.array([r.camid for r in records], dtype=np.int64)
    train = UnlabeledImages(market.store, [r.path for r in records], cameras)
    # No cannot-link from Market's frame numbers: its DPM boxes include duplicates of one person in one
    # frame (796 of the 3,508 same-camera same-frame pairs of bounding_box_train are one person).
    return TrainData(train, cameras, None, None, 0, _market_eval_set(market), f"market1501 {cfg.root}")


def _market_eval_set(market) -> EvalSet:
    """Query against the gallery without its junk images (pid -1: never scored, so never embedded)."""
    from reid.data.datasets import UnlabeledImages

    q_pids, q_cams = market.labels("query")
    g_pids, g_cams = market.labels("gallery")
    keep = np.flatnonzero(g_pids != JUNK_PID)
    gallery = UnlabeledImages(market.store, [market.gallery[i].path for i in keep], g_cams[keep])
    return EvalSet(market.unlabeled("query"), gallery, q_pids, q_cams, g_pids[keep], g_cams[keep])


def load_manifest(cfg: TrainConfig) -> TrainData:
    """Harvested crops of a pipeline ``manifest.csv`` (undecodable crops are skipped and counted)."""
    from reid.data.datasets import UnlabeledImages
    from reid.data.manifest import HarvestedCrops

    crops = HarvestedCrops(cfg.manifest)
    keep = _subset(len(crops), cfg.max_images, cfg.seed)
    cameras, tracklets = crops.camids[keep], crops.tracklet_ids[keep]
    train = UnlabeledImages(crops.store, [crops.paths[i] for i in keep], cameras, tracklet_ids=tracklets)
    return TrainData(
        train, cameras, tracklets, crops.frame_index[keep], crops.skipped, None, f"manifest {cfg.manifest}",
        crops.timestamps[keep].astype(np.float64), None if cfg.links is None else read_links(cfg.links),
        crops.boxes[keep].astype(np.float64),
    )
