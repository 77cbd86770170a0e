"""OSNet (Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification", ICCV 2019).

Each residual bottleneck runs T = 1..4 stacks of Lite 3x3 layers (1x1 conv + depthwise 3x3) in parallel,
so the streams see growing receptive fields, and fuses them with one shared channel gate (the unified
aggregation gate). Stem: 7x7/2 conv + 3x3/2 max-pool; three stages of two blocks, the first two ending in a
transition (1x1 conv + 2x2 average pool); a 1x1 conv5; global average pooling; fc -> BN -> ReLU (512-d).

Parameter names follow torchreid's ``osnet.py`` so its model-zoo state dicts load strictly. Eval output is
the 512-d fc output, as torchreid's; train mode returns :class:`ReIDOutput` with ``features`` and
``embedding`` both that fc output and ``logits`` from the optional ``classifier`` (linear with bias, as in
the zoo files).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid.models.common import ReIDOutput

WIDTHS: dict[str, tuple[int, int, int, int]] = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}


class ConvBN(nn.Module):
    """Conv2d (no bias) + BatchNorm2d, optionally followed by ReLU. Keys: ``conv.*``, ``bn.*``."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.relu else x


class LiteConv3x3(nn.Module):
    """1x1 conv (linear) then depthwise 3x3 conv + BN + ReLU. Keys: ``conv1``, ``conv2``, ``bn``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, groups=c_out, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv2(self.conv1(x))), inplace=True)


class AggregationGate(nn.Module):
    """Channel gate shared by all streams: GAP -> 1x1 (C/16) -> ReLU -> 1x1 (C) -> sigmoid, times input."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)), inplace=True)
        return x * torch.sigmoid(self.fc2(w))


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck; ``conv2a``..``conv2d`` are the T = 1..4 Lite 3x3 streams."""

    def __init__(self, c_in: int, c_out: int, bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = c_out // bottleneck_reduction
        self.conv1 = ConvBN(c_in, mid)
        self.conv2a = LiteConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*(LiteConv3x3(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LiteConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LiteConv3x3(mid, mid) for _ in range(4)))
        self.gate = AggregationGate(mid)
        self.conv3 = ConvBN(mid, c_out, relu=False)
        self.downsample = ConvBN(c_in, c_out, relu=False) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        streams = (self.conv2a(x1), self.conv2b(x1), self.conv2c(x1), self.conv2d(x1))
        fused = self.gate(streams[0]) + self.gate(streams[1]) + self.gate(streams[2]) + self.gate(streams[3])
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(fused) + identity)


def _stage(c_in: int, c_out: int, blocks: int, transition: bool) -> nn.Sequential:
    layers: list[nn.Module] = [OSBlock(c_in, c_out)] + [OSBlock(c_out, c_out) for _ in range(blocks - 1)]
    if transition:
        layers.append(nn.Sequential(ConvBN(c_out, c_out), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet with torchreid-compatible parameter names.

    Args:
        channels: stem width and the three stage widths, e.g. (16, 64, 96, 128) for x0.25.
        num_classes: size of the optional ``classifier`` (0: none).
        feature_dim: width of the fc embedding (512 in every zoo model).
    """

    def __init__(self, channels: tuple[int, int, int, int], num_classes: int = 0, feature_dim: int = 512):
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes: expected >= 0, got {num_classes}")
        c0, c1, c2, c3 = channels
        self.conv1 = ConvBN(3, c0, kernel=7, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c0, c1, 2, transition=True)
        self.conv3 = _stage(c1, c2, 2, transition=True)
        self.conv4 = _stage(c2, c3, 2, transition=False)
        self.conv5 = ConvBN(c3, c3)
        self.fc = nn.Sequential(nn.Linear(c3, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes > 0 else None
        self.embedding_dim = feature_dim
        self.feature_channels = c3
        self._init_params()

    def _init_params(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, H/16, W/16) conv5 feature maps."""
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor | ReIDOutput:
        fmap = self.featuremaps(x)
        v = self.fc(fmap.mean(dim=(2, 3)))
        if not self.training:
            return v
        logits = self.classifier(v) if self.classifier is not None else None
        return ReIDOutput(v, v, logits, feature_map=fmap)


def _factory(name: str):
    def build(num_classes: int = 0, feature_dim: int = 512) -> OSNet:
        return OSNet(WIDTHS[name], num_classes=num_classes, feature_dim=feature_dim)

    build.__name__ = name
    build.__doc__ = f"{name}: OSNet with stage widths {WIDTHS[name]}."
    return build


osnet_x1_0 = _factory("osnet_x1_0")
osnet_x0_75 = _factory("osnet_x0_75")
osnet_x0_5 = _factory("osnet_x0_5")
osnet_x0_25 = _factory("osnet_x0_25")
