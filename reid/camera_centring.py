"""Camera centring of ReID embeddings: remove each camera's mean direction before comparing.

A camera's light, white balance and viewpoint shift every embedding it yields in a common direction;
subtracting that camera's mean (shrunk towards zero by ``prior`` pseudo-tracklets) and renormalising makes
similarities across cameras comparable to those within one. Used by the linker, the calibration and the
trainer's tracklet pseudo-labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def centre_by_camera(
    vecs: np.ndarray, cams: Sequence[str], sums: Mapping[str, np.ndarray], counts: Mapping[str, int], prior: float
) -> np.ndarray:
    """(n, D) unit rows of ``vecs`` minus their camera's mean ``sums[cam] / (counts[cam] + prior)``.

    Cameras absent from ``sums`` are not shifted; a row that would vanish keeps its direction.
    """
    means = {c: sums[c] / (counts[c] + prior) for c in set(cams) & set(sums)}
    zero = np.zeros(vecs.shape[1])
    out = vecs - np.stack([means.get(c, zero) for c in cams]) if len(cams) else vecs
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.where(norm > 1e-6, out / np.maximum(norm, 1e-12), vecs).astype(np.float32)


def centre_finite_rows(
    vecs: np.ndarray, cams: Sequence[str], sums: Mapping[str, np.ndarray], counts: Mapping[str, int], prior: float
) -> np.ndarray:
    """:func:`centre_by_camera` on the finite rows of ``vecs``; rows holding a NaN stay NaN."""
    ok = np.isfinite(vecs).all(axis=1)
    out = np.full(vecs.shape, np.nan, np.float32)
    if ok.any():
        out[ok] = centre_by_camera(vecs[ok], [c for c, k in zip(cams, ok.tolist()) if k], sums, counts, prior)
    return out


def camera_sums(means: np.ndarray, cams: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Per camera, the float64 sum of its rows of ``means`` and their count (for :func:`centre_by_camera`)."""
    cams_arr = np.asarray(cams)
    sums = {c: means[cams_arr == c].astype(np.float64).sum(axis=0) for c in set(cams)}
    return sums, {c: int(np.count_nonzero(cams_arr == c)) for c in sums}
