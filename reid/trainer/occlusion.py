"""Synthetic occluders and the stripe-visibility targets they imply (self-supervision for the relation
head's part visibility, ``python -m reid.train --head relation --visibility``).

An occluder is a band of whole rows, from the top or from the bottom of the crop, covering 20-50 % of its
height, filled with zeros (the dataset mean after normalisation), as a car, a railing or the frame border
hides the legs or the head. A stripe counts as visible when at least half of its rows are uncovered;
stripe rows are the relation head's adaptive-pooling bounds (:func:`reid.models.relation.stripe_bounds`).
See :mod:`reid.models.relation` for what this covers of occlusion and what it does not.
"""

from __future__ import annotations

import torch

from reid.models.relation import stripe_bounds


def occlude(
    images: torch.Tensor, probability: float, min_fraction: float = 0.2, max_fraction: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank a band of rows at the top or bottom of each image with ``probability``.

    Draws from torch's global generator (the trainer seeds it per epoch).

    Args:
        images: (B, 3, H, W) float normalised batch (not modified).
        probability: chance that an image gets an occluder, in [0, 1].
    Returns:
        ``(occluded images (B, 3, H, W), visible rows (B, H) bool)``.
    """
    if not 0.0 <= probability <= 1.0 or not 0.0 <= min_fraction <= max_fraction <= 1.0:
        raise ValueError(f"expected 0 <= probability <= 1 and 0 <= min <= max <= 1, got {probability}, "
                         f"{min_fraction}, {max_fraction}")  # fmt: skip
    b, h = images.shape[0], images.shape[2]
    hit = torch.rand(b) < probability
    size = (min_fraction + (max_fraction - min_fraction) * torch.rand(b)) * h
    from_bottom = torch.rand(b) < 0.5
    rows = torch.arange(h, dtype=size.dtype)
    covered = torch.where(from_bottom[:, None], rows >= h - size[:, None], rows < size[:, None]) & hit[:, None]
    covered = covered.to(images.device)
    return images.masked_fill(covered[:, None, :, None], 0.0), ~covered


def stripe_visibility(visible_rows: torch.Tensor, parts: int) -> torch.Tensor:
    """(B, H) bool visible rows -> (B, P) float32 targets: 1 where at least half of a stripe's rows show."""
    if visible_rows.ndim != 2:
        raise ValueError(f"visible_rows: expected (B, H), got {tuple(visible_rows.shape)}")
    shown = [visible_rows[:, a:b].float().mean(dim=1) for a, b in stripe_bounds(visible_rows.shape[1], parts)]
    return (torch.stack(shown, dim=1) >= 0.5).float()
