"""TransReID-style ViT (He et al., "TransReID: Transformer-based Object Re-Identification", ICCV 2021).

* Overlapping patch embedding: a conv with stride < kernel (16/12 for the base model: 21x10 patches at
  256x128).
* Learnable cls token and position embedding; ImageNet position embeddings are resized bilinearly to the
  patch grid, and a grid other than the built one (another input size) is resized on the fly.
* Side-information embedding (SIE): a learnable vector per camera, times ``sie_coef``, added to every
  token when ``camera_ids`` (B,) int64 is given (``num_cameras > 0``); without ids nothing is added.
* Transformer blocks are torchvision's ``EncoderBlock`` (pre-norm MHA + MLP; no stochastic depth).
* Jigsaw patch module (JPM): the first ``depth - 1`` blocks are shared; the last block (+ LayerNorm) runs
  once as the global branch ``b1`` on all tokens and once, as ``b2`` with its own weights, on each of
  ``jpm_groups`` local groups made by shifting the patch sequence by ``shift`` and shuffling it over
  ``shuffle_groups`` groups, each group prefixed with the cls token.

Eval output: ``cat(bn(global), bn_1(local_1) / k, ..., bn_k(local_k) / k)`` -- (B, (1 + k) * D).
Train mode: :class:`ReIDOutput` with ``features`` the same concat before the BNNecks (unscaled),
``embedding`` the eval output, ``logits`` (B, C) of the global head and ``part_logits`` (B, k, C).

ImageNet weights: ``pretrained=PATH`` of a torchvision ``vit_b_16`` state dict or a timm/TransReID
``jx_vit_base_p16_224`` style one; the last block initialises both ``b1`` and ``b2``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reid.models.common import ReIDOutput, bnneck, identity_head


def _grid(img_size: Sequence[int], patch: int, stride: int) -> tuple[int, int]:
    h, w = (int(v) for v in img_size)
    if h < patch or w < patch:
        raise ValueError(f"img_size: expected both sides >= patch_size {patch}, got {(h, w)}")
    return (h - patch) // stride + 1, (w - patch) // stride + 1


def resize_pos_embed(pos: torch.Tensor, grid: tuple[int, int], old_grid: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a (1, 1 + gh*gw, D) position embedding (cls first) to ``grid``."""
    cls, patches = pos[:, :1], pos[:, 1:]
    d = patches.shape[-1]
    patches = patches.reshape(1, old_grid[0], old_grid[1], d).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=grid, mode="bilinear", align_corners=False)
    return torch.cat([cls, patches.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], d)], dim=1)


