"""Choose which tracked boxes to embed, crop them, and embed the crops of several cameras in one call.

Embedding every box of every frame wastes the embedder on tiny, occluded or clipped boxes and on
near-duplicate crops of the same track. :func:`select_for_embedding` keeps boxes that are big enough,
not heavily covered by another box, mostly inside the image, and at most every k-th frame per track.
:class:`EmbedSelector` slows down on long tracks (:func:`adaptive_gaps`): the linker decides and revises a
tracklet on its first crops, later crops only refine a mean that has already settled.
:class:`EmbedBatcher` gathers the chosen crops of many cameras' frames into batches for one embedder call
each and writes the results back as the ``embedding`` column (NaN rows = not embedded).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping, Sequence

import numpy as np
import supervision as sv

from configs.schema import PipelineConfig
from detectors.boxes import clip_boxes, valid_boxes
from pipeline.records import Frame, with_embeddings

logger = logging.getLogger(__name__)

Embedder = Callable[[list[np.ndarray]], np.ndarray]


def _check_boxes(xyxy: np.ndarray, name: str = "xyxy") -> np.ndarray:
    xyxy = np.asarray(xyxy, dtype=np.float32)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"{name}: expected (_, 4), got {xyxy.shape}")
    return xyxy


def box_areas(xyxy: np.ndarray) -> np.ndarray:
    """(N,) float32 areas of (N, 4) xyxy boxes; inverted boxes have area 0."""
    wh = np.clip(xyxy[:, 2:4] - xyxy[:, 0:2], 0.0, None)
    return wh[:, 0] * wh[:, 1]


def coverage(xyxy: np.ndarray) -> np.ndarray:
    """(N,) float32: the largest fraction of each box's area covered by any single other box.

    Computed from the (N, N) intersection matrix by broadcasting; 0 for a lone box, 1 for a box lying
    entirely inside another one. Zero-area boxes count as fully covered.
    """
    xyxy = _check_boxes(xyxy)
    n = len(xyxy)
    if n < 2:
        return np.where(box_areas(xyxy) > 0, 0.0, 1.0).astype(np.float32)
    top_left = np.maximum(xyxy[:, None, :2], xyxy[None, :, :2])
    bottom_right = np.minimum(xyxy[:, None, 2:], xyxy[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    np.fill_diagonal(inter, 0.0)
    area = box_areas(xyxy)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(area[:, None] > 0, inter / area[:, None], 1.0)
    return frac.max(axis=1).astype(np.float32)


def inside_fraction(xyxy: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """(N,) float32 fraction of each box's area that lies inside an image of size ``image_hw``."""
    h, w = image_hw
    clipped = clip_boxes(xyxy, w, h)
    area = box_areas(xyxy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area > 0, box_areas(clipped) / area, 0.0).astype(np.float32)


