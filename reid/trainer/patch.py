"""PAUL's patch branch for the trainer (Yang et al., "Patch-based Discriminative Feature Learning for
Unsupervised Person Re-identification", CVPR 2019), chosen by ``python -m reid.train --patch``.

- **PatchNet** (:class:`PatchNet`): a patch generation network, STN-like, predicts for every one of P patches
  a scale and a translation (an axis-aligned affine box, always inside the map) from the backbone's last
  feature map; each patch is bilinearly sampled from the map (``grid_sample``) and embedded by its own
  1x1 conv + BN + ReLU + average pooling into a unit vector: (B, C, h, w) -> (B, P, d). The boxes start as
  overlapping bands stacked from head to feet (the final linear layer starts at zero) and move as it learns.
- **PEDAL** (:class:`reid.trainer.memory.PatchMemory`, :func:`reid.trainer.losses.multi_positive_nce`): every patch of
  every crop has a row in a patch memory bank (N, P, d); a batch patch is pulled towards its own row and
  its k nearest rows of the same patch and pushed from all others; the rows are momentum-updated.
- **IPFL** (:func:`reid.trainer.losses.ipfl_loss`): each batch image gets an augmented copy
  (:func:`augmented_copies`: flip, random crop-and-rescale); the image-level patch feature of an image
  must be nearer its copy's than the nearest other image's, the image's memory neighbours excepted
  (triplet with margin on the concatenated unit patch features).

The patch branch supervises the backbone only: the deployed embedding stays the model's (global or
relation head), so checkpoints keep their format. PatchNet and the patch memory live in the trainer state
(``--resume`` restores them).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def initial_boxes(patches: int) -> torch.Tensor:
    """(P, 4) ``(scale_y, scale_x, centre_y, centre_x)`` in [-1, 1] map coordinates: overlapping bands,
    each 2/P of the height (all of it for P = 1) and 0.8 of the width, centred top to bottom (the end bands
    0.1 of their slack from the border: a box touching it is an infinite logit)."""
    scale_y = min(1.0, 2.0 / patches)
    reach = 0.9 * (1 - scale_y)
    centres = torch.linspace(-reach, reach, patches) if patches > 1 else torch.zeros(1)
    return torch.stack([torch.full((patches,), scale_y), torch.full((patches,), 0.8), centres,
                        torch.zeros(patches)], dim=1)  # fmt: skip


class PatchNet(nn.Module):
    """Patch generation + per-patch embedding on a (B, C, h, w) feature map.

    Args:
        channels: C of the feature map.
        patches: P.
        dim: d, width of a patch feature.
        patch_size: (h, w) cells sampled per patch.
    """

    def __init__(self, channels: int, patches: int = 6, dim: int = 64, patch_size: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        if patches < 1 or dim < 1 or channels < 1:
            raise ValueError(f"expected channels, patches, dim >= 1, got {channels}, {patches}, {dim}")
        self.patches, self.dim, self.patch_size = patches, dim, tuple(patch_size)
        self.locate = nn.Sequential(
            nn.Conv2d(channels, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((4, 2)), nn.Flatten(), nn.Linear(32 * 8, 4 * patches),
        )  # fmt: skip
        nn.init.zeros_(self.locate[-1].weight)
        scale, centre = initial_boxes(patches).split(2, dim=1)
        scale = scale.clamp(max=0.99)  # a logit of 1 is infinite
        raw = torch.cat([torch.log(scale / (1 - scale)), torch.atanh(centre / (1 - scale))], dim=1)
        with torch.no_grad():
            self.locate[-1].bias.copy_(raw.flatten())
        self.embed = nn.Sequential(
            nn.Conv2d(patches * channels, patches * dim, 1, groups=patches, bias=False),
            nn.BatchNorm2d(patches * dim), nn.ReLU(inplace=True),
        )  # fmt: skip

    def boxes(self, fmap: torch.Tensor) -> torch.Tensor:
        """(B, P, 4) ``(scale_y, scale_x, centre_y, centre_x)``: scales in (0, 1), centres keep the box inside."""
        raw = self.locate(fmap).reshape(len(fmap), self.patches, 4)
        scale = torch.sigmoid(raw[..., :2])
        return torch.cat([scale, torch.tanh(raw[..., 2:]) * (1 - scale)], dim=2)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) float -> (B, P, d) float32 L2-normalised patch features."""
        if fmap.ndim != 4:
            raise ValueError(f"feature map: expected (B, C, h, w), got {tuple(fmap.shape)}")
        b, c = fmap.shape[:2]
        box = self.boxes(fmap).reshape(-1, 4)
        theta = torch.zeros(len(box), 2, 3, dtype=fmap.dtype, device=fmap.device)
        theta[:, 0, 0], theta[:, 1, 1] = box[:, 1], box[:, 0]
        theta[:, 0, 2], theta[:, 1, 2] = box[:, 3], box[:, 2]
        grid = F.affine_grid(theta, [len(box), c, *self.patch_size], align_corners=False)
        source = fmap.unsqueeze(1).expand(b, self.patches, *fmap.shape[1:]).reshape(-1, *fmap.shape[1:])
        cells = F.grid_sample(source, grid, align_corners=False)  # (B * P, C, ph, pw)
        cells = cells.reshape(b, self.patches * c, *self.patch_size)
        features = self.embed(cells).mean(dim=(2, 3)).reshape(b, self.patches, self.dim)
        return F.normalize(features.float(), dim=2)


def augmented_copies(images: torch.Tensor, min_scale: float = 0.8) -> torch.Tensor:
    """IPFL's transformed copies of a (B, 3, H, W) batch: a random horizontal flip (p = 0.5) and a random
    crop of ``min_scale``..1 of each side at a random position, rescaled to H x W. Draws from torch's
    global generator (the trainer seeds it per epoch)."""
    b = len(images)
    scale = min_scale + (1 - min_scale) * torch.rand(b, 2)
    shift = (2 * torch.rand(b, 2) - 1) * (1 - scale)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale[:, 1] * flip, scale[:, 0]
    theta[:, 0, 2], theta[:, 1, 2] = shift[:, 1], shift[:, 0]
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="border")


def image_level(patches: torch.Tensor) -> torch.Tensor:
    """(B, P, d) unit patch features -> (B, P d) unit image-level feature (concatenation / sqrt(P))."""
    return patches.flatten(1) / math.sqrt(patches.shape[1])
