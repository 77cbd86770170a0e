"""The one place ReID models and checkpoints meet: :func:`load_model` rebuilds the model a checkpoint
describes, :func:`save_checkpoint` writes a model in our format.

The format and the low-level readers (:func:`reid.checkpoint.load_checkpoint`,
:func:`reid.checkpoint.load_weights_into`) live in :mod:`reid.checkpoint`, which knows no architecture, so
:mod:`reid.models` can use it for ImageNet weights without depending on this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reid.checkpoint import DEFAULT_INPUT_SIZE, IMAGENET_MEAN, IMAGENET_STD, load_checkpoint, load_weights_into
from reid.models import build_model, list_models


def load_model(path: str | os.PathLike, arch: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model a checkpoint describes, load its weights (identity heads dropped), eval mode, CPU.

    Args:
        path: our checkpoint, or a bare state dict (torchreid zoo file) when ``arch`` is given.
        arch: the ``build_model`` name; required for bare state dicts, must agree with ours when given.

    Returns:
        ``(model, meta)``: meta is :func:`load_checkpoint`'s dict without ``state_dict``, with ``arch`` set.
    """
    ckpt = load_checkpoint(path)
    saved_arch = ckpt["arch"]
    if saved_arch is None and arch is None:
        raise ValueError(
            f"{path} is a bare state dict (e.g. a torchreid model-zoo file): pass arch=, one of {list_models()}"
        )
    if saved_arch is not None and arch is not None and saved_arch != arch:
        raise ValueError(f"{path} holds a {saved_arch!r} checkpoint, but arch={arch!r} was given")
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    meta["arch"] = saved_arch or arch
    model = build_model(meta["arch"], num_classes=0, **meta["model_kwargs"])
    try:
        load_weights_into(model, ckpt["state_dict"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if meta["embedding_dim"] is not None and meta["embedding_dim"] != model.embedding_dim:
        raise ValueError(
            f"{path}: embedding_dim {meta['embedding_dim']} in the checkpoint, but {meta['arch']} "
            f"gives {model.embedding_dim}"
        )
    meta["embedding_dim"] = model.embedding_dim
    return model.eval(), meta


def _plain(value: Any, where: str) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and paths to types ``weights_only`` loading accepts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return value.tolist()
    raise ValueError(f"{where}: expected plain data (str, numbers, lists, dicts), got {type(value).__name__}")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    arch: str,
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    created_by: str | None = None,
    train_summary: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` in our checkpoint format (atomically: a temporary file, then rename).

    Args:
        path: output ``.pth`` file; parent folders are created.
        model: a ``reid.models`` model (must have ``embedding_dim``).
        arch: its ``build_model`` name.
        input_size: (H, W) the model was trained at.
        mean, std: RGB normalisation of 0..1 pixels.
        created_by: command line; defaults to this process's ``sys.argv``.
        train_summary: plain data (str, numbers, lists, dicts) describing the training run.
        model_kwargs: ``build_model`` keyword arguments needed to rebuild the model (e.g. pooling).
    """
    if arch not in list_models():
        raise ValueError(f"arch: expected one of {list_models()}, got {arch!r}")
    if not hasattr(model, "embedding_dim"):
        raise ValueError(f"model: expected a reid.models model with embedding_dim, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "arch": arch,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "embedding_dim": int(model.embedding_dim),
        "input_size": tuple(int(v) for v in input_size),
        "mean": tuple(float(v) for v in mean),
        "std": tuple(float(v) for v in std),
        "created_by": created_by if created_by is not None else " ".join(sys.argv),
        "train_summary": _plain(dict(train_summary or {}), "train_summary"),
        "model_kwargs": _plain(dict(model_kwargs or {}), "model_kwargs"),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path
