"""The model a ``python -m reid.train`` run starts from: architecture, embedding head and ``--init`` weights."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from reid.trainer.config import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_ARCH = "osnet_x0_25"


def head_kwargs(cfg: TrainConfig) -> dict[str, Any] | None:
    """``build_model`` keyword arguments of the embedding head ``--head`` asks for (None: the --init's)."""
    if cfg.head is None:
        return None
    if cfg.head != "relation":
        return {}
    visibility = {"visibility": True} if cfg.visibility else {}
    return {"head": "relation", "parts": cfg.parts, "part_dim": cfg.part_dim, **visibility}


def build_model_from_init(
    arch: str | None, init: str | None, head: dict[str, Any] | None = None
) -> tuple[nn.Module, str, dict[str, Any]]:
    """The model to train: ``(model, arch, build kwargs)`` from ``--init`` (ours / zoo / ImageNet) or random.

    ``head`` holds the embedding head's ``build_model`` kwargs (``{}``: the architecture's own pooling;
    None: whatever ``init`` was trained with). A backbone-only ``init`` loads into a relation model's ``base``.

    Raises:
        ValueError: ``init`` holds weights of another architecture or head, or is unreadable.
    """
    from reid.checkpoint import load_checkpoint, load_weights_into
    from reid.models import build_model

    if init is None:
        arch = arch or DEFAULT_ARCH
        log.warning("no --init: training %s from random weights", arch)
        return build_model(arch, **(head or {})), arch, dict(head or {})
    ckpt = load_checkpoint(init)
    if ckpt["arch"] is not None:
        if arch is not None and arch != ckpt["arch"]:
            raise ValueError(f"--init {init}: expected a checkpoint for --arch {arch}, got one for {ckpt['arch']}")
        saved = ckpt["model_kwargs"]
        saved_head = {k: v for k, v in saved.items() if k in ("head", "parts", "part_dim", "visibility")}
        if head is None or saved_head == head:
            model = build_model(ckpt["arch"], **saved)
            return load_weights_into(model, ckpt["state_dict"]), ckpt["arch"], saved
        if saved_head:
            raise ValueError(f"--init {init}: expected a checkpoint without a head for --head, got {saved_head}")
        kwargs = {**saved, **head}
        model = build_model(ckpt["arch"], **kwargs)
        load_weights_into(_backbone(model), ckpt["state_dict"])
        return model, ckpt["arch"], kwargs
    arch, head = arch or DEFAULT_ARCH, head or {}
    model = build_model(arch, **head)
    try:
        load_weights_into(_backbone(model), ckpt["state_dict"])
        return model, arch, dict(head)
    except ValueError as err:
        if arch.startswith("osnet"):
            raise ValueError(f"--init {init}: {err}") from None
        try:  # an ImageNet backbone file (torchvision layout) for resnet50 / the ViTs
            return build_model(arch, pretrained=init, **head), arch, dict(head)
        except (ValueError, KeyError, RuntimeError):
            raise ValueError(f"--init {init}: {err}") from None


def _backbone(model: nn.Module) -> nn.Module:
    """Where backbone weights load: a relation model's ``base``, else the model itself."""
    return getattr(model, "base", model)
