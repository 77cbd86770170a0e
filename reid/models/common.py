"""Pieces shared by the ReID architectures: the train-mode output record, GeM pooling and the BNNeck."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn


class ReIDOutput(NamedTuple):
    """What every model returns in train mode (a tuple, so it also unpacks positionally).

    Attributes:
        features: (B, D) float, the pooled features before the BNNeck (for triplet-style losses).
        embedding: (B, D) float, exactly what eval mode returns (after the BNNeck; for cluster memories).
        logits: (B, num_classes) float from the optional identity head, ``None`` when ``num_classes == 0``.
        part_logits: (B, P, num_classes) from per-part heads (TransReID's jigsaw branches), else ``None``.
        feature_map: (B, C, h, w) float, the backbone's last feature map for the CNNs (what the trainer's
            patch head, ``reid.trainer.patch``, samples its patches from), ``None`` for the ViTs.
        visibility: (B, P) float logits of each stripe being visible (the relation head built with
            ``visibility=True``), else ``None``.
    """

    features: torch.Tensor
    embedding: torch.Tensor
    logits: torch.Tensor | None = None
    part_logits: torch.Tensor | None = None
    feature_map: torch.Tensor | None = None
    visibility: torch.Tensor | None = None


class GeM(nn.Module):
    """Generalised-mean pooling over H, W: ``mean(x.clamp(eps) ** p) ** (1 / p)`` with a learnable ``p``.

    Input (B, C, H, W) float, output (B, C).
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


class AvgPool(nn.Module):
    """Global average pooling, (B, C, H, W) -> (B, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def bnneck(dim: int) -> nn.BatchNorm1d:
    """BatchNorm1d with a frozen zero bias (Luo et al., "Bag of Tricks", BNNeck)."""
    bn = nn.BatchNorm1d(dim)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    bn.bias.requires_grad_(False)
    return bn


def identity_head(dim: int, num_classes: int) -> nn.Linear | None:
    """Bias-free linear identity classifier (std 0.001 init), or ``None`` when ``num_classes == 0``."""
    if num_classes < 0:
        raise ValueError(f"num_classes: expected >= 0, got {num_classes}")
    if num_classes == 0:
        return None
    head = nn.Linear(dim, num_classes, bias=False)
    nn.init.normal_(head.weight, std=0.001)
    return head


class NormalizedModel(nn.Module):
    """Wrap a ReID model to take raw pixels: (B, H, W, 3) RGB uint8 (or float 0..255) -> (B, D) float.

    Computes ``(x / 255 - mean) / std`` as one multiply-add on the NCHW float tensor, then the model.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        mean_t = torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("shift", -mean_t / std_t, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).to(self.scale.dtype)
        return self.model(x * self.scale + self.shift)
