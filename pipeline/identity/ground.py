"""Overlapping views: where two cameras see the same ground, one person stands on one spot in both.

Cameras whose views overlap see a person at the same moment, and the ground plane maps one image onto the
other by a homography. No calibration is needed: the run's own identities give the correspondences. For each
pair of cameras, the foot points (bottom centre of the box) of one identity seen by both on one frame are
matched, and a homography from one image's ground to the other's is fitted with RANSAC
(:func:`fit_ground_maps`). A pair of cameras that do not overlap gives too few consistent correspondences
and gets no map.

With a map, two tracklets of the two cameras that are seen on common frames and stand on the same mapped
spot on them (within a tenth of a person's height, the median over those frames: people in a group stand
further apart than that) are one person (:func:`colocated_pairs`), whatever their crops look like (a man
seen from the front in one view and from the back in another; the light of one view against the other).
:func:`merge_colocated` joins their identities at the end of a run, strongest evidence first, never into an
identity that would then hold two tracklets of one camera at one time.

Assumptions: people walk on one ground plane (a homography holds for foot points); the run's identities
are mostly right where several cameras see people together (RANSAC tolerates the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.identity.tracklets import Tracklet

logger = logging.getLogger(__name__)

MIN_MATCHES = 50  # foot-point correspondences (same identity, same frame) a camera pair needs for a map
MIN_INLIERS = 0.5  # ... of which RANSAC must keep this share (else the views do not share a ground)
RANSAC_HEIGHTS = 0.15  # RANSAC tolerance, in median box heights of the target camera
MIN_COMMON = 10  # frames two tracklets must be seen together on
OUTWEIGH = 10  # frames on one spot that outweigh one frame of one camera holding both identities
NEAR_HEIGHTS = 0.1  # median distance of the mapped foot points, in the target boxes' heights: one spot


def foot_points(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) bottom centres and (N,) heights of (N, 4) xyxy boxes."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]]), boxes[:, 3] - boxes[:, 1]


def project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) ``points`` mapped by the 3x3 homography ``h`` (NaN where they map to infinity)."""
    p = np.column_stack([points, np.ones(len(points))]) @ h.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return p[:, :2] / np.where(np.abs(p[:, 2:]) > 1e-12, p[:, 2:], np.nan)


