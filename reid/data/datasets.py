"""Torch dataset views over stored images.

:class:`UnlabeledImages` is what the unsupervised trainer trains on: it holds image keys, camera ids and
(optionally) tracklet ids, and has no way to return a person identity. Labels for evaluation come from
``Market1501.labels`` on the query/gallery splits only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from reid.data.images import ImageStore


class UnlabeledImages(Dataset):
    """Images without identity labels: item ``i`` is ``(image, camid, i)``.

    Args:
        store: where the images are read from.
        keys: (N,) image keys in ``store``.
        camids: (N,) int camera index of each image (a free, label-free signal).
        transform: applied to the (H, W, 3) uint8 BGR image; without it the raw array is returned.
        tracklet_ids: optional (N,) int64 tracklet id of each image (another free signal), exposed as the
            ``tracklet_ids`` attribute, not returned by ``__getitem__``.
    """

    def __init__(
        self,
        store: ImageStore,
        keys: Sequence[str],
        camids: Sequence[int] | np.ndarray,
        transform: Callable | None = None,
        tracklet_ids: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        self.store = store
        self.keys = list(keys)
        self.camids = np.asarray(camids, dtype=np.int64)
        if self.camids.shape != (len(self.keys),):
            raise ValueError(f"camids: expected shape ({len(self.keys)},), got {self.camids.shape}")
        self.tracklet_ids = None
        if tracklet_ids is not None:
            self.tracklet_ids = np.asarray(tracklet_ids, dtype=np.int64)
            if self.tracklet_ids.shape != (len(self.keys),):
                raise ValueError(f"tracklet_ids: expected shape ({len(self.keys)},), got {self.tracklet_ids.shape}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[object, int, int]:
        image = self.store.read(self.keys[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.camids[index]), int(index)

    def read(self, index: int) -> np.ndarray:
        """The untransformed (H, W, 3) uint8 BGR image ``index``."""
        return self.store.read(self.keys[index])

    def with_transform(self, transform: Callable | None) -> UnlabeledImages:
        """The same images with another transform (e.g. the eval transform for feature extraction)."""
        return UnlabeledImages(self.store, self.keys, self.camids, transform, self.tracklet_ids)

    def __repr__(self) -> str:
        return f"UnlabeledImages({len(self)} images, {len(np.unique(self.camids))} cameras, {self.store!r})"
