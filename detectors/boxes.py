"""Box geometry shared by every stage: clipping (N, 4) ``xyxy`` pixel boxes to the image and telling which
are usable. It lives in ``detectors`` because that is the lowest layer that needs it (the pipeline imports
detectors, never the reverse).
"""

from __future__ import annotations

import numpy as np


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """A copy of the (N, 4) ``xyxy`` boxes with x clipped to [0, width] and y to [0, height].

    The dtype is kept (float boxes stay float, integer boxes stay integer); NaN stays NaN and +-inf becomes
    the nearest image edge. Boxes wholly outside the image collapse to zero width or height on its border.

    Raises:
        ValueError: ``xyxy`` is not (N, 4).
    """
    xyxy = np.asarray(xyxy)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"xyxy: expected (_, 4), got {xyxy.shape}")
    return np.clip(xyxy, 0, np.array([width, height, width, height], dtype=xyxy.dtype))


def valid_boxes(xyxy: np.ndarray) -> np.ndarray:
    """(N,) bool: boxes with finite corners and positive width and height (after clipping: non-empty crops).

    Raises:
        ValueError: ``xyxy`` is not (N, 4).
    """
    xyxy = np.asarray(xyxy)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"xyxy: expected (_, 4), got {xyxy.shape}")
    return np.isfinite(xyxy).all(axis=1) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
