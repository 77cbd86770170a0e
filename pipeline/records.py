"""The record that flows through the pipeline: a ``Frame`` per camera image and ``sv.Detections``.

The pipeline stores its own per-box columns in ``Detections.data`` under the named keys below and only
through these helpers, so no stage invents ad-hoc keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv

EMBEDDING_KEY = "embedding"
GLOBAL_ID_KEY = "global_id"
TRACKLET_ID_KEY = "tracklet_id"


@dataclass(frozen=True)
class Frame:
    """One decoded image of one camera.

    Attributes:
        camera_id: the camera's id from the config.
        index: 0-based frame index in the source (after no stride: the source's own numbering).
        timestamp: seconds since the source started (from the container, or index / fps).
        image: HxWx3 uint8 BGR.
    """

    camera_id: str
    index: int
    timestamp: float
    image: np.ndarray

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", type(img).__name__)
            raise ValueError(f"Frame.image: expected uint8 array (H, W, 3), got {dtype} {shape}")


def empty_detections() -> sv.Detections:
    """Detections with no boxes but the columns every stage expects."""
    return sv.Detections(
        xyxy=np.zeros((0, 4), dtype=np.float32),
        confidence=np.zeros((0,), dtype=np.float32),
        class_id=np.zeros((0,), dtype=int),
    )


def with_embeddings(detections: sv.Detections, embeddings: np.ndarray) -> sv.Detections:
    """Return a copy of ``detections`` carrying ``embeddings`` (N, D) float32 as a named column."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(detections):
        raise ValueError(f"embeddings: expected ({len(detections)}, D), got {embeddings.shape}")
    out = _copy(detections)
    out.data[EMBEDDING_KEY] = embeddings
    return out


def embeddings_of(detections: sv.Detections) -> np.ndarray | None:
    """The (N, D) embedding column, or None when the detections were not embedded."""
    return detections.data.get(EMBEDDING_KEY)


def with_global_ids(detections: sv.Detections, global_ids: np.ndarray) -> sv.Detections:
    """Return a copy of ``detections`` carrying ``global_ids`` (N,) int64 (-1 = unknown)."""
    return with_ids(detections, global_ids=global_ids)


def global_ids_of(detections: sv.Detections) -> np.ndarray:
    """The (N,) int64 global-id column; all -1 when linking has not run."""
    ids = detections.data.get(GLOBAL_ID_KEY)
    if ids is None:
        return np.full(len(detections), -1, dtype=np.int64)
    return np.asarray(ids, dtype=np.int64)


def with_tracklet_ids(detections: sv.Detections, tracklet_ids: np.ndarray) -> sv.Detections:
    """Return a copy of ``detections`` carrying ``tracklet_ids`` (N,) int64: the run-wide id of each box's
    tracklet, minted once by the identity stage (or, without one, by
    :class:`pipeline.identity.tracklets.TrackletNumbers`) and carried by every output row that comes from the box
    (tracks, crops' manifest, tracklets.npz)."""
    return with_ids(detections, tracklet_ids=tracklet_ids)


def with_ids(
    detections: sv.Detections, *, global_ids: np.ndarray | None = None, tracklet_ids: np.ndarray | None = None
) -> sv.Detections:
    """One copy of ``detections`` carrying the given (N,) int64 id columns (the identity stage sets both)."""
    out = _copy(detections)
    for key, ids in ((GLOBAL_ID_KEY, global_ids), (TRACKLET_ID_KEY, tracklet_ids)):
        if ids is None:
            continue
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape != (len(detections),):
            raise ValueError(f"{key}s: expected ({len(detections)},), got {ids.shape}")
        out.data[key] = ids
    return out


def tracklet_ids_of(detections: sv.Detections) -> np.ndarray | None:
    """The (N,) int64 tracklet-id column, or None when no stage minted tracklet ids."""
    ids = detections.data.get(TRACKLET_ID_KEY)
    return None if ids is None else np.asarray(ids, dtype=np.int64)


def _copy(detections: sv.Detections) -> sv.Detections:
    return sv.Detections(
        xyxy=detections.xyxy.copy(),
        mask=None if detections.mask is None else detections.mask.copy(),
        confidence=None if detections.confidence is None else detections.confidence.copy(),
        class_id=None if detections.class_id is None else detections.class_id.copy(),
        tracker_id=None if detections.tracker_id is None else detections.tracker_id.copy(),
        data={k: np.copy(v) for k, v in detections.data.items()},
        metadata=dict(detections.metadata),
    )
