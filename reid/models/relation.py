"""Part / relation embedding head (Park & Ham, "Relation Network for Person Re-identification", AAAI 2020).

Built on a CNN backbone's last feature map (B, C, h, w) by ``build_model(arch, head="relation")``:

* **stripes**: the map is cut into P horizontal stripes with adaptive-pooling bounds (stripe i covers rows
  ``floor(i h / P)`` to ``ceil((i + 1) h / P)``, so any h works and the bounds are constants in an ONNX
  graph); each stripe is max-pooled to a part vector ``p_i`` (B, C);
* **one-vs-rest relation**: the rest of part i is the mean of the other parts,
  ``r_i = (sum_j p_j - p_i) / (P - 1)``; both are reduced to C/2 (linear + BN + ReLU, shared by the
  parts), concatenated and mapped back to C by the relation module (linear + BN), added to the part as a
  residual: ``q_i = p_i + R(cat(reduce(p_i), reduce(r_i)))``. R's BN scale starts at zero, so a new head
  starts from ``q_i = p_i``: on a trained backbone the first epoch's pseudo labels come from a random
  projection of its max-pooled stripes, which keeps their geometry, not from a random non-linear map;
* **GCP** (global contrastive pooling): global max ``g_max`` and average ``g_avg`` pooling; the
  contrastive vector ``g_avg - g_max`` and ``g_max`` are reduced, concatenated and mapped:
  ``q_0 = g_max + R_g(cat(reduce(g_max), reduce(g_avg - g_max)))``;
* every ``q`` (P + 1 of them) gets its own linear reduction to ``part_dim``; the concatenation (B, (P + 1)
  ``part_dim``) is ``features``, and after a BNNeck the eval ``embedding``;
* optional part **visibility** (``visibility=True``): a linear score of each stripe's max-pooled vector,
  ``v_i = sigmoid(w . p_i + b)``, scales that stripe's block of the embedding (the global block keeps
  weight 1), so the cosine of two embeddings leans on the stripes both crops show. It is learned
  self-supervised: the trainer blanks a random band at the top or bottom of some crops (a synthetic
  occluder, :mod:`reid.trainer.occlusion`) and asks ``v_i`` to say whether stripe i is still mostly visible. The
  scaling is not differentiated (the contrastive losses cannot bend the scores).

Occlusion beyond that: HOReID (Wang et al., CVPR 2020, "High-Order Information Matters") needs what is not here:
a keypoint model (it uses HRNet pose estimation trained on COCO keypoints) to place 13 + 1 semantic local
features and their confidences, which then feed its graph-convolution relation module and its
graph-matching topology module. No pose or keypoint weights are on these machines and nothing can be
downloaded, so the heads here use only label-free geometry: horizontal stripes with the self-supervised
visibility above, and learned patches (``reid.trainer.patch``). That handles an occluder that hides the top or the
bottom of a crop (the synthetic one it is trained on); it cannot align body parts of two crops whose
poses differ, nor handle occluders in the middle of the body, which is what keypoints give HOReID.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reid.models.common import ReIDOutput, bnneck


def stripe_bounds(height: int, parts: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, end)`` of ``parts`` horizontal stripes over ``height`` rows (adaptive pooling's)."""
    if parts < 1 or height < 1:
        raise ValueError(f"expected height >= 1 and parts >= 1, got height={height}, parts={parts}")
    return [(math.floor(i * height / parts), math.ceil((i + 1) * height / parts)) for i in range(parts)]


def _reduce(c_in: int, c_out: int) -> nn.Sequential:
    """Linear + BN + ReLU on (N, c_in) vectors (the paper's 1x1 conv on pooled features)."""
    return nn.Sequential(nn.Linear(c_in, c_out, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True))


def _residual(c_in: int, c_out: int) -> nn.Sequential:
    """Linear + BN with a zero BN scale: a residual branch that starts as nothing (Goyal et al.'s zero-init),
    so a fresh head on a trained backbone starts as a random projection of its pooled stripes."""
    branch = nn.Sequential(nn.Linear(c_in, c_out, bias=False), nn.BatchNorm1d(c_out))
    nn.init.zeros_(branch[1].weight)
    return branch


