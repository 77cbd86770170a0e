"""Turn person crops into unit-norm ReID embeddings: ``load_embedder(...)(crops) -> (N, D) float32``.

Preprocessing (the same for every backend): each BGR crop (uint8 (H, W, 3); grayscale (H, W) / (H, W, 1)
and BGRA (H, W, 4) are converted) is resized to the model's input size with ``cv2.INTER_LINEAR`` and
written as RGB into one (B, H, W, 3) uint8 batch; the batch is fed to :class:`NormalizedModel` (PyTorch)
or to the exported ONNX graph, which both take uint8 RGB NHWC and apply the mean/std normalisation
inside. Optional flip averaging sums the features of each crop and its horizontal mirror before the
final L2 normalisation. Loading an ``.onnx`` file never imports torch.

Backends: "torch"; "onnx" (onnxruntime); "openvino" (the detector's runtime on CPU: one thread pool for
both models instead of two fighting over the cores); "auto" picks at run time: torch on CUDA when a GPU is
usable, else openvino when installed, else torch (onnxruntime for an ``.onnx`` file).

Precision (openvino only; the others run f32): ``"f32"`` matches torch within 1e-4; ``"bf16"`` runs the
convolutions in bfloat16 where the CPU has bf16 units (AMX / AVX512-BF16), about 20 % faster for OSNet x0.25
at batch 1-2 and 35 % at batch 8, with unit embeddings at cosine >= 0.994 to f32 ones; ``"auto"`` is bf16 on
such CPUs and f32 elsewhere (:func:`openvino_bf16_supported`). The library default is f32; the pipeline's is
auto (``embed.precision``), because its identities are decided by margins far wider than that difference.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from configs.device import cuda_device_count, resolve_device

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx", "openvino")
PRECISIONS = ("auto", "f32", "bf16")


def _checked(crop: object, index: int) -> np.ndarray:
    """Validate one crop; return it as a uint8 array with positive, row-major strides."""
    shape = getattr(crop, "shape", None)
    if not isinstance(crop, np.ndarray):
        raise TypeError(f"crops[{index}]: expected a numpy uint8 array (H, W, 3), got {type(crop).__name__}")
    if crop.dtype != np.uint8:
        raise ValueError(f"crops[{index}]: expected dtype uint8, got {crop.dtype} with shape {shape}")
    if crop.ndim not in (2, 3) or (crop.ndim == 3 and crop.shape[2] not in (1, 3, 4)):
        raise ValueError(f"crops[{index}]: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {shape}")
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"crops[{index}]: expected a non-empty crop, got shape {shape}")
    inner = crop.strides[1:]
    if min(crop.strides) < 0 or inner[-1] != 1 or (crop.ndim == 3 and inner[0] != crop.shape[2]):
        crop = np.ascontiguousarray(crop)  # cv2 needs contiguous pixels within a row
    return crop


def prepare_batch(crops: Sequence[np.ndarray], input_size: tuple[int, int], start: int = 0) -> np.ndarray:
    """Resize BGR/gray/BGRA crops to ``input_size`` (H, W) and stack them as RGB: (N, H, W, 3) uint8.

    ``start`` only offsets the index quoted in error messages.
    """
    h, w = input_size
    batch = np.empty((len(crops), h, w, 3), dtype=np.uint8)
    for i, crop in enumerate(crops):
        crop = _checked(crop, start + i)
        if crop.shape[:2] != (h, w):
            crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
        if crop.ndim == 2 or crop.shape[2] == 1:
            batch[i] = crop.reshape(h, w, 1)
        else:
            batch[i] = crop[..., 2::-1]  # BGR(A) -> RGB
    return batch


def l2_normalize(features: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation of (N, D) features (all-zero rows stay zero), float32."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class Embedder:
    """Batched crops -> unit-norm embeddings.

    Args:
        forward: maps a (B, H, W, 3) uint8 RGB batch to (B, D) float features.
        input_size: (H, W) the crops are resized to.
        embedding_dim: D.
        device: where ``forward`` runs ("cpu", "cuda", ...), informational.
        batch_size: crops per forward call.
        flip: average each crop's features with its horizontal mirror's.
    """

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        input_size: tuple[int, int],
        embedding_dim: int,
        device: str,
        batch_size: int = 64,
        flip: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        self._forward = forward
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.embedding_dim = int(embedding_dim)
        self.device = device
        self.batch_size = int(batch_size)
        self.flip = bool(flip)

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Embed ``crops`` (list of BGR uint8 arrays, any sizes) -> (N, D) float32, unit norm."""
        if isinstance(crops, np.ndarray) and crops.ndim != 4:
            raise ValueError(f"crops: expected a list of (H, W, 3) arrays or one (N, H, W, 3), got {crops.shape}")
        out = np.empty((len(crops), self.embedding_dim), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = prepare_batch(crops[start : start + self.batch_size], self.input_size, start)
            features = self._forward(batch)
            if self.flip:
                features = features + self._forward(np.ascontiguousarray(batch[:, :, ::-1]))
            out[start : start + len(batch)] = l2_normalize(features)
        return out


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of eval-mode ``model`` with each BatchNorm2d folded into the conv before it (torch.fx), or
    ``model`` itself when it cannot be traced symbolically (e.g. the ViT's shape-dependent branch)."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model.eval())
    except Exception as err:  # fx raises TraceError, TypeError, ... for untraceable code
        log.debug("BatchNorm folding skipped for %s: %s", type(model).__name__, err)
        return model


class TorchForward:
    """PyTorch backend: uint8 batch -> device -> :class:`NormalizedModel` under ``inference_mode``.

    With ``optimize`` the model's BatchNorms are folded into its convs and its weights use channels-last
    memory (the layout of the NHWC input), 2-3x faster on CPU; embeddings move by ~1e-6.
    """

    def __init__(
        self, model: nn.Module, mean: Sequence[float], std: Sequence[float], device: str, optimize: bool = False
    ) -> None:
        import torch

        from reid.models.common import NormalizedModel

        self.device = torch.device(device)
        if optimize:
            model = fold_batchnorm(model).to(memory_format=torch.channels_last)
        self.model = NormalizedModel(model, mean, std).eval().to(self.device)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            features = self.model(torch.from_numpy(batch).to(self.device, non_blocking=True))
            return features.float().cpu().numpy()


class OnnxForward:
    """onnxruntime backend for graphs made by ``reid.export`` (input uint8 (B, H, W, 3) RGB)."""

    def __init__(self, model: str | os.PathLike | bytes, device: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else None
        source = model if isinstance(model, bytes) else os.fspath(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=providers or ["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            name = "<in-memory export>" if isinstance(model, bytes) else source
            raise ValueError(f"cannot load ONNX model {name}: {str(err).strip()[:300]}") from None
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        if inp.type != "tensor(uint8)" or len(inp.shape) != 4 or inp.shape[3] != 3 or len(out.shape) != 2:
            raise ValueError(
                "ONNX model: expected input uint8 (B, H, W, 3) and output (B, D) as written by reid.export, "
                f"got input {inp.type} {inp.shape} and output {out.shape}"
            )
        width = self.session.get_modelmeta().custom_metadata_map.get("embedding_dim", out.shape[1])
        if not str(width).isdigit() or not all(isinstance(v, int) for v in inp.shape[1:3]):
            raise ValueError(f"ONNX model: expected a fixed input size and output width, got {inp.shape} {out.shape}")
        self.input_name = inp.name
        self.input_size = (int(inp.shape[1]), int(inp.shape[2]))
        self.embedding_dim = int(width)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


class OpenVinoForward:
    """OpenVINO backend (CPU) for graphs made by ``reid.export``: an ``.onnx`` file or its bytes.

    ``threads`` sets ``INFERENCE_NUM_THREADS`` (None: OpenVINO's default, the pool it shares with an OpenVINO
    detector in this process). ``precision``: "f32" (the default: CPUs with bf16 units would otherwise run
    bf16 and move raw features by ~1e-1), "bf16" (an error on a CPU without bf16 units) or "auto" (bf16 where
    supported); the one used is ``self.precision``. Not thread-safe: one caller at a time (the pipeline's
    embedding thread).
    """

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None, precision: str = "f32") -> None:
        import openvino as ov

        core = ov.Core()
        self.precision = resolve_precision(precision, core)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.precision}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        name = "<in-memory export>" if isinstance(model, bytes) else os.fspath(model)
        try:
            with _kept_signal_stack():
                ov_model = core.read_model(model if isinstance(model, bytes) else os.fspath(model))
                self.compiled = core.compile_model(ov_model, "CPU", config)
        except Exception as err:  # OpenVINO raises RuntimeError subclasses with long C++ traces
            raise ValueError(f"cannot load {name} with OpenVINO: {str(err).strip()[:300]}") from None
        inp, out = ov_model.inputs[0], ov_model.outputs[0]
        shape, width = inp.get_partial_shape(), out.get_partial_shape()
        if inp.get_element_type() != ov.Type.u8:
            raise ValueError(f"OpenVINO model {name}: expected input uint8 (B, H, W, 3), got {inp.get_element_type()}")
        if shape.rank.get_length() != 4 or not all(shape[i].is_static for i in (1, 2, 3)) or not width[1].is_static:
            raise ValueError(f"OpenVINO model {name}: expected fixed input size and output width, got {shape}, {width}")
        self.input_size = (shape[1].get_length(), shape[2].get_length())
        self.embedding_dim = width[1].get_length()
        with _kept_signal_stack():
            self.request = self.compiled.create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.request.infer({0: batch})[0].copy()


class _SignalStack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@contextmanager
def _kept_signal_stack() -> Iterator[None]:
    """Restore this thread's alternate signal stack after the block (Linux; elsewhere a no-op).

    Reading and compiling a model with OpenVINO 2026.4 points the calling thread's alternate signal stack at
    a buffer of the model's and leaves it there; once the model is freed, the next signal handled on that
    stack (Python installs its handlers with SA_ONSTACK: Ctrl-C) crashes the process with SIGSEGV.
    """
    if sys.platform != "linux":
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    saved = _SignalStack()
    libc.sigaltstack(None, ctypes.byref(saved))
    try:
        yield
    finally:
        libc.sigaltstack(ctypes.byref(saved), None)


def _onnx_metadata(path: Path) -> dict[str, str]:
    """The metadata props ``reid.onnx_graph`` wrote into an ``.onnx`` file (read without loading the weights)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def openvino_available() -> bool:
    """True when the ``openvino`` package imports (a CPU plugin is part of every build)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_bf16_supported(core: object | None = None) -> bool:
    """True when OpenVINO's CPU plugin reports native bf16 (AMX or AVX512-BF16 units); False without openvino."""
    try:
        import openvino as ov
    except ImportError:
        return False
    with _kept_signal_stack():  # loading the CPU plugin moves the signal stack, as compiling does
        core = ov.Core() if core is None else core
        return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_precision(precision: str, core: object | None = None) -> str:
    """OpenVINO's inference precision for ``precision`` ("auto", "f32" or "bf16"); ValueError for "bf16" on a
    CPU without bf16 units or an unknown name."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if precision == "f32":
        return "f32"
    supported = openvino_bf16_supported(core)
    if precision == "bf16" and not supported:
        raise ValueError("precision 'bf16': this CPU has no bf16 units (AMX / AVX512-BF16); use 'auto' or 'f32'")
    return "bf16" if supported else "f32"


def resolve_backend(backend: str, device: str, onnx_file: bool = False) -> str:
    """The backend that runs: ``"auto"`` -> torch when ``device`` asks for (or "auto" finds) CUDA; else
    openvino when installed; else torch (onnxruntime for an ``.onnx`` file). Others are returned checked."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "openvino" and device.startswith("cuda"):
        raise ValueError(f"backend 'openvino' runs on the CPU, got device {device!r}; use 'torch' or 'onnx' for CUDA")
    if backend != "auto":
        return "onnx" if onnx_file and backend == "torch" else backend
    gpu = device.startswith("cuda") or (device == "auto" and cuda_device_count() > 0)
    if gpu:
        return "onnx" if onnx_file else "torch"
    if openvino_available():
        return "openvino"
    return "onnx" if onnx_file else "torch"


def _onnxruntime_gpus() -> int:
    import onnxruntime as ort

    return int("CUDAExecutionProvider" in ort.get_available_providers())


def backend_device(device: str, backend: str = "torch") -> str:
    """The device ``backend`` runs on (:func:`configs.device.resolve_device`, with each backend's own limits):
    openvino only on the CPU, onnxruntime on ``cuda`` when its CUDA provider is installed, torch on any GPU."""
    if backend == "openvino":
        if device not in ("auto", "cpu"):
            raise ValueError(f"device for the openvino backend: expected 'auto' or 'cpu', got {device!r}")
        return "cpu"
    if backend == "onnx":
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device for the onnx backend: expected 'auto', 'cpu' or 'cuda', got {device!r}")
        return resolve_device(device, gpus=_onnxruntime_gpus, runtime="onnxruntime")
    return resolve_device(device)


def _classical() -> object:
    from reid.classical import ClassicalEmbedder

    embedder = ClassicalEmbedder()
    if not hasattr(embedder, "device"):
        embedder.device = "cpu"
    return embedder


def _runtime_forward(
    model: Path | bytes, backend: str, device: str, threads: int | None, precision: str
) -> OpenVinoForward | OnnxForward:
    if backend == "openvino":
        return OpenVinoForward(model, threads, precision)
    return OnnxForward(model, device, threads)


def load_embedder(
    path_or_arch: str | os.PathLike,
    device: str = "auto",
    arch: str | None = None,
    batch_size: int = 64,
    flip: bool = False,
    backend: str = "torch",
    threads: int | None = None,
    optimize: bool = True,
    precision: str = "f32",
) -> Embedder:
    """Build an embedder from a checkpoint, an exported ONNX file, or ``"classical"``.

    Args:
        path_or_arch: ``"classical"`` (weight-free colour histograms, ``reid.classical``), our checkpoint
            (``.pth``), a torchreid model-zoo state dict (then ``arch`` is required), or a ``.onnx`` file
            from ``reid.export`` (run with onnxruntime, or OpenVINO when that backend is chosen).
        device: "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N".
        arch: ``reid.models`` name for bare state dicts; checked against ours when both are known.
        batch_size: crops per forward call.
        flip: average with horizontally flipped crops (about 2x the compute).
        backend: "torch", "onnx" or "openvino" (a checkpoint is exported to ONNX in memory first), or
            "auto" (:func:`resolve_backend`: torch on CUDA, else openvino when installed, else torch).
        threads: onnxruntime intra-op / OpenVINO inference threads (PyTorch threading is left to the caller).
        optimize: torch backend: fold BatchNorm into convs and use channels-last weights (faster; False
            keeps the model's own arithmetic bit for bit).
        precision: openvino backend: "f32", "bf16" or "auto" (module docstring); the other backends run f32
            and only check the name.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if str(path_or_arch) == "classical":
        return _classical()
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    path = Path(path_or_arch)
    backend = resolve_backend(backend, device, onnx_file=path.suffix.lower() == ".onnx")
    resolved = backend_device(device, backend)
    if not path.exists():
        from reid.models import list_models

        if str(path_or_arch) in list_models():
            raise ValueError(
                f"{str(path_or_arch)!r} is an architecture name, not a weights file: pass a checkpoint path "
                f"(with arch={str(path_or_arch)!r} for a torchreid zoo file) or 'classical'"
            )
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix.lower() == ".onnx":
        forward = _runtime_forward(path, backend, resolved, threads, precision)
        saved_arch = _onnx_metadata(path).get("arch")
        if arch is not None and saved_arch and saved_arch != arch:
            raise ValueError(f"{path} was exported from a {saved_arch!r} model, but arch={arch!r} was given")
        return Embedder(forward, forward.input_size, forward.embedding_dim, resolved, batch_size, flip)
    from reid.weights import load_model

    model, meta = load_model(path, arch)
    if backend in ("onnx", "openvino"):
        from reid.onnx_graph import onnx_bytes

        data = onnx_bytes(model, meta)
        forward = _runtime_forward(data, backend, resolved, threads, precision)
    else:
        forward = TorchForward(model, meta["mean"], meta["std"], resolved, optimize)
    via = f"{backend} ({forward.precision})" if isinstance(forward, OpenVinoForward) else backend
    log.info("embedder: %s (%s, %d-d) on %s via %s", path, meta["arch"], meta["embedding_dim"], resolved, via)
    return Embedder(forward, meta["input_size"], meta["embedding_dim"], resolved, batch_size, flip)
