"""Ultralytics YOLO detector: any format ultralytics loads (``.pt``, ``.onnx``, OpenVINO folder, ``.engine``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from configs.device import resolve_device
from detectors.common import make_detections, validate_images

logger = logging.getLogger(__name__)

WEIGHT_FORMATS = "a .pt, .onnx, OpenVINO folder (*_openvino_model/) or TensorRT .engine"


class UltralyticsDetector:
    """Runs an ultralytics YOLO model on a batch of frames with one ``predict`` call.

    Args:
        weights: path to a model ultralytics loads, or a bare hub name such as ``yolo11n.pt`` that
            ultralytics downloads on a connected machine.
        confidence: minimum score kept, in [0, 1].
        iou: NMS IoU threshold, in [0, 1].
        image_size: inference size in pixels (static exports use their own export size).
        classes: class ids kept (COCO: 0 = person); None or empty keeps all.
        device: ``"auto"`` (``cuda:0`` when torch sees a GPU, else ``cpu``; OpenVINO models always ``cpu``,
            where ultralytics picks the OpenVINO device), or any ultralytics device string.
        half: FP16 inference where the backend supports it.
    """

    def __init__(
        self,
        weights: str | Path,
        confidence: float = 0.25,
        iou: float = 0.7,
        image_size: int = 640,
        classes: Sequence[int] | None = (0,),
        device: str = "auto",
        half: bool = False,
    ) -> None:
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence: expected a value in [0, 1], got {confidence}")
        if not 0.0 <= iou <= 1.0:
            raise ValueError(f"iou: expected a value in [0, 1], got {iou}")
        if not 32 <= image_size <= 4096:
            raise ValueError(f"image_size: expected an int in [32, 4096], got {image_size}")
        self.weights = str(weights)
        self.model = load_yolo(weights)
        self.device = detector_device(device, openvino=is_openvino(weights))
        self._predict_kwargs: dict[str, Any] = {
            "conf": float(confidence),
            "iou": float(iou),
            "imgsz": int(image_size),
            "classes": list(classes) if classes else None,
            "device": self.device,
            "verbose": False,
            **_precision_kwargs(half),
        }
        # One dummy call: a broken export fails here, at start-up, and the first real frame is not slow.
        self.model.predict([np.zeros((image_size, image_size, 3), dtype=np.uint8)], **self._predict_kwargs)
        logger.info("loaded %s on %s", self.weights, self.device)

    def __call__(self, images: list[np.ndarray], camera_ids: Sequence[str] | None = None) -> list[sv.Detections]:
        """Detect on all ``images`` (BGR uint8 (H, W, 3)) in one ``predict``; ``camera_ids`` is ignored."""
        validate_images(images)
        if len(images) == 0:
            return []
        results = self.model.predict(list(images), **self._predict_kwargs)
        return [_result_to_detections(r) for r in results]


def _result_to_detections(result: Any) -> sv.Detections:
    """One ultralytics ``Results`` to ``sv.Detections``.

    ``boxes.data`` is (N, 6) ``x1 y1 x2 y2 score class`` (7 columns with a track id before the score); one
    device-to-host copy per image, no per-box Python.
    """
    data = result.boxes.data
    data = data.cpu().numpy() if hasattr(data, "cpu") else np.asarray(data)
    return make_detections(data[:, :4], data[:, -2], data[:, -1], result.orig_shape)


def _precision_kwargs(half: bool) -> dict[str, Any]:
    """FP16 request in the spelling this ultralytics version knows (8.4 renamed ``half`` to ``quantize``)."""
    if not half:
        return {}
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


def is_openvino(weights: str | Path) -> bool:
    """True for an OpenVINO export: a ``*_openvino_model`` folder or an ``.xml`` file."""
    path = Path(weights)
    return path.name.endswith("_openvino_model") or path.suffix == ".xml"


def detector_device(device: str, openvino: bool) -> str:
    """``"auto"`` -> ``cuda:0`` when torch sees a GPU, else ``cpu`` (:func:`configs.device.resolve_device`);
    OpenVINO models stay on ``cpu``. Other values are ultralytics device strings and pass through unchanged."""
    if device != "auto":
        return device
    if openvino:
        return "cpu"
    return resolve_device("auto", indexed=True)


def load_yolo(weights: str | Path) -> Any:
    """Load ``weights`` with ``ultralytics.YOLO(path, task="detect")``.

    Raises:
        FileNotFoundError: the path does not exist, or a bare hub name (``yolo11n.pt``) could not be
            downloaded.
    """
    path = Path(weights).expanduser()
    is_hub_name = len(path.parts) == 1 and path.suffix == ".pt"
    if not path.exists() and not is_hub_name:
        raise FileNotFoundError(f"weights not found: {path} (expected {WEIGHT_FORMATS})")
    from ultralytics import YOLO

    if path.exists():
        return YOLO(str(path), task="detect")
    try:
        return YOLO(str(path), task="detect")
    except Exception as exc:  # ultralytics raises ConnectionError, FileNotFoundError, ... when offline
        raise FileNotFoundError(
            f"weights {str(weights)!r}: not a local file and ultralytics could not fetch it ({exc}); "
            f"pass a local path to {WEIGHT_FORMATS}"
        ) from exc
