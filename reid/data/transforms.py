"""Image transforms for ReID at 256x128, taking OpenCV's (H, W, 3) uint8 BGR arrays.

Train: resize, random horizontal flip, pad 10 + random crop, ImageNet normalisation, random erasing (the
cluster-contrast / strong-baseline recipe). Eval: resize + normalisation. Both return (3, H, W) float32
RGB tensors; resizing is bilinear (antialiased when shrinking).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import InterpolationMode, v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def bgr_to_rgb_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) BGR, (H, W, 4) BGRA or (H, W[, 1]) gray uint8 -> (3, H, W) uint8 RGB tensor."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        raise ValueError(f"image: expected a uint8 numpy array (H, W, 3) BGR, got {got}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image: expected shape (H, W, 3) BGR with H, W > 0, got {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    rgb = np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB, alpha dropped
    return torch.from_numpy(rgb).permute(2, 0, 1)


class BGRTransform:
    """A torchvision v2 pipeline applied to a BGR numpy image; picklable for DataLoader workers."""

    def __init__(self, pipeline: v2.Compose) -> None:
        self.pipeline = pipeline

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 BGR -> (3, height, width) float32 normalised RGB."""
        return self.pipeline(bgr_to_rgb_tensor(image))

    def __repr__(self) -> str:
        return f"BGRTransform({self.pipeline})"


def _check_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ValueError(f"transform size: expected positive (height, width), got ({height}, {width})")


def build_train_transform(
    height: int = 256,
    width: int = 128,
    flip_p: float = 0.5,
    pad: int = 10,
    erase_p: float = 0.5,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> BGRTransform:
    """Training augmentation; random erasing fills with 0 after normalisation (the mean colour)."""
    _check_size(height, width)
    steps: list = [v2.Resize((height, width), interpolation=InterpolationMode.BILINEAR, antialias=True)]
    if flip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=flip_p))
    if pad > 0:
        steps += [v2.Pad(pad), v2.RandomCrop((height, width))]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if erase_p > 0:
        steps.append(v2.RandomErasing(p=erase_p, value=0))
    return BGRTransform(v2.Compose(steps))


def build_eval_transform(
    height: int = 256,
    width: int = 128,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> BGRTransform:
    """Deterministic resize + normalisation for feature extraction."""
    _check_size(height, width)
    return BGRTransform(
        v2.Compose(
            [
                v2.Resize((height, width), interpolation=InterpolationMode.BILINEAR, antialias=True),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(mean), list(std)),
            ]
        )
    )
