"""Duplicate tracks: two tracks of one camera that stand on the same ground point are one person.

A detector sometimes boxes one person twice (the whole body and the legs with a carried bag; a person and
the same person a little shifted), and the tracker then follows both boxes as two tracks for a while. Two
people cannot stand on the same spot, so boxes whose foot points (bottom centre) coincide and of which the
smaller lies almost wholly inside the larger are one person; two tracks that do so on most of the frames
they share are one person's duplicate tracks. A person walking behind another is further away and stands
higher in the image (a different foot point), so occlusion does not count as a duplicate.

The shorter track of such a pair (fewer boxes) takes the longer one's global id at the end of a run
(:func:`fold_duplicates`), and on the frames both have a box the longer one keeps the id
(:func:`pipeline.identity.outputs.repeated_ids` with ``yielding``). Appearance cannot do this: a partial
box's crop (legs and a bag) does not look like the whole person.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

FOOT_TOLERANCE = 0.1  # foot points this far apart (fraction of the taller box's height), across and down
CONTAINED = 0.7  # at least this much of the smaller box's area lies inside the larger one
MIN_FRAMES = 5  # frames on which the two tracks' boxes must coincide at least
MIN_SHARE = 0.6  # ... and the share of the frames both tracks have a box on that they coincide on
_PAIR_CHUNK = 200_000  # box pairs compared at once (bounds memory on long, crowded runs)


def same_ground(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) bool: xyxy boxes ``a[i]`` and ``b[i]`` (N, 4) stand on one foot point (within
    :data:`FOOT_TOLERANCE` of the taller one's height) and the smaller lies :data:`CONTAINED` inside the larger."""
    height = np.maximum(a[:, 3] - a[:, 1], b[:, 3] - b[:, 1])
    across = np.abs((a[:, 0] + a[:, 2]) - (b[:, 0] + b[:, 2])) / 2
    down = np.abs(a[:, 3] - b[:, 3])
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    smaller = np.minimum(area(a), area(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (across <= FOOT_TOLERANCE * height) & (down <= FOOT_TOLERANCE * height) & (inter >= CONTAINED * smaller)
    return ok & (height > 0) & (smaller > 0)


def duplicate_tracklets(
    cameras: np.ndarray, frames: np.ndarray, tracklet_ids: np.ndarray, boxes: np.ndarray
) -> list[tuple[int, int]]:
    """(shorter, longer) tracklet id pairs that are duplicate tracks of one person, from track rows:
    ``cameras`` (N,) ids, ``frames`` (N,) int, ``tracklet_ids`` (N,) int (rows with an id < 0 are ignored),
    ``boxes`` (N, 4) xyxy. Two tracklets are duplicates when their boxes stand on the same ground
    (:func:`same_ground`) on at least :data:`MIN_FRAMES` frames and on :data:`MIN_SHARE` of the frames both
    have a box on. Sorted by the shorter id."""
    tids = np.asarray(tracklet_ids, np.int64).reshape(-1)
    n = len(tids)
    boxes = np.asarray(boxes, np.float64).reshape(n, 4)
    keep = tids >= 0
    if keep.sum() < 2:
        return []
    cam = np.unique(np.asarray(cameras).reshape(-1)[keep], return_inverse=True)[1]
    frame, tids, boxes = np.asarray(frames, np.int64).reshape(-1)[keep], tids[keep], boxes[keep]
    order = np.lexsort((frame, cam))
    group = np.concatenate([[0], np.cumsum((np.diff(cam[order]) != 0) | (np.diff(frame[order]) != 0))])
    a, b = _pairs_within(group)
    a, b = order[a], order[b]
    hits = np.zeros(0, np.int64)
    for s in range(0, len(a), _PAIR_CHUNK):
        i, j = a[s : s + _PAIR_CHUNK], b[s : s + _PAIR_CHUNK]
        ok = same_ground(boxes[i], boxes[j]) & (tids[i] != tids[j])
        lo, hi = np.minimum(tids[i], tids[j])[ok], np.maximum(tids[i], tids[j])[ok]
        hits = np.concatenate([hits, lo * (1 << 32) + hi])
    keys, counts = np.unique(hits, return_counts=True)
    out = []
    for key, count in zip(keys[counts >= MIN_FRAMES].tolist(), counts[counts >= MIN_FRAMES].tolist()):
        lo, hi = divmod(key, 1 << 32)
        fa, fb = frame[tids == lo], frame[tids == hi]
        shared = len(np.intersect1d(fa, fb))
        if count >= MIN_SHARE * shared:
            out.append((lo, hi) if len(fa) <= len(fb) else (hi, lo))
    return sorted(out)


def _pairs_within(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) of positions that share a ``group`` label (``group`` sorted, (N,) int)."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(group)])
    firsts, seconds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for k in np.unique(sizes[sizes >= 2]).tolist():  # groups of one size at a time: one triangle each
        i, j = np.triu_indices(k, 1)
        base = starts[sizes == k][:, None]
        firsts.append((base + i).ravel())
        seconds.append((base + j).ravel())
    return np.concatenate(firsts), np.concatenate(seconds)


def fold_duplicates(mapping: Mapping[int, int], duplicates: list[tuple[int, int]]) -> dict[int, int]:
    """``mapping`` (tracklet id -> global id) with the shorter tracklet of each duplicate pair given the
    global id of the longer one (followed along chains: a duplicate of a duplicate joins the longest).
    A pair whose longer tracklet has no global id changes nothing."""
    out = dict(mapping)
    host = dict(duplicates)

    def root(tid: int) -> int:
        seen = {tid}
        while tid in host and host[tid] not in seen:
            tid = host[tid]
            seen.add(tid)
        return tid

    for short in host:
        gid = out.get(root(short), -1)
        if gid >= 0:
            out[short] = gid
    return out
