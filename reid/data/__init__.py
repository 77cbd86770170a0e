"""ReID data: Market-1501 (read in place from its zip), harvested-crop manifests, transforms, samplers.

Names are imported lazily so that ``import reid.data.market1501`` does not pull in torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ImageRecord": "reid.data.market1501",
    "Market1501": "reid.data.market1501",
    "HarvestedCrops": "reid.data.manifest",
    "ImageStore": "reid.data.images",
    "UnlabeledImages": "reid.data.datasets",
    "PKSampler": "reid.data.samplers",
    "CameraAwarePKSampler": "reid.data.samplers",
    "build_train_transform": "reid.data.transforms",
    "build_eval_transform": "reid.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
