"""ReID architectures behind one registry: ``build_model(name, num_classes=0, **kwargs)``.

Contract shared by every model:

* ``model.embedding_dim`` -- int, the width D of the eval embedding.
* eval mode: ``forward(x)`` with ``x`` (B, 3, H, W) float (normalised RGB) returns (B, D) float, the
  embedding *not yet* L2-normalised (the embedder normalises). For OSNet that is torchreid's eval output
  (fc -> BN -> ReLU, 512-d for every width); for ``resnet50`` and ``vit_transreid*`` it is the
  BNNeck output.
* train mode: returns :class:`ReIDOutput` ``(features, embedding, logits, part_logits, feature_map,
  visibility)``: features before the BNNeck, the eval embedding (with gradients), identity logits when the
  model was built with ``num_classes > 0`` (else ``None``), per-part logits for the TransReID jigsaw
  branches (else ``None``), the CNNs' last feature map (``None`` for the ViTs) and the relation head's
  stripe-visibility logits (else ``None``). OSNet has no BNNeck, so its ``features`` and ``embedding`` are
  the same tensor. The CNNs also have ``featuremaps(x)`` and ``feature_channels``.
* identity heads are optional and always live under module names starting with ``classifier`` so weight
  loading can drop them (``reid.checkpoint``).
* ``vit_transreid*`` forward also takes ``camera_ids`` (B,) int64 for the side-information embedding.
* ``head="relation"`` (with ``parts``, ``part_dim``, ``visibility``) replaces a CNN's pooling by the part /
  relation head (:mod:`reid.models.relation`); the backbone's weights then live under ``base.``. These keyword
  arguments are part of a checkpoint's ``model_kwargs``, so ``load_model`` rebuilds the same model.

Model modules import torch/torchvision only when a model is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from reid.models.common import ReIDOutput

__all__ = ["HEADS", "ReIDOutput", "build_model", "list_models"]

HEADS = ("global", "relation")
_HEAD_KWARGS = ("parts", "part_dim", "visibility")

# name -> "module:factory"; the factory takes (num_classes, **kwargs).
_REGISTRY: dict[str, str] = {
    "osnet_x0_25": "reid.models.osnet:osnet_x0_25",
    "osnet_x0_5": "reid.models.osnet:osnet_x0_5",
    "osnet_x0_75": "reid.models.osnet:osnet_x0_75",
    "osnet_x1_0": "reid.models.osnet:osnet_x1_0",
    "resnet50": "reid.models.resnet:resnet50",
    "vit_transreid": "reid.models.vit:vit_transreid",
    "vit_transreid_tiny": "reid.models.vit:vit_transreid_tiny",
}


def __getattr__(name: str) -> object:
    if name == "ReIDOutput":  # lazy: importing reid.models must not import torch
        from reid.models.common import ReIDOutput

        return ReIDOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(_REGISTRY)


def build_model(name: str, num_classes: int = 0, **kwargs: object) -> nn.Module:
    """Build the architecture ``name`` with random (or, via ``pretrained=PATH``, ImageNet) weights.

    Args:
        name: one of :func:`list_models`.
        num_classes: size of the optional identity head; 0 builds none.
        **kwargs: architecture options (e.g. ``pooling="gem"`` for resnet50, ``img_size``/``num_cameras``
            for the ViTs, ``pretrained`` for local ImageNet weights), and the embedding head: ``head``
            (one of :data:`HEADS`, default ``"global"``: the architecture's own) with, for ``"relation"``,
            ``parts``, ``part_dim`` and ``visibility``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown ReID architecture {name!r}; expected one of {list_models()}")
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes: expected an int >= 0, got {num_classes!r}")
    head = kwargs.pop("head", "global")
    if head not in HEADS:
        raise ValueError(f"head: expected one of {list(HEADS)}, got {head!r}")
    head_kwargs = {k: kwargs.pop(k) for k in _HEAD_KWARGS if k in kwargs}
    if head_kwargs and head != "relation":
        raise ValueError(f"{sorted(head_kwargs)}: expected only with head='relation', got head={head!r}")
    if head == "relation" and num_classes:
        raise ValueError(f"num_classes: the relation head has no identity classifier, expected 0, got {num_classes}")
    module_name, factory_name = _REGISTRY[name].split(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    model = factory(num_classes=num_classes, **kwargs)
    if head == "relation":
        from reid.models.relation import RelationNet

        model = RelationNet(model, **head_kwargs)
    return model
