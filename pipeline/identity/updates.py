"""What crosses the identity boundary: per camera frame, the tracked boxes' spans and the chosen embeddings.

The embedding side (crop choice, ReID) runs where the frames are (the pipeline thread, or a camera worker
of the Ray engine); the linking side (tracklets, gallery, linker, identity record) needs only this:
track ids, boxes, box quality and the few embedded rows. Never the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv

from pipeline.embed import detections_quality
from pipeline.records import embeddings_of, with_embeddings


@dataclass(frozen=True)
class TrackletUpdate:
    """One camera frame's tracked boxes for the tracklet store.

    Attributes:
        camera_id, frame_index, timestamp: where and when.
        track_ids: (N,) int64 tracker ids; xyxy: (N, 4) float32 boxes; quality: (N,) float32 crop quality.
        rows: (K,) int64 which of the N boxes were embedded; embeddings: (K, D) float32 their unit rows.
    """

    camera_id: str
    frame_index: int
    timestamp: float
    track_ids: np.ndarray
    xyxy: np.ndarray
    quality: np.ndarray
    rows: np.ndarray
    embeddings: np.ndarray

    @classmethod
    def of(cls, camera_id: str, frame_index: int, timestamp: float, detections: sv.Detections) -> TrackletUpdate:
        """The update of tracked (and possibly embedded: NaN rows were not) ``detections``."""
        emb = embeddings_of(detections)
        rows = np.zeros(0, np.int64) if emb is None else np.flatnonzero(np.isfinite(emb).all(axis=1))
        dim = 0 if emb is None else emb.shape[1]
        return cls(
            camera_id=camera_id, frame_index=int(frame_index), timestamp=float(timestamp),
            track_ids=np.asarray(detections.tracker_id, np.int64).reshape(-1),
            xyxy=np.asarray(detections.xyxy, np.float32).reshape(-1, 4),
            quality=np.asarray(detections_quality(detections), np.float32).reshape(-1) if len(detections) else
            np.zeros(0, np.float32),
            rows=rows, embeddings=np.zeros((0, dim), np.float32) if emb is None else emb[rows].astype(np.float32),
        )  # fmt: skip

    def detections(self) -> sv.Detections:
        """The boxes as Detections with the ``embedding`` column (NaN rows where not embedded) when any was."""
        dets = sv.Detections(xyxy=self.xyxy.reshape(-1, 4), tracker_id=self.track_ids)
        if len(self.rows) == 0:
            return dets
        emb = np.full((len(dets), self.embeddings.shape[1]), np.nan, np.float32)
        emb[self.rows] = self.embeddings
        return with_embeddings(dets, emb)

    @property
    def nbytes(self) -> int:
        """Bytes of its arrays (what it costs to send, give or take the header)."""
        arrays = (self.track_ids, self.xyxy, self.quality, self.rows, self.embeddings)
        return sum(a.nbytes for a in arrays) + len(self.camera_id) + 16
