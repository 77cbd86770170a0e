"""Detectors: registry, shared output contract, background subtraction, ultralytics on the real export."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import supervision as sv

from configs import BgSubConfig, DetectorConfig
from detectors import (
    Detector,
    build_detector,
    detector_from_config,
    detector_kwargs,
    make_detections,
    validate_images,
)
from detectors.bgsub import BackgroundSubtractionDetector

OPENVINO_WEIGHTS = "weights/yolov8n_int8_openvino_model"
PETS_VIDEO = "data/pets09_s2l1/vtest.avi"


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return float(inter / (area - inter))


def noisy_background(seed: int, shape: tuple[int, int] = (120, 160), level: int = 90) -> np.ndarray:
    """A static textured scene (uint8 (H, W, 3)); frames add small per-frame noise to it."""
    rng = np.random.default_rng(seed)
    base = rng.integers(level - 20, level + 20, size=(*shape, 1)).repeat(3, axis=2)
    return base.astype(np.int16)


def frame_of(base: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """``base`` plus sensor noise (sigma 2), with a bright rectangle ``box`` (x1, y1, x2, y2) if given."""
    img = base + rng.normal(0.0, 2.0, size=base.shape).round().astype(np.int16)
    if box is not None:
        x1, y1, x2, y2 = box
        img[y1:y2, x1:x2] = 240
    return np.clip(img, 0, 255).astype(np.uint8)


def assert_contract(det: sv.Detections, shape: tuple[int, ...]) -> None:
    assert det.xyxy.dtype == np.float32 and det.xyxy.shape == (len(det), 4)
    assert det.confidence.dtype == np.float32 and det.confidence.shape == (len(det),)
    assert np.issubdtype(det.class_id.dtype, np.integer) and det.class_id.shape == (len(det),)
    assert np.all(det.xyxy >= 0) and np.all(det.xyxy[:, [0, 2]] <= shape[1]) and np.all(det.xyxy[:, [1, 3]] <= shape[0])
    assert np.all(det.xyxy[:, 2] > det.xyxy[:, 0]) and np.all(det.xyxy[:, 3] > det.xyxy[:, 1])


# --- registry and config ------------------------------------------------------------------------------


def test_unknown_backend_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"expected one of \['bgsub', 'ultralytics'\], got 'yolo'"):
        build_detector("yolo")


def test_detector_from_config_passes_bgsub_fields() -> None:
    cfg = DetectorConfig(backend="bgsub", bgsub=BgSubConfig(history=50, min_area=99, aspect=(1.0, 4.0)))
    det = detector_from_config(cfg)
    assert isinstance(det, BackgroundSubtractionDetector) and isinstance(det, Detector)
    assert (det.history, det.min_area, det.aspect) == (50, 99, (1.0, 4.0))


def test_detector_kwargs_for_ultralytics() -> None:
    cfg = DetectorConfig(weights="w.onnx", confidence=0.4, iou=0.5, image_size=320, classes=(0, 2))
    assert detector_kwargs(cfg) == {
        "weights": "w.onnx",
        "confidence": 0.4,
        "iou": 0.5,
        "image_size": 320,
        "classes": (0, 2),
        "device": "auto",
        "half": False,
    }


@pytest.mark.parametrize("name", ["missing.onnx", "missing_openvino_model", "sub/missing.pt"])
def test_missing_weights_is_file_not_found_naming_the_path(tmp_path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(FileNotFoundError, match=str(path)):
        build_detector("ultralytics", weights=path)


def test_hub_name_that_cannot_be_fetched_says_so(tmp_path, monkeypatch) -> None:
    import ultralytics

    def offline(*args, **kwargs):
        raise ConnectionError("Download failure, environment may be offline")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ultralytics, "YOLO", offline)
    with pytest.raises(FileNotFoundError, match=r"'yolo11n.pt'.*could not fetch.*pass a local path"):
        build_detector("ultralytics", weights="yolo11n.pt")


# --- shared output contract ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([[-5, -5, 10, 10]], [[0, 0, 10, 10]]),  # partly outside: clipped
        ([[25, 15, 40, 35]], [[25, 15, 30, 20]]),  # past the far corner: clipped to (W, H) = (30, 20)
        ([[31, 0, 40, 10]], np.zeros((0, 4))),  # fully outside: zero area after clipping, dropped
        ([[5, 5, 5, 9], [2, 2, 4, 4]], [[2, 2, 4, 4]]),  # zero width dropped
    ],
)
def test_make_detections_clips_and_drops_empty_boxes(boxes, expected) -> None:
    n = len(boxes)
    det = make_detections(np.array(boxes), np.full(n, 0.5), np.zeros(n), (20, 30, 3))
    np.testing.assert_array_equal(det.xyxy, np.asarray(expected, dtype=np.float32).reshape(-1, 4))
    assert_contract(det, (20, 30))


@pytest.mark.parametrize(
    ("image", "got"),
    [
        (np.zeros((8, 8, 3), dtype=np.float32), r"got float32 \(8, 8, 3\)"),
        (np.zeros((8, 8), dtype=np.uint8), r"got uint8 \(8, 8\)"),
        (np.zeros((8, 8, 4), dtype=np.uint8), r"got uint8 \(8, 8, 4\)"),
        (np.zeros((0, 8, 3), dtype=np.uint8), r"got uint8 \(0, 8, 3\)"),
        ([[0, 0, 0]], "got list None"),
    ],
)
def test_bad_image_is_value_error_with_expected_and_got(image, got: str) -> None:
    with pytest.raises(ValueError, match=r"images\[1\]: expected uint8 array \(H, W, 3\).*" + got):
        validate_images([np.zeros((4, 4, 3), dtype=np.uint8), image])
    with pytest.raises(ValueError, match="expected uint8 array"):
        BackgroundSubtractionDetector()([image])


def test_camera_ids_must_match_images() -> None:
    with pytest.raises(ValueError, match="expected 2 ids .*got 1 ids"):
        BackgroundSubtractionDetector()([np.zeros((4, 4, 3), np.uint8)] * 2, camera_ids=["a"])


def test_bgsub_empty_list_returns_empty_list() -> None:
    assert BackgroundSubtractionDetector()([]) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "vibe"}, "expected 'mog2' or 'knn', got 'vibe'"),
        ({"aspect": (3.0, 1.0)}, r"aspect: expected .* got \(3.0, 1.0\)"),
        ({"min_area": 0}, "min_area: expected a value > 0, got 0"),
        ({"learning_rate": 2.0}, "learning_rate: expected -1 .* got 2.0"),
    ],
)
def test_bgsub_rejects_bad_arguments(kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackgroundSubtractionDetector(**kwargs)


# --- background subtraction on synthetic sequences ----------------------------------------------------


@pytest.mark.parametrize("method", ["mog2", "knn"])
def test_bgsub_finds_the_moving_rectangle_and_nothing_on_static_frames(method: str) -> None:
    rng = np.random.default_rng(0)
    base = noisy_background(seed=1)
    kwargs = {"var_threshold": 400.0} if method == "knn" else {}
    det = BackgroundSubtractionDetector(method=method, warmup_frames=5, **kwargs)
    static = [det([frame_of(base, rng, None)])[0] for _ in range(25)]
    assert [len(d) for d in static] == [0] * 25
    for step in range(8):
        x = 20 + 10 * step
        box = (x, 30, x + 20, 80)  # 20 wide, 50 tall
        (out,) = det([frame_of(base, rng, box)])
        assert_contract(out, base.shape)
        assert len(out) == 1, f"step {step}: expected one box, got {out.xyxy}"
        assert box_iou(out.xyxy[0], np.array(box, dtype=np.float32)) > 0.8
        assert out.class_id[0] == 0 and 0.5 < out.confidence[0] <= 1.0


def test_bgsub_returns_nothing_during_warmup() -> None:
    rng = np.random.default_rng(0)
    base = noisy_background(seed=1)
    det = BackgroundSubtractionDetector(warmup_frames=30)
    for _ in range(10):
        det([frame_of(base, rng, None)])
    assert len(det([frame_of(base, rng, (40, 30, 60, 80))])[0]) == 0


def test_bgsub_keeps_one_background_per_camera() -> None:
    """Camera 'b' always shows a static rectangle (its background); the same rectangle is new to 'a'."""
    rng = np.random.default_rng(0)
    base_a, base_b = noisy_background(seed=1), noisy_background(seed=2, level=60)
    box = (60, 20, 85, 90)
    det = BackgroundSubtractionDetector()
    for _ in range(20):
        out_a, out_b = det([frame_of(base_a, rng, None), frame_of(base_b, rng, box)], camera_ids=["a", "b"])
        assert len(out_a) == 0 and len(out_b) == 0
    out_a, out_b = det([frame_of(base_a, rng, box), frame_of(base_b, rng, box)], camera_ids=["a", "b"])
    assert len(out_b) == 0
    assert len(out_a) == 1 and box_iou(out_a.xyxy[0], np.array(box, dtype=np.float32)) > 0.8


@pytest.mark.parametrize(
    ("kwargs", "box", "found"),
    [
        ({}, (40, 30, 60, 80), True),  # 20x50: a person-like blob
        ({}, (20, 50, 100, 70), False),  # 80x20: too wide (h/w 0.25 < 0.9)
        ({}, (40, 40, 46, 50), False),  # 6x10: smaller than min_area and min_height
        ({"max_area_fraction": 0.02}, (40, 30, 60, 80), False),  # 1000 px > 2% of 120x160
        ({"aspect": (3.0, 6.0)}, (40, 30, 60, 80), False),  # h/w 2.5 below 3
    ],
)
def test_bgsub_blob_filters(kwargs, box, found: bool) -> None:
    rng = np.random.default_rng(0)
    base = noisy_background(seed=3)
    det = BackgroundSubtractionDetector(**kwargs)
    for _ in range(10):
        det([frame_of(base, rng, None)])
    assert (len(det([frame_of(base, rng, box)])[0]) == 1) is found


# --- ultralytics on the real OpenVINO export ----------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_pets_frames(path: str) -> tuple[np.ndarray, ...]:
    import cv2

    cap = cv2.VideoCapture(path)
    frames = tuple(cap.read()[1] for _ in range(3))
    cap.release()
    return frames


@functools.lru_cache(maxsize=1)
def load_yolo(path: str) -> Detector:
    return build_detector("ultralytics", weights=path)


@pytest.fixture
def pets_frames(shared) -> list[np.ndarray]:
    return list(load_pets_frames(str(shared(PETS_VIDEO))))


@pytest.fixture
def yolo(shared) -> Detector:
    return load_yolo(str(shared(OPENVINO_WEIGHTS)))


def test_ultralytics_finds_persons_on_pets_frame(yolo: Detector, pets_frames: list[np.ndarray]) -> None:
    (out,) = yolo(pets_frames[:1])
    assert_contract(out, pets_frames[0].shape)
    assert len(out) >= 3
    assert np.all(out.class_id == 0) and np.all(out.confidence >= 0.25)


def test_ultralytics_batch_equals_single_calls(yolo: Detector, pets_frames: list[np.ndarray]) -> None:
    batch = yolo(pets_frames, camera_ids=["a", "b", "c"])
    assert len(batch) == 3
    for frame, got in zip(pets_frames, batch):
        (single,) = yolo([frame])
        assert len(got) == len(single) > 0
        np.testing.assert_allclose(got.xyxy, single.xyxy, atol=1.0)


def test_ultralytics_empty_list_and_bad_frame(yolo: Detector) -> None:
    assert yolo([]) == []
    with pytest.raises(ValueError, match=r"images\[0\]: expected uint8 array .*got float64"):
        yolo([np.zeros((32, 32, 3))])