def select_for_embedding(
    xyxy: np.ndarray,
    tracker_id: np.ndarray,
    frame_index: int,
    image_hw: tuple[int, int],
    *,
    min_height: float = 48,
    min_width: float = 16,
    max_overlap: float = 0.4,
    min_inside: float = 0.8,
    every_k: int | np.ndarray = 3,
    last_embedded: MutableMapping[int, int],
) -> np.ndarray:
    """(N,) bool mask of the boxes worth embedding on this frame.

    Args:
        xyxy: (N, 4) boxes in pixels. tracker_id: (N,) int track ids (per camera).
        frame_index: this frame's index. image_hw: (height, width) of the image.
        min_height, min_width: smallest box size in pixels.
        max_overlap: largest allowed fraction of a box's area covered by any other box.
        min_inside: smallest fraction of the box that must lie inside the image.
        every_k: a track is embedded at most once every ``every_k`` frames; an (N,) int array gives each
            box its own gap (:func:`adaptive_gaps`).
        last_embedded: track id -> frame index it was last selected; updated in place for the
            selected tracks (one small dict per camera, or use :class:`EmbedSelector`).
    """
    xyxy = _check_boxes(xyxy)
    tracker_id = np.asarray(tracker_id).astype(np.int64).reshape(-1)
    if tracker_id.shape != (len(xyxy),):
        raise ValueError(f"tracker_id: expected ({len(xyxy)},), got {tracker_id.shape}")
    gaps = np.asarray(every_k)
    if gaps.ndim not in (0, 1) or (gaps.ndim == 1 and gaps.shape != (len(xyxy),)):
        raise ValueError(f"every_k: expected an int or ({len(xyxy)},) ints, got shape {gaps.shape}")
    if gaps.size and gaps.min() < 1:
        raise ValueError(f"every_k: expected an int >= 1, got {every_k}")
    if len(xyxy) == 0:
        return np.zeros(0, dtype=bool)
    wh = xyxy[:, 2:4] - xyxy[:, 0:2]
    keep = (wh[:, 1] >= min_height) & (wh[:, 0] >= min_width)
    keep &= coverage(xyxy) <= max_overlap
    keep &= inside_fraction(xyxy, image_hw) >= min_inside
    # A handful of boxes per frame: dict lookups are cheaper than keeping sorted arrays in sync.
    last = np.array([last_embedded.get(int(t), np.iinfo(np.int64).min // 2) for t in tracker_id], dtype=np.int64)
    keep &= frame_index - last >= gaps
    # Two boxes claiming one track id (a tracker bug) must not both be embedded: keep the first.
    _, first = np.unique(tracker_id, return_index=True)
    unique_mask = np.zeros(len(xyxy), dtype=bool)
    unique_mask[first] = True
    keep &= unique_mask
    last_embedded.update({int(t): int(frame_index) for t in tracker_id[keep]})
    return keep


def adaptive_gaps(crops: np.ndarray, every_k: int, slow_after: int, max_every_k: int) -> np.ndarray:
    """(N,) int64 frames to wait before the next crop of tracks that have ``crops`` (N,) crops so far.

    ``every_k`` until a track has ``slow_after`` crops, then growing with the crops it has
    (``every_k * crops / slow_after``, so a track's crop count grows like the square root of its length)
    up to ``max_every_k``. ``slow_after`` 0 keeps ``every_k`` for good.
    """
    crops = np.asarray(crops, dtype=np.int64)
    if slow_after == 0:
        return np.full(crops.shape, every_k, dtype=np.int64)
    grown = (every_k * crops) // slow_after
    return np.clip(grown, every_k, max(every_k, max_every_k)).astype(np.int64)


class EmbedSelector:
    """Per-camera state for :func:`select_for_embedding` (same options), forgetting tracks unseen for
    ``forget_after`` frames; ``slow_after`` and ``max_every_k`` stretch the gap of long tracks
    (:func:`adaptive_gaps`; ``slow_after=0``: every ``every_k`` frames for good)."""

    def __init__(
        self,
        *,
        min_height: float = 48,
        min_width: float = 16,
        max_overlap: float = 0.4,
        min_inside: float = 0.8,
        every_k: int = 3,
        slow_after: int = 0,
        max_every_k: int = 24,
        forget_after: int = 300,
    ) -> None:
        if every_k < 1 or slow_after < 0 or max_every_k < every_k:
            raise ValueError(
                f"expected every_k >= 1, slow_after >= 0 and max_every_k >= every_k, got every_k={every_k}, "
                f"slow_after={slow_after}, max_every_k={max_every_k}"
            )
        self.options = {
            "min_height": min_height,
            "min_width": min_width,
            "max_overlap": max_overlap,
            "min_inside": min_inside,
        }
        self.every_k, self.slow_after, self.max_every_k = every_k, slow_after, max_every_k
        self.forget_after = forget_after
        self.last_embedded: dict[int, int] = {}
        self.crops: dict[int, int] = {}  # track id -> crops selected so far

    def __call__(self, detections: sv.Detections, frame: Frame) -> np.ndarray:
        """(N,) bool mask of the boxes of ``detections`` (with tracker_id) to embed on ``frame``."""
        if detections.tracker_id is None:
            raise ValueError("detections: expected a tracker_id column (run the tracker first), got None")
        ids = np.asarray(detections.tracker_id).astype(np.int64).reshape(-1)
        counts = np.array([self.crops.get(t, 0) for t in ids.tolist()], dtype=np.int64)
        mask = select_for_embedding(
            detections.xyxy,
            ids,
            frame.index,
            frame.image.shape[:2],
            every_k=adaptive_gaps(counts, self.every_k, self.slow_after, self.max_every_k),
            last_embedded=self.last_embedded,
            **self.options,
        )
        for t in ids[mask].tolist():
            self.crops[t] = self.crops.get(t, 0) + 1
        if len(self.last_embedded) > 256:
            stale = [t for t, f in self.last_embedded.items() if frame.index - f > self.forget_after]
            for t in stale:
                del self.last_embedded[t]
                self.crops.pop(t, None)
        return mask


def crop_boxes(image: np.ndarray, xyxy: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut boxes out of ``image`` (H, W, C), clipped to the image.

    Returns ``(crops, valid)``: ``valid`` (N,) bool flags boxes with a non-empty crop, and ``crops`` holds
    one contiguous copy per valid box (in box order); empty boxes are skipped.
    """
    xyxy = _check_boxes(xyxy)
    h, w = image.shape[:2]
    pixels = clip_boxes(np.concatenate([np.floor(xyxy[:, :2]), np.ceil(xyxy[:, 2:])], axis=1), w, h)
    x1, y1, x2, y2 = pixels.astype(np.int64).T
    valid = np.isfinite(xyxy).all(axis=1) & valid_boxes(pixels)
    crops = [np.ascontiguousarray(image[b:d, a:c]) for a, b, c, d in zip(x1[valid], y1[valid], x2[valid], y2[valid])]
    return crops, valid


def quality(
    xyxy: np.ndarray, overlap: np.ndarray, confidence: np.ndarray | None, *, full_height: float = 128.0
) -> np.ndarray:
    """(N,) float32 crop quality in [0, 1]: confidence x (1 - overlap) x min(1, height / full_height)."""
    xyxy = _check_boxes(xyxy)
    n = len(xyxy)
    overlap = np.asarray(overlap, dtype=np.float32).reshape(-1)
    if overlap.shape != (n,):
        raise ValueError(f"overlap: expected ({n},), got {overlap.shape}")
    conf = np.ones(n, np.float32) if confidence is None else np.asarray(confidence, np.float32).reshape(-1)
    if conf.shape != (n,):
        raise ValueError(f"confidence: expected ({n},), got {conf.shape}")
    size = np.clip((xyxy[:, 3] - xyxy[:, 1]) / full_height, 0.0, 1.0)
    q = np.clip(conf, 0.0, 1.0) * np.clip(1.0 - overlap, 0.0, 1.0) * size
    return np.nan_to_num(q, nan=0.0).astype(np.float32)


def detections_quality(detections: sv.Detections) -> np.ndarray:
    """(N,) float32 :func:`quality` of every box of ``detections``."""
    return quality(detections.xyxy, coverage(detections.xyxy), detections.confidence)


class EmbedBatcher:
    """Embed the selected boxes of several cameras' frames with one embedder call per batch.

    ``embedder`` is any callable ``list[crops] -> (N, D) float32``. Rows the embedder returns with a
    non-finite value (or zero norm) are rejected: those boxes count as not embedded and a warning is
    logged. Results come back as the ``embedding`` column, NaN in rows that were not embedded.
    """

    def __init__(self, embedder: Embedder, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: expected an int >= 1, got {max_batch}")
        self.embedder = embedder
        self.max_batch = max_batch
        self.n_rejected = 0

    def __call__(
        self, frames: Sequence[Frame], detections: Sequence[sv.Detections], masks: Sequence[np.ndarray]
    ) -> list[sv.Detections]:
        """Return one new Detections per input; those with at least one embedded box carry the column.

        Args:
            frames, detections, masks: parallel lists, one entry per (camera, frame); ``masks[i]`` (N_i,)
                bool chooses the boxes of ``detections[i]`` to embed (e.g. from :class:`EmbedSelector`).
        """
        if not len(frames) == len(detections) == len(masks):
            raise ValueError(
                f"frames, detections, masks: expected equal lengths, got {len(frames)}, {len(detections)}, {len(masks)}"
            )
        crops: list[np.ndarray] = []
        owners: list[np.ndarray] = []  # per input: indices of its boxes that produced a crop
        for frame, dets, mask in zip(frames, detections, masks):
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (len(dets),):
                raise ValueError(f"mask for camera {frame.camera_id}: expected ({len(dets)},), got {mask.shape}")
            chosen = np.flatnonzero(mask)
            frame_crops, valid = crop_boxes(frame.image, dets.xyxy[chosen])
            crops.extend(frame_crops)
            owners.append(chosen[valid])
        embeddings = self._embed(crops)
        return self._scatter(detections, owners, embeddings)

    def _embed(self, crops: list[np.ndarray]) -> np.ndarray | None:
        if not crops:
            return None
        parts = []
        for start in range(0, len(crops), self.max_batch):
            batch = crops[start : start + self.max_batch]
            out = np.asarray(self.embedder(batch), dtype=np.float32)
            if out.ndim != 2 or out.shape[0] != len(batch):
                raise ValueError(f"embedder output: expected ({len(batch)}, D), got {out.shape}")
            parts.append(out)
        embeddings = np.concatenate(parts, axis=0)
        bad = ~usable_rows(embeddings)
        if bad.any():
            self.n_rejected += int(bad.sum())
            logger.warning(
                "embedder returned %d non-finite or zero embeddings of %d; boxes left unembedded",
                int(bad.sum()),
                len(embeddings),
            )
            embeddings[bad] = np.nan
        return embeddings

    @staticmethod
    def _scatter(
        detections: Sequence[sv.Detections], owners: list[np.ndarray], emb: np.ndarray | None
    ) -> list[sv.Detections]:
        out = []
        start = 0
        for dets, rows in zip(detections, owners):
            part = None if emb is None else emb[start : start + len(rows)]
            start += len(rows)
            if part is None or len(rows) == 0 or not usable_rows(part).any():
                out.append(dets[np.ones(len(dets), dtype=bool)])  # a copy, never the caller's object
                continue
            column = np.full((len(dets), part.shape[1]), np.nan, dtype=np.float32)
            column[rows] = part
            out.append(with_embeddings(dets, column))
        return out


def usable_rows(embeddings: np.ndarray) -> np.ndarray:
    """(N,) bool: rows of an (N, D) embedding array that are finite and non-zero."""
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings: expected (N, D), got {embeddings.shape}")
    finite = np.isfinite(embeddings).all(axis=1)
    return finite & (np.abs(np.where(np.isfinite(embeddings), embeddings, 0)).sum(axis=1) > 0)


def build_embedder(config: PipelineConfig) -> Embedder | None:
    """The ReID embedder of ``config.embed`` (None when embedding is off)."""
    if config.embed is None:
        return None
    from reid import load_embedder

    e = config.embed
    return load_embedder(
        e.weights, device=e.device, arch=e.arch, batch_size=e.batch_size, flip=e.flip, backend=e.backend,
        threads=e.threads, precision=e.precision,
    )  # fmt: skip
