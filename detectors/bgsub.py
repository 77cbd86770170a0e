"""Weight-free person detector for static cameras: background subtraction and blob filtering.

Per camera: an OpenCV background model (MOG2 or KNN) gives a foreground mask; shadows (127) are dropped;
an opening removes speckle, a closing fills holes, and a vertical closing joins a person's head, torso
and legs, split by a similar-coloured background, into one blob without growing it; connected components
whose pixel area, box height, height/width ratio and box size pass the filters become person boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import supervision as sv

from detectors.common import make_detections, resolve_camera_ids, validate_images

SHADOW_VALUE = 127
FOREGROUND_VALUE = 255


@dataclass
class _CameraState:
    subtractor: cv2.BackgroundSubtractor
    frames_seen: int = 0


class BackgroundSubtractionDetector:
    """Moving-blob detector; one background model per camera id, created on the camera's first frame.

    Args:
        method: ``"mog2"`` or ``"knn"`` (OpenCV subtractors).
        history: frames the background model remembers.
        var_threshold: MOG2 ``varThreshold`` (squared Mahalanobis distance); for KNN its ``dist2Threshold``
            (squared colour distance, OpenCV's default there is 400).
        detect_shadows: let the model label shadows (they are then dropped from the foreground).
        warmup_frames: a camera's first frames only train the model and return no boxes.
        kernel: side in pixels of the opening/closing kernel (the vertical closing kernel is 1 x 3*kernel).
        min_area: minimum foreground pixels of a blob.
        min_height: minimum box height in pixels.
        max_area_fraction: maximum box area as a fraction of the image (drops lighting changes).
        aspect: (min, max) box height / width.
        learning_rate: background update rate in [0, 1]; -1 lets OpenCV choose (1 / min(frames, history)).
    """

    def __init__(
        self,
        method: Literal["mog2", "knn"] = "mog2",
        history: int = 300,
        var_threshold: float = 25.0,
        detect_shadows: bool = True,
        warmup_frames: int = 0,
        kernel: int = 3,
        min_area: int = 150,
        min_height: int = 16,
        max_area_fraction: float = 0.25,
        aspect: tuple[float, float] = (0.9, 6.0),
        learning_rate: float = -1.0,
    ) -> None:
        if method not in ("mog2", "knn"):
            raise ValueError(f"method: expected 'mog2' or 'knn', got {method!r}")
        _check_positive(history=history, var_threshold=var_threshold, kernel=kernel, min_area=min_area)
        _check_positive(min_height=min_height, max_area_fraction=max_area_fraction)
        if warmup_frames < 0:
            raise ValueError(f"warmup_frames: expected >= 0, got {warmup_frames}")
        if max_area_fraction > 1:
            raise ValueError(f"max_area_fraction: expected a value in (0, 1], got {max_area_fraction}")
        lo, hi = aspect
        if not 0 < lo <= hi:
            raise ValueError(f"aspect: expected (min, max) height/width with 0 < min <= max, got {aspect}")
        if not (learning_rate == -1 or 0 <= learning_rate <= 1):
            raise ValueError(f"learning_rate: expected -1 (automatic) or a value in [0, 1], got {learning_rate}")
        self.method = method
        self.history = int(history)
        self.var_threshold = float(var_threshold)
        self.detect_shadows = bool(detect_shadows)
        self.warmup_frames = int(warmup_frames)
        self.min_area = int(min_area)
        self.min_height = int(min_height)
        self.max_area_fraction = float(max_area_fraction)
        self.aspect = (float(lo), float(hi))
        self.learning_rate = float(learning_rate)
        self._square = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
        self._vertical = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3 * kernel))
        self._cameras: dict[str, _CameraState] = {}

    def __call__(self, images: list[np.ndarray], camera_ids: Sequence[str] | None = None) -> list[sv.Detections]:
        """Detect on each BGR uint8 (H, W, 3) image, updating the background model of its camera.

        ``camera_ids`` (one per image) select the background models; None means image ``i`` is camera ``"i"``.
        """
        validate_images(images)
        ids = resolve_camera_ids(camera_ids, len(images))
        return [self._detect(image, camera_id) for image, camera_id in zip(images, ids)]

    def reset(self, camera_id: str | None = None) -> None:
        """Forget the background model of ``camera_id``, or of every camera when None."""
        if camera_id is None:
            self._cameras.clear()
        else:
            self._cameras.pop(str(camera_id), None)

    def foreground(self, image: np.ndarray, camera_id: str = "0") -> np.ndarray:
        """Update ``camera_id``'s model with ``image``; return its cleaned foreground, uint8 (H, W) 0/255."""
        state = self._cameras.get(camera_id)
        if state is None:
            state = self._cameras[camera_id] = _CameraState(self._new_subtractor())
        state.frames_seen += 1
        return self.clean_mask(state.subtractor.apply(image, learningRate=self.learning_rate))

    def clean_mask(self, raw: np.ndarray) -> np.ndarray:
        """Subtractor output uint8 (H, W) (0, 127 shadow, 255) to a cleaned 0/255 foreground mask."""
        mask = np.where(raw == FOREGROUND_VALUE, np.uint8(255), np.uint8(0))  # shadows (127) -> background
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._square)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._square)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._vertical)

    def _detect(self, image: np.ndarray, camera_id: str) -> sv.Detections:
        mask = self.foreground(image, camera_id)
        if self._cameras[camera_id].frames_seen <= self.warmup_frames:
            return make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), image.shape)
        return self.mask_to_detections(mask)

    def mask_to_detections(self, mask: np.ndarray) -> sv.Detections:
        """Person boxes from a cleaned foreground mask uint8 (H, W)."""
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        return self._blobs_to_detections(stats[1:], mask.shape)

    def _blobs_to_detections(self, stats: np.ndarray, image_shape: tuple[int, ...]) -> sv.Detections:
        """Filter component ``stats`` (K, 5) int32 [x, y, w, h, area] into person boxes."""
        x, y, w, h, area = (stats[:, i].astype(np.float64) for i in range(5))
        box_area = w * h
        ratio = h / np.maximum(w, 1.0)
        keep = (
            (area >= self.min_area)
            & (h >= self.min_height)
            & (ratio >= self.aspect[0])
            & (ratio <= self.aspect[1])
            & (box_area <= self.max_area_fraction * image_shape[0] * image_shape[1])
        )
        xyxy = np.stack([x, y, x + w, y + h], axis=1)[keep]
        fill = (area / np.maximum(box_area, 1.0))[keep]
        return make_detections(xyxy, np.clip(fill, 0.0, 1.0), np.zeros(len(xyxy), dtype=np.int64), image_shape)

    def _new_subtractor(self) -> cv2.BackgroundSubtractor:
        if self.method == "mog2":
            return cv2.createBackgroundSubtractorMOG2(self.history, self.var_threshold, self.detect_shadows)
        return cv2.createBackgroundSubtractorKNN(self.history, self.var_threshold, self.detect_shadows)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name}: expected a value > 0, got {value}")