class TransReID(nn.Module):
    """ViT with overlapping patches, SIE and JPM; see the module docstring. Keys: ``patch_embed``,
    ``cls_token``, ``pos_embed``, ``sie_embed``, ``blocks.i``, ``b1``, ``b2``, ``bottleneck``,
    ``part_necks.j``, ``classifier``, ``classifier_parts.j``."""

    def __init__(
        self,
        num_classes: int = 0,
        img_size: Sequence[int] = (256, 128),
        patch_size: int = 16,
        stride: int = 12,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        num_cameras: int = 0,
        sie_coef: float = 3.0,
        jpm_groups: int = 4,
        shift: int = 5,
        shuffle_groups: int = 2,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        from torchvision.models.vision_transformer import EncoderBlock

        if depth < 2 or jpm_groups < 1 or stride > patch_size or num_cameras < 0:
            raise ValueError(
                "expected depth >= 2, jpm_groups >= 1, stride <= patch_size, num_cameras >= 0; got "
                f"depth={depth}, jpm_groups={jpm_groups}, stride={stride}, num_cameras={num_cameras}"
            )
        self.grid = _grid(img_size, patch_size, stride)
        num_patches = self.grid[0] * self.grid[1]
        if num_patches < jpm_groups:
            raise ValueError(f"img_size {tuple(img_size)} gives {num_patches} patches < jpm_groups {jpm_groups}")
        self.jpm_groups, self.shift, self.shuffle_groups, self.sie_coef = (
            jpm_groups,
            shift,
            shuffle_groups,
            sie_coef,
        )
        self.patch_embed = nn.Conv2d(3, embed_dim, patch_size, stride=stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        self.sie_embed = nn.Parameter(torch.zeros(num_cameras, 1, embed_dim)) if num_cameras else None
        self.pos_drop = nn.Dropout(dropout)

        def block() -> nn.Module:
            return EncoderBlock(num_heads, embed_dim, mlp_dim, dropout, attention_dropout)

        self.blocks = nn.ModuleList(block() for _ in range(depth - 1))
        self.b1 = nn.Sequential(block(), nn.LayerNorm(embed_dim, eps=1e-6))
        self.b2 = copy.deepcopy(self.b1)
        self.bottleneck = bnneck(embed_dim)
        self.part_necks = nn.ModuleList(bnneck(embed_dim) for _ in range(jpm_groups))
        self.classifier = identity_head(embed_dim, num_classes)
        self.classifier_parts = (
            nn.ModuleList(identity_head(embed_dim, num_classes) for _ in range(jpm_groups)) if num_classes else None
        )
        self.embedding_dim = (1 + jpm_groups) * embed_dim
        for p in (self.cls_token, self.pos_embed, self.sie_embed):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        if pretrained is not None:
            self.load_imagenet(pretrained)

    def _tokens(self, x: torch.Tensor, camera_ids: torch.Tensor | None) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1 + N, D) tokens after the shared blocks."""
        x = self.patch_embed(x)
        grid = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        pos = self.pos_embed if grid == self.grid else resize_pos_embed(self.pos_embed, grid, self.grid)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + pos
        if camera_ids is not None and self.sie_embed is not None:
            if camera_ids.shape != (x.shape[0],):
                raise ValueError(f"camera_ids: expected shape ({x.shape[0]},), got {tuple(camera_ids.shape)}")
            x = x + self.sie_coef * self.sie_embed[camera_ids]
        x = self.pos_drop(x)
        for blk in self.blocks:
            x = blk(x)
        return x

    def _jigsaw(self, tokens: torch.Tensor) -> torch.Tensor:
        """Shift + patch-shuffle the patch tokens and cut them into k groups: (B, k, L, D)."""
        patches = torch.roll(tokens[:, 1:], shifts=-self.shift, dims=1)
        b, n, d = patches.shape
        pad = (-n) % self.shuffle_groups
        if pad:  # repeat the last tokens so the sequence splits evenly into shuffle groups
            patches = torch.cat([patches, patches[:, -pad:]], dim=1)
        patches = patches.reshape(b, self.shuffle_groups, -1, d).transpose(1, 2).reshape(b, -1, d)
        length = n // self.jpm_groups
        return patches[:, : self.jpm_groups * length].reshape(b, self.jpm_groups, length, d)

    def forward(self, x: torch.Tensor, camera_ids: torch.Tensor | None = None) -> torch.Tensor | ReIDOutput:
        tokens = self._tokens(x, camera_ids)
        global_feat = self.b1(tokens)[:, 0]
        parts = self._jigsaw(tokens)
        b, k, length, d = parts.shape
        cls = tokens[:, None, :1].expand(b, k, 1, d)
        local_in = torch.cat([cls, parts], dim=2).reshape(b * k, 1 + length, d)
        local_feat = self.b2(local_in)[:, 0].reshape(b, k, d)
        global_bn = self.bottleneck(global_feat)
        local_bn = [neck(local_feat[:, j]) for j, neck in enumerate(self.part_necks)]
        embedding = torch.cat([global_bn] + [f / k for f in local_bn], dim=1)
        if not self.training:
            return embedding
        features = torch.cat([global_feat, local_feat.reshape(b, k * d)], dim=1)
        if self.classifier is None:
            return ReIDOutput(features, embedding)
        part_logits = torch.stack([head(f) for head, f in zip(self.classifier_parts, local_bn)], dim=1)
        return ReIDOutput(features, embedding, self.classifier(global_bn), part_logits)

    def load_imagenet(self, path: str) -> None:
        """Load ImageNet ViT weights (torchvision ``vit_b_16`` or timm naming) into the transformer."""
        from reid.checkpoint import load_checkpoint, load_weights_into

        state = _map_imagenet_keys(load_checkpoint(path)["state_dict"], len(self.blocks))
        if "pos_embed" in state:
            pos = state["pos_embed"]
            side = round((pos.shape[1] - 1) ** 0.5)
            if side * side != pos.shape[1] - 1:
                raise ValueError(f"pretrained pos_embed: expected a square patch grid, got {tuple(pos.shape)}")
            state["pos_embed"] = resize_pos_embed(pos, self.grid, (side, side))
        load_weights_into(self, state, allow_missing=("sie_embed", "bottleneck", "part_necks", "classifier"))


_TORCHVISION_RULES = [
    (r"^conv_proj\.", "patch_embed."),
    (r"^class_token$", "cls_token"),
    (r"^encoder\.pos_embedding$", "pos_embed"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.", r"blocks.\1."),
    (r"^encoder\.ln\.", "norm."),
]
_TIMM_RULES = [
    (r"^patch_embed\.proj\.", "patch_embed."),
    (r"\.norm1\.", ".ln_1."),
    (r"\.norm2\.", ".ln_2."),
    (r"\.attn\.qkv\.weight$", ".self_attention.in_proj_weight"),
    (r"\.attn\.qkv\.bias$", ".self_attention.in_proj_bias"),
    (r"\.attn\.proj\.", ".self_attention.out_proj."),
    (r"\.mlp\.fc1\.", ".mlp.0."),
    (r"\.mlp\.fc2\.", ".mlp.3."),
]


def _map_imagenet_keys(state: dict[str, torch.Tensor], shared_depth: int) -> dict[str, torch.Tensor]:
    """Rename an ImageNet ViT state dict to ours; the last block and final norm go to both b1 and b2."""
    rules = _TORCHVISION_RULES if "conv_proj.weight" in state else _TIMM_RULES
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(("head", "heads.", "fc_norm", "pre_logits", "dist_token", "head_dist")):
            continue
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        last = re.match(rf"^blocks\.{shared_depth}\.(.*)$", key)
        if last or key.startswith("norm."):
            sub = f"0.{last.group(1)}" if last else f"1.{key[len('norm.') :]}"
            out[f"b1.{sub}"], out[f"b2.{sub}"] = value, value.clone()
        else:
            out[key] = value
    return out


def vit_transreid(num_classes: int = 0, **kwargs: object) -> TransReID:
    """ViT-B/16 TransReID (stride 12, 12 blocks, 768-d tokens, 4 jigsaw groups): 3840-d embedding."""
    return TransReID(num_classes=num_classes, **kwargs)


def vit_transreid_tiny(num_classes: int = 0, **kwargs: object) -> TransReID:
    """A small TransReID for tests: 64x32 input, 8/6 patches (10x5), 2 blocks of 48-d tokens: 240-d."""
    tiny = {"img_size": (64, 32), "patch_size": 8, "stride": 6, "embed_dim": 48, "depth": 2, "num_heads": 3}
    return TransReID(num_classes=num_classes, **{**tiny, "mlp_dim": 96, "shift": 2, **kwargs})