class RelationHead(nn.Module):
    """Stripes + one-vs-rest relation + GCP: (B, C, h, w) feature map -> (B, (P + 1) * part_dim) features.

    Args:
        channels: C of the feature map.
        parts: P horizontal stripes (>= 2: the rest of a part must exist).
        part_dim: width of each of the P + 1 reduced vectors.
    """

    def __init__(self, channels: int, parts: int = 6, part_dim: int = 128) -> None:
        super().__init__()
        if parts < 2:
            raise ValueError(f"parts: expected >= 2 (one-vs-rest needs a rest), got {parts}")
        if part_dim < 1 or channels < 2:
            raise ValueError(f"expected channels >= 2 and part_dim >= 1, got {channels}, {part_dim}")
        half = channels // 2
        self.parts, self.part_dim = parts, part_dim
        self.reduce_part, self.reduce_rest = _reduce(channels, half), _reduce(channels, half)
        self.relate = _residual(2 * half, channels)
        self.reduce_max, self.reduce_contrast = _reduce(channels, half), _reduce(channels, half)
        self.relate_global = _residual(2 * half, channels)
        self.embed = nn.Parameter(torch.empty(parts + 1, channels, part_dim))
        nn.init.kaiming_normal_(self.embed, mode="fan_out", nonlinearity="relu")

    def part_vectors(self, fmap: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, P, C) max-pooled stripes."""
        bounds = stripe_bounds(fmap.shape[2], self.parts)
        return torch.stack([fmap[:, :, a:b].amax(dim=(2, 3)) for a, b in bounds], dim=1)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) -> ``(features (B, (P + 1) part_dim), part vectors (B, P, C))``."""
        if fmap.ndim != 4:
            raise ValueError(f"feature map: expected (B, C, h, w), got {tuple(fmap.shape)}")
        b, c = fmap.shape[:2]
        parts = self.part_vectors(fmap)  # (B, P, C)
        rest = (parts.sum(dim=1, keepdim=True) - parts) / (self.parts - 1)
        pair = torch.cat([self.reduce_part(parts.reshape(-1, c)), self.reduce_rest(rest.reshape(-1, c))], dim=1)
        related = parts + self.relate(pair).reshape(b, self.parts, c)
        g_max, g_avg = fmap.amax(dim=(2, 3)), fmap.mean(dim=(2, 3))
        contrast = torch.cat([self.reduce_max(g_max), self.reduce_contrast(g_avg - g_max)], dim=1)
        global_q = g_max + self.relate_global(contrast)
        q = torch.cat([global_q[:, None], related], dim=1)  # (B, P + 1, C)
        return torch.einsum("bpc,pcd->bpd", q, self.embed).reshape(b, -1), parts


class RelationNet(nn.Module):
    """A CNN backbone (``base``: OSNet or ResNet-50, anything with ``featuremaps`` and ``feature_channels``)
    with the relation head instead of its own pooling. Keys: ``base.*`` (the backbone's own names, so its
    zoo / ImageNet files load into ``base``), ``head.*``, ``bnneck.*``.

    Eval: (B, (P + 1) * part_dim) BNNeck embedding (blocks scaled by visibility when built with it).
    Train: :class:`ReIDOutput` (features before the BNNeck, embedding, no logits, ``feature_map``,
    ``visibility`` logits or None). The base's own pooling and fc stay in the state dict, unused.
    """

    def __init__(self, base: nn.Module, parts: int = 6, part_dim: int = 128, visibility: bool = False) -> None:
        super().__init__()
        if not hasattr(base, "featuremaps") or not hasattr(base, "feature_channels"):
            raise ValueError(
                "head 'relation': expected a CNN backbone with feature maps (osnet*, resnet50), "
                f"got {type(base).__name__}"
            )
        self.base = base
        self.head = RelationHead(base.feature_channels, parts, part_dim)
        self.embedding_dim = (parts + 1) * part_dim
        self.feature_channels = base.feature_channels
        self.bnneck = bnneck(self.embedding_dim)
        self.visibility = nn.Linear(base.feature_channels, 1) if visibility else None

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.featuremaps(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | ReIDOutput:
        fmap = self.base.featuremaps(x)
        features, parts = self.head(fmap)
        embedding = self.bnneck(features)
        logits = None
        if self.visibility is not None:
            logits = self.visibility(parts).squeeze(2)  # (B, P)
            weights = torch.cat([torch.ones_like(logits[:, :1]), torch.sigmoid(logits)], dim=1).detach()
            embedding = (embedding.unflatten(1, (-1, self.head.part_dim)) * weights[:, :, None]).flatten(1)
        if not self.training:
            return embedding
        return ReIDOutput(features, embedding, feature_map=fmap, visibility=logits)
