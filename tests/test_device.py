"""configs.device.resolve_device: the one device choice of the trainer, embedder, detector and gallery."""

from __future__ import annotations

import functools

import pytest

import configs.device as device_module
from configs.device import resolve_device


@pytest.mark.parametrize(
    ("requested", "gpus", "kwargs", "expected"),
    [
        ("auto", 0, {}, "cpu"),
        ("auto", 1, {}, "cuda"),
        ("auto", 1, {"indexed": True}, "cuda:0"),
        ("auto", 0, {"indexed": True}, "cpu"),
        ("cpu", 0, {}, "cpu"),
        ("cpu", 2, {}, "cpu"),
        ("cuda", 1, {}, "cuda"),
        ("cuda", 1, {"indexed": True}, "cuda:0"),
        ("cuda:1", 2, {}, "cuda:1"),
        ("cuda:1", 2, {"indexed": True}, "cuda:1"),
    ],
)
def test_resolves(requested: str, gpus: int, kwargs: dict, expected: str) -> None:
    assert resolve_device(requested, gpus=lambda: gpus, **kwargs) == expected


@pytest.mark.parametrize(
    ("requested", "gpus", "message"),
    [
        ("cuda", 0, r"device: expected 'cpu' or 'auto' \(torch sees 0 GPUs\), got 'cuda': CUDA is not available"),
        ("cuda:0", 0, "CUDA is not available"),
        ("cuda:2", 2, r"\(torch sees 2 GPUs\), got 'cuda:2': no such GPU"),
        ("tpu", 1, "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        ("cuda:x", 1, "got 'cuda:x'"),
        ("", 1, "got ''"),
        ("CPU", 1, "got 'CPU'"),
    ],
)
def test_errors(requested: str, gpus: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_device(requested, gpus=lambda: gpus)


def test_runtime_names_who_counts_the_gpus() -> None:
    with pytest.raises(ValueError, match=r"\(faiss sees 0 GPUs\)"):
        resolve_device("cuda:7", gpus=lambda: 0, runtime="faiss")


def test_cpu_never_counts_gpus() -> None:
    def fail() -> int:
        raise AssertionError("counted GPUs for 'cpu'")

    assert resolve_device("cpu", gpus=fail) == "cpu"


def test_default_counts_torch_gpus() -> None:
    torch = pytest.importorskip("torch")
    assert device_module.cuda_device_count() == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    ("device", "openvino", "gpus", "expected"),
    [
        ("auto", False, 1, "cuda:0"),
        ("auto", False, 0, "cpu"),
        ("auto", True, 1, "cpu"),  # OpenVINO picks its own device
        ("0", False, 0, "0"),  # ultralytics device strings pass through: ultralytics checks them
        ("mps", False, 0, "mps"),
    ],
)
def test_detector_device(monkeypatch, device: str, openvino: bool, gpus: int, expected: str) -> None:
    from detectors import ultralytics_backend

    counted = functools.partial(resolve_device, gpus=lambda: gpus)
    monkeypatch.setattr(ultralytics_backend, "resolve_device", counted)
    assert ultralytics_backend.detector_device(device, openvino) == expected
