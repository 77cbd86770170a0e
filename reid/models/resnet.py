"""ResNet-50 strong baseline (Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person ReID").

torchvision's ResNet-50 trunk with the last stride set to 1 (16x8 feature map for 256x128 input), GeM or
average pooling, and a BNNeck (BatchNorm1d with frozen zero bias) giving the 2048-d eval embedding.
Train mode returns :class:`ReIDOutput` ``(pooled, bnneck(pooled), classifier(bnneck(pooled)) | None)``.

ImageNet weights come only from a local file (``pretrained=PATH``, a torchvision ``resnet50`` state dict);
nothing is ever downloaded.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from reid.models.common import AvgPool, GeM, ReIDOutput, bnneck, identity_head

_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
POOLINGS = ("gem", "avg")


class ResNet50BNNeck(nn.Module):
    """ResNet-50 + pooling + BNNeck. Keys: ``backbone.<torchvision name>``, ``pool``, ``bnneck``, ``classifier``.

    Args:
        num_classes: size of the optional identity head (0: none).
        pooling: ``"gem"`` (learnable p, starts at 3) or ``"avg"``.
        last_stride: stride of layer4 (1 in the strong baseline, 2 in plain ResNet).
        pretrained: path of a torchvision ImageNet ``resnet50`` state dict, or ``None`` for random init.
    """

    def __init__(
        self, num_classes: int = 0, pooling: str = "gem", last_stride: int = 1, pretrained: str | None = None
    ) -> None:
        super().__init__()
        from torchvision.models import resnet50 as tv_resnet50

        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, got {pooling!r}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride: expected 1 or 2, got {last_stride!r}")
        trunk = tv_resnet50(weights=None)
        trunk.layer4[0].conv2.stride = (last_stride, last_stride)
        trunk.layer4[0].downsample[0].stride = (last_stride, last_stride)
        self.backbone = nn.Sequential(OrderedDict((name, getattr(trunk, name)) for name in _TRUNK))
        self.pool = GeM() if pooling == "gem" else AvgPool()
        self.bnneck = bnneck(2048)
        self.classifier = identity_head(2048, num_classes)
        self.embedding_dim = 2048
        self.feature_channels = 2048
        if pretrained is not None:
            self.load_imagenet(pretrained)

    def load_imagenet(self, path: str) -> None:
        """Load a torchvision ImageNet ResNet-50 state dict into the trunk (its ``fc.*`` is dropped)."""
        from reid.checkpoint import load_checkpoint, load_weights_into

        state = load_checkpoint(path)["state_dict"]
        trunk_state = {f"backbone.{k}": v for k, v in state.items() if not k.startswith("fc.")}
        load_weights_into(self, trunk_state, allow_missing=("pool.", "bnneck.", "classifier"))

    def forward(self, x: torch.Tensor) -> torch.Tensor | ReIDOutput:
        fmap = self.featuremaps(x)
        features = self.pool(fmap)
        embedding = self.bnneck(features)
        if not self.training:
            return embedding
        logits = self.classifier(embedding) if self.classifier is not None else None
        return ReIDOutput(features, embedding, logits, feature_map=fmap)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 2048, h, w) layer4 feature maps (H/16 x W/16 with last stride 1, /32 with 2)."""
        return self.backbone(x)


def resnet50(
    num_classes: int = 0, pooling: str = "gem", last_stride: int = 1, pretrained: str | None = None
) -> ResNet50BNNeck:
    """Strong-baseline ResNet-50 (2048-d BNNeck embedding); see :class:`ResNet50BNNeck`."""
    return ResNet50BNNeck(num_classes, pooling=pooling, last_stride=last_stride, pretrained=pretrained)
