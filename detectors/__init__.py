"""Person detectors: the ``Detector`` protocol, its backends and the registry that builds them.

Backends (imported lazily, so ``import detectors`` stays light):

- ``"ultralytics"``: :class:`detectors.ultralytics_backend.UltralyticsDetector`, any model ultralytics loads
  (``.pt``, ``.onnx``, OpenVINO folder, TensorRT ``.engine``).
- ``"bgsub"``: :class:`detectors.bgsub.BackgroundSubtractionDetector`, weight-free, for static cameras.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import supervision as sv

from detectors.common import make_detections, resolve_camera_ids, validate_images

if TYPE_CHECKING:
    from configs.schema import DetectorConfig


@runtime_checkable
class Detector(Protocol):
    """Detects objects on a batch of frames, possibly from several cameras, in one call."""

    def __call__(self, images: list[np.ndarray], camera_ids: Sequence[str] | None = None) -> list[sv.Detections]:
        """Detect on every image.

        Args:
            images: BGR uint8 arrays (H, W, 3); sizes may differ between images.
            camera_ids: one id per image. Stateful detectors keep one state per camera id (None: image ``i``
                is camera ``"i"``); stateless detectors ignore it.

        Returns:
            One ``sv.Detections`` per image: ``xyxy`` float32 (N, 4) clipped to the image, no zero-area box,
            ``confidence`` float32 (N,), ``class_id`` int64 (N,).
        """
        ...


# name -> "module:class"; imported only when built.
DETECTORS: dict[str, str] = {
    "ultralytics": "detectors.ultralytics_backend:UltralyticsDetector",
    "bgsub": "detectors.bgsub:BackgroundSubtractionDetector",
}


def build_detector(backend: str, **kwargs: Any) -> Detector:
    """Build the detector registered as ``backend`` with its keyword arguments.

    Raises:
        ValueError: for an unknown backend name (the message lists the valid ones).
    """
    if backend not in DETECTORS:
        raise ValueError(f"detector backend: expected one of {sorted(DETECTORS)}, got {backend!r}")
    module_name, class_name = DETECTORS[backend].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**kwargs)


def detector_kwargs(cfg: DetectorConfig) -> dict[str, Any]:
    """The plain keyword arguments of the backend ``cfg.backend`` taken from a ``DetectorConfig``."""
    if cfg.backend == "bgsub":
        return asdict(cfg.bgsub)
    return {
        "weights": cfg.weights,
        "confidence": cfg.confidence,
        "iou": cfg.iou,
        "image_size": cfg.image_size,
        "classes": tuple(cfg.classes),
        "device": cfg.device,
        "half": cfg.half,
    }


def detector_from_config(cfg: DetectorConfig) -> Detector:
    """Build the detector a ``configs.DetectorConfig`` describes."""
    return build_detector(cfg.backend, **detector_kwargs(cfg))


__all__ = [
    "DETECTORS",
    "Detector",
    "build_detector",
    "detector_from_config",
    "detector_kwargs",
    "make_detections",
    "resolve_camera_ids",
    "validate_images",
]
