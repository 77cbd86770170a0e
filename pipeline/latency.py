"""Frame age at detection: how far behind reality each live camera is processed.

A live frame's age is the time from its capture (the reader's clock) to the moment the detector gets it.
:class:`FrameAges` keeps a uniform sample of every camera's ages (a fixed-size reservoir, so a run of any
length costs the same memory) and reports their median and 95th percentile.
"""

from __future__ import annotations

import numpy as np


class FrameAges:
    """A reservoir of at most ``size`` ages (s) per camera; ``summary`` gives p50 / p95 per camera."""

    def __init__(self, size: int = 4096, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"size: expected an int >= 1, got {size}")
        self.size = size
        self._rng = np.random.default_rng(seed)
        self._kept: dict[str, np.ndarray] = {}
        self._seen: dict[str, int] = {}

    def add(self, camera_id: str, age_s: float) -> None:
        seen = self._seen.get(camera_id, 0)
        self._seen[camera_id] = seen + 1
        kept = self._kept.setdefault(camera_id, np.empty(self.size, np.float64))
        slot = seen if seen < self.size else int(self._rng.integers(seen + 1))
        if slot < self.size:
            kept[slot] = age_s

    def summary(self, camera_id: str) -> dict[str, float] | None:
        """``{"p50": s, "p95": s, "frames": n}`` over the camera's ages; None when it has none."""
        seen = self._seen.get(camera_id, 0)
        if seen == 0:
            return None
        ages = self._kept[camera_id][: min(seen, self.size)]
        p50, p95 = np.percentile(ages, [50, 95])
        return {"p50": round(float(p50), 4), "p95": round(float(p95), 4), "frames": seen}
