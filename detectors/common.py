"""Helpers every detector backend shares: input checks and the one way to build its output record."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv

from detectors.boxes import clip_boxes, valid_boxes


def validate_images(images: Sequence[np.ndarray]) -> None:
    """Raise ValueError unless every image is a non-empty uint8 array (H, W, 3) (BGR)."""
    if isinstance(images, np.ndarray):
        raise ValueError(f"images: expected a list of uint8 arrays (H, W, 3), got one array of shape {images.shape}")
    for i, img in enumerate(images):
        ok = (
            isinstance(img, np.ndarray)
            and img.dtype == np.uint8
            and img.ndim == 3
            and img.shape[2] == 3
            and img.shape[0] > 0
            and img.shape[1] > 0
        )
        if not ok:
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", type(img).__name__)
            raise ValueError(f"images[{i}]: expected uint8 array (H, W, 3) with H, W > 0, got {dtype} {shape}")


def resolve_camera_ids(camera_ids: Sequence[str] | None, count: int) -> list[str]:
    """``camera_ids`` as a list of ``count`` strings; None means image ``i`` comes from camera ``"i"``."""
    if camera_ids is None:
        return [str(i) for i in range(count)]
    if isinstance(camera_ids, str) or len(camera_ids) != count:
        got = repr(camera_ids) if isinstance(camera_ids, str) else f"{len(camera_ids)} ids"
        raise ValueError(f"camera_ids: expected {count} ids (one per image), got {got}")
    return [str(c) for c in camera_ids]


def make_detections(
    xyxy: np.ndarray,
    confidence: np.ndarray,
    class_id: np.ndarray,
    image_shape: tuple[int, ...],
) -> sv.Detections:
    """Build the detector output record: boxes clipped to the image, zero-area boxes dropped.

    Args:
        xyxy: (N, 4) boxes in pixels, any float or int dtype.
        confidence: (N,) scores in [0, 1].
        class_id: (N,) integer class ids.
        image_shape: the image's shape, (H, W) or (H, W, C).

    Returns:
        ``sv.Detections`` with ``xyxy`` float32 (M, 4), ``confidence`` float32 (M,), ``class_id`` int64 (M,),
        M <= N.
    """
    boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    height, width = image_shape[:2]
    boxes = clip_boxes(boxes, width, height)
    keep = valid_boxes(boxes)
    return sv.Detections(
        xyxy=np.ascontiguousarray(boxes[keep]),
        confidence=np.asarray(confidence, dtype=np.float32).reshape(-1)[keep],
        class_id=np.asarray(class_id, dtype=np.int64).reshape(-1)[keep],
    )
