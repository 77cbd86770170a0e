"""Device choice, in one function for every stage: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -> the device used.

It lives in ``configs`` because every package reads its device from a config and imports ``configs``, while
``reid`` and ``detectors`` import nothing of each other or of the pipeline. torch is imported only when asked
how many GPUs it sees.
"""

from __future__ import annotations

from collections.abc import Callable

DEVICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"


def cuda_device_count() -> int:
    """How many CUDA GPUs torch sees (0 without torch)."""
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def resolve_device(
    requested: str, *, gpus: Callable[[], int] = cuda_device_count, runtime: str = "torch", indexed: bool = False
) -> str:
    """The device to run on: ``"auto"`` -> ``"cuda"`` when ``gpus()`` > 0, else ``"cpu"``; ``"cpu"``;
    ``"cuda"`` / ``"cuda:N"`` as given when that GPU exists.

    Args:
        requested: one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        gpus: how many GPUs the runtime that will run the work sees (torch's by default; faiss and
            onnxruntime count their own).
        runtime: its name, for the error message.
        indexed: return ``"cuda:0"`` instead of a bare ``"cuda"`` (for runtimes that need the index).

    Raises:
        ValueError: ``requested`` is not one of the four forms, or names a GPU the runtime does not see.
    """
    if requested not in ("auto", "cpu", "cuda") and not (requested.startswith("cuda:") and requested[5:].isdigit()):
        raise ValueError(f"device: expected {DEVICES}, got {requested!r}")
    if requested == "cpu":
        return requested
    n_gpus = gpus()
    if requested == "auto":
        requested = "cuda" if n_gpus > 0 else "cpu"
    elif int(requested[5:] or 0) >= n_gpus:
        missing = "CUDA is not available" if n_gpus == 0 else "no such GPU"
        seen = f"{runtime} sees {n_gpus} GPUs"
        raise ValueError(f"device: expected 'cpu' or 'auto' ({seen}), got {requested!r}: {missing}")
    return "cuda:0" if indexed and requested == "cuda" else requested