def _co_visible(
    cameras: np.ndarray, frames: np.ndarray, keys: np.ndarray, a: str, b: str
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (i in camera ``a``, j in camera ``b``) with the same frame and the same ``keys`` value (>= 0),
    the first row of each (camera, frame, key)."""
    out = []
    for cam in (a, b):
        rows = np.flatnonzero((cameras == cam) & (keys >= 0))
        _, first = np.unique(np.column_stack([frames[rows], keys[rows]]), axis=0, return_index=True)
        out.append(rows[first])
    ra, rb = out
    ka = frames[ra].astype(np.int64) * (1 << 32) + keys[ra]
    kb = frames[rb].astype(np.int64) * (1 << 32) + keys[rb]
    _, ia, ib = np.intersect1d(ka, kb, return_indices=True)
    return ra[ia], rb[ib]


def fit_ground_maps(
    cameras: np.ndarray, frames: np.ndarray, gids: np.ndarray, boxes: np.ndarray
) -> dict[tuple[str, str], np.ndarray]:
    """{(a, b): 3x3 homography from camera a's foot points to camera b's} for every ordered camera pair whose
    rows (``cameras``, ``frames``, global ids ``gids``, xyxy ``boxes``) hold :data:`MIN_MATCHES` matches of
    one identity on one frame, :data:`MIN_INLIERS` of them consistent with one homography."""
    import cv2

    cameras, gids = np.asarray(cameras), np.asarray(gids, np.int64)
    feet, heights = foot_points(boxes)
    maps = {}
    names = sorted(set(cameras.tolist()))
    for a in names:
        for b in names:
            if a == b:
                continue
            i, j = _co_visible(cameras, frames, gids, a, b)
            if len(i) < MIN_MATCHES:
                continue
            tolerance = RANSAC_HEIGHTS * float(np.median(heights[j]))
            h, inliers = cv2.findHomography(feet[i].astype(np.float32), feet[j].astype(np.float32), cv2.RANSAC,
                                            max(tolerance, 1.0))  # fmt: skip
            kept = 0 if inliers is None else int(inliers.sum())
            if h is None or kept < max(MIN_MATCHES, MIN_INLIERS * len(i)):
                continue
            maps[(a, b)] = h
            logger.info("cameras %s and %s share a ground: %d of %d matched foot points fit one homography",
                        a, b, kept, len(i))  # fmt: skip
    return maps


def colocated_pairs(
    cameras: np.ndarray, frames: np.ndarray, tracklet_ids: np.ndarray, boxes: np.ndarray,
    maps: Mapping[tuple[str, str], np.ndarray],
) -> list[tuple[int, int, int]]:  # fmt: skip
    """(common frames, tracklet x, tracklet y) for tracklets of two cameras with a map that are seen together
    on :data:`MIN_COMMON` frames or more and whose median distance, the foot point of one mapped into the
    other's image, in the other's box heights (both ways where both maps exist, pooled), is at most
    :data:`NEAR_HEIGHTS`; most common frames first."""
    cameras, tids = np.asarray(cameras), np.asarray(tracklet_ids, np.int64)
    frames = np.asarray(frames, np.int64)
    feet, heights = foot_points(boxes)
    keys, dists, ways = [np.zeros((0, 2), np.int64)], [np.zeros(0)], {}
    for (a, b), h in maps.items():
        ra, rb = _pairs_on_frames(cameras, frames, tids, a, b)
        d = np.linalg.norm(project(h, feet[ra]) - feet[rb], axis=1) / np.maximum(heights[rb], 1.0)
        keys.append(np.column_stack([np.minimum(tids[ra], tids[rb]), np.maximum(tids[ra], tids[rb])]))
        dists.append(np.nan_to_num(d, nan=np.inf))
        ways[frozenset((a, b))] = ways.get(frozenset((a, b)), 0) + 1
    key, dist = np.concatenate(keys), np.concatenate(dists)
    if not len(key):
        return []
    pairs, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.lexsort((dist, inverse))
    count = np.bincount(inverse, minlength=len(pairs))
    starts = np.cumsum(count) - count
    median = dist[order][starts + (count - 1) // 2]  # the lower median of each pair's distances
    cam_of = dict(zip(tids.tolist(), cameras.tolist()))
    n_ways = np.array([ways[frozenset((cam_of[x], cam_of[y]))] for x, y in pairs.tolist()])
    common = count // n_ways
    ok = (common >= MIN_COMMON) & (median <= NEAR_HEIGHTS)
    found = [(int(n), int(x), int(y)) for n, (x, y) in zip(common[ok], pairs[ok].tolist())]
    return sorted(found, key=lambda p: (-p[0], p[1], p[2]))


def _pairs_on_frames(
    cameras: np.ndarray, frames: np.ndarray, tids: np.ndarray, a: str, b: str
) -> tuple[np.ndarray, np.ndarray]:
    """Every (row of camera a, row of camera b) on one frame, both with a tracklet id."""
    ra = np.flatnonzero((cameras == a) & (tids >= 0))
    rb = np.flatnonzero((cameras == b) & (tids >= 0))
    ra, rb = ra[np.argsort(frames[ra], kind="stable")], rb[np.argsort(frames[rb], kind="stable")]
    lo = np.searchsorted(frames[rb], frames[ra], side="left")
    hi = np.searchsorted(frames[rb], frames[ra], side="right")
    count = hi - lo
    first = np.repeat(ra, count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return first, rb[np.repeat(lo, count) + offsets]


def merge_colocated(
    mapping: Mapping[int, int], pairs: Sequence[tuple[int, int, int]], tracklets: Sequence[Tracklet]
) -> dict[int, int]:
    """``mapping`` (tracklet id -> global id) with the identities of each co-located pair joined (the lower
    global id kept; a tracklet without one joins the other's), in order.

    A join that would give the identity two tracklets of one camera active on common frames
    (:meth:`Tracklet.overlaps`) is made only when the two identities stand on one spot on at least
    :data:`OUTWEIGH` times as many frames (summed over every co-located pair between them) as they clash on: a
    tracker that starts a track on one box and jumps to the person a moment later makes such a short clash;
    two people cannot share a spot for long. On the frames of the clash one of the two tracks keeps the id
    (:func:`pipeline.identity.outputs.repeated_ids`)."""
    out = dict(mapping)
    by_id = {t.tracklet_id: t for t in tracklets}
    for n, x, y in pairs:
        gx, gy = out.get(x, -1), out.get(y, -1)
        if x not in by_id or y not in by_id or (gx == gy and gx >= 0):
            continue
        keep = min(g for g in (gx, gy) if g >= 0) if max(gx, gy) >= 0 else -1
        if keep < 0:
            continue
        side_x = [by_id[t] for t, g in out.items() if g == gx and t in by_id] if gx >= 0 else [by_id[x]]
        side_y = [by_id[t] for t, g in out.items() if g == gy and t in by_id] if gy >= 0 else [by_id[y]]
        clash = sum(_shared_frames(p, q) for p in side_x for q in side_y if p.overlaps(q))
        if clash:
            sides = ({gx} if gx >= 0 else {x}, {gy} if gy >= 0 else {y})
            support = sum(m for m, a, b in pairs if _between(out, a, b, sides))
            if support < OUTWEIGH * clash:
                continue
        moved = {t.tracklet_id for t in side_x + side_y}
        out.update(dict.fromkeys(moved, keep))
        logger.info("tracklets %d (camera %s) and %d (camera %s) stand on one spot on %d common frames: "
                    "global ids %d and %d joined as %d%s", x, by_id[x].camera_id, y, by_id[y].camera_id, n, gx, gy,
                    keep, f" (despite {clash} frames of one camera holding both)" if clash else "")  # fmt: skip
    return out


def _shared_frames(a: Tracklet, b: Tracklet) -> int:
    return max(0, min(a.last_frame, b.last_frame) - max(a.first_frame, b.first_frame) + 1)


def _between(out: Mapping[int, int], a: int, b: int, sides: tuple[set[int], set[int]]) -> bool:
    """Tracklets ``a`` and ``b`` belong one to each side (a side: a global id, or a tracklet without one)."""
    key = lambda t: out.get(t, -1) if out.get(t, -1) >= 0 else t  # noqa: E731
    first, second = sides
    return (key(a) in first and key(b) in second) or (key(a) in second and key(b) in first)
