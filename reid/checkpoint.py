"""Checkpoint files: reading any accepted kind, and loading a state dict into a module; no architecture knowledge.

Our checkpoint (the contract between ``reid.train`` and the pipeline) is a ``torch.save`` dict::

    arch: str                 # a reid.models.build_model name
    state_dict: dict[str, Tensor]
    embedding_dim: int
    input_size: (H, W)        # pixels the model expects, e.g. (256, 128)
    mean, std: (3,) floats    # RGB normalisation on 0..1 pixels
    created_by: str           # command line that made it
    train_summary: dict       # data, epochs, final cluster count, ...
    model_kwargs: dict        # optional: build_model keyword arguments (e.g. pooling, num_cameras)

:func:`load_checkpoint` also accepts a bare state dict (torchreid model zoo, torchvision ImageNet weights)
and a ``{'state_dict': ...}`` / ``{'model': ...}`` training checkpoint; those come back with ``arch=None``.
Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, never code.
The models' ImageNet initialisation (:mod:`reid.models`) reads through here; building a model from a
checkpoint and writing one are :mod:`reid.weights`' (it knows the architectures).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_INPUT_SIZE = (256, 128)
HEAD_PREFIX = "classifier"  # identity heads: optional, dropped when the model has none
_SHOW = 5  # how many key names an error message lists


def _read(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {path}")
    if not path.is_file():
        raise ValueError(f"weights path: expected a file, got a directory: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises RuntimeError, UnpicklingError, EOFError...
        message = str(err)
        if "Unsupported global" in message:  # the weights-only unpickler met a class or function
            reason = "it holds pickled Python objects, not only tensors (re-save it as a plain state dict)"
        else:
            tail = message.split("WeightsUnpickler error:", 1)[-1]  # skip torch's generic preamble
            detail = next((line.strip() for line in tail.splitlines() if line.strip()), "")
            reason = f"truncated or not a torch file ({type(err).__name__}: {detail[:200]})"
        raise ValueError(f"cannot read checkpoint {path}: {reason}") from None


def _strip_module_prefix(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` prefix left by DataParallel and check that every value is a tensor."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            bad = type(value).__name__  # bad file content, hence ValueError like every unreadable checkpoint
            raise ValueError(f"state dict entry {key!r}: expected a tensor, got {bad}")
        out[key.removeprefix("module.")] = value
    return out


def _pair(value: Any, name: str, length: int, path: Path) -> tuple:
    if not isinstance(value, Sequence) or len(value) != length:
        raise ValueError(f"checkpoint {path}: {name}: expected {length} numbers, got {value!r}")
    return tuple(value)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint of any accepted kind and return it in our format.

    Returns:
        dict with ``arch`` (str, or None for a bare state dict), ``state_dict`` (str -> Tensor on CPU,
        ``module.`` prefix stripped), ``embedding_dim`` (int or None), ``input_size`` (H, W), ``mean``,
        ``std`` (3-tuples), ``created_by``, ``train_summary`` and ``model_kwargs`` (dict).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is truncated, corrupt, not a torch file, or holds no state dict.
    """
    path = Path(path)
    obj = _read(path)
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint {path}: expected a dict, got {type(obj).__name__}")
    nested = next((k for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)), None)
    if nested is not None:
        state, meta = obj[nested], obj
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, meta = obj, {}
    else:
        keys = sorted(map(str, obj))[:_SHOW]
        raise ValueError(f"checkpoint {path}: expected a state dict or a dict with 'state_dict', got keys {keys}")
    if not state:
        raise ValueError(f"checkpoint {path}: the state dict is empty")
    return {
        "arch": meta.get("arch"),
        "state_dict": _strip_module_prefix(state),
        "embedding_dim": meta.get("embedding_dim"),
        "input_size": _pair(meta.get("input_size", DEFAULT_INPUT_SIZE), "input_size", 2, path),
        "mean": _pair(meta.get("mean", IMAGENET_MEAN), "mean", 3, path),
        "std": _pair(meta.get("std", IMAGENET_STD), "std", 3, path),
        "created_by": meta.get("created_by"),
        "train_summary": meta.get("train_summary") or {},
        "model_kwargs": dict(meta.get("model_kwargs") or {}),
    }


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def load_weights_into(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    strict: bool = True,
    allow_missing: tuple[str, ...] = (),
) -> nn.Module:
    """Copy ``state_dict`` into ``model``, explaining any disagreement.

    Identity-head keys (names starting with ``classifier``) are dropped when the model has no such
    parameter, so zoo files with their training classifier load into a head-less model. BatchNorm's
    ``num_batches_tracked`` may be absent (old torchvision files). Shape mismatches always raise.

    Args:
        model: the target module (modified in place and returned).
        state_dict: name -> tensor (``module.`` prefix allowed).
        strict: raise on missing or unexpected keys.
        allow_missing: key prefixes that may stay at their initial values even when ``strict``.
    """
    state = _strip_module_prefix(state_dict)
    own = model.state_dict()
    dropped = [k for k in state if k.startswith(HEAD_PREFIX) and k not in own]
    if dropped:
        log.debug("dropping %d identity-head tensors the model does not have: %s", len(dropped), dropped)
    state = {k: v for k, v in state.items() if k not in dropped}
    missing = [
        k for k in own if k not in state and not k.endswith("num_batches_tracked") and not k.startswith(allow_missing)
    ]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and state[k].shape != own[k].shape]
    problems = []
    if strict and missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[:_SHOW]})")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:_SHOW]})")
    if mismatched:
        shown = [f"{k}: checkpoint {_shape(state[k])} vs model {_shape(own[k])}" for k in mismatched[:_SHOW]]
        problems.append(f"{len(mismatched)} shape mismatches (e.g. {'; '.join(shown)})")
    if problems:
        raise ValueError(
            f"cannot load weights into {type(model).__name__}: {', '.join(problems)}; "
            "is the checkpoint for another architecture?"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model
