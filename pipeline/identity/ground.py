"""Overlapping views: where two cameras see the same ground, one person stands on one spot in both.

Cameras whose views overlap see a person at the same moment, and the ground plane maps one image onto the
other by a homography. No calibration is needed: the run's own identities give the correspondences. For each
pair of cameras, the foot points (bottom centre of the box) of one identity seen by both on one frame are
matched, and a homography from one image's ground to the other's is fitted with RANSAC
(:func:`fit_ground_maps`). A pair of cameras that do not overlap gives too few consistent correspondences
and gets no map.

With a map, two tracklets of the two cameras that are seen on common frames and stand on the same mapped
spot on them (within a tenth of a person's height, the median over those frames: people in a group stand
further apart than that) are one person (:func:`ground_pairs`), whatever their crops look like (a man
seen from the front in one view and from the back in another; the light of one view against the other).
Two tracklets seen together at two places (half a person's height or more apart) are two people.
:func:`merge_colocated` corrects the identities at the end of a run, strongest evidence first: two
identities the geometry vouches for (half the boxes of each) are joined; otherwise only the co-located
tracklets move, out of the identity where they are the smaller share, so a correct pair never joins two
people whom appearance had mixed up. Frames on one spot are weighed against the frames that say two people
(one camera holding both, or two places at once).

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
CONFIRMED = 0.5  # share of an identity's boxes the geometry must vouch for before it is joined whole
OUTWEIGH = 10  # frames on one spot that outweigh one frame of one camera holding both identities
NEAR_HEIGHTS = 0.1  # median distance of the mapped foot points, in the target boxes' heights: one spot
APART_HEIGHTS = 0.5  # ... at least this: two places at once, two people


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
    maps, fits = {}, []
    names = sorted(set(cameras.tolist()))
    for a in names:
        for b in names:
            if a == b:
                continue
            i, j = _co_visible(cameras, frames, gids, a, b)
            if len(i) < MIN_MATCHES:
                continue
            tolerance = RANSAC_HEIGHTS * float(np.median(heights[j]))
            try:
                h, inliers = cv2.findHomography(feet[i].astype(np.float32), feet[j].astype(np.float32),
                                                cv2.RANSAC, max(tolerance, 1.0))  # fmt: skip
            except cv2.error as exc:  # degenerate matches (e.g. one person standing still): no map, no lost run
                logger.info("cameras %s and %s: no ground map (%s)", a, b, str(exc).strip().splitlines()[-1])
                continue
            if h is None or not consistent(inliers, MIN_MATCHES, MIN_INLIERS):
                continue
            maps[(a, b)] = h
            fits.append(f"{a}->{b} {int(inliers.sum())}/{len(i)}")
    if fits:
        logger.info("ground maps (matched foot points that fit one homography): %s", ", ".join(fits))
    return maps


def consistent(inliers: np.ndarray | None, minimum: int, share: float) -> bool:
    """Whether a RANSAC fit's inlier mask (K, 1) keeps at least ``minimum`` matches and ``share`` of them."""
    kept = 0 if inliers is None else int(np.count_nonzero(inliers))
    return inliers is not None and kept >= max(minimum, share * len(inliers))


def ground_pairs(
    cameras: np.ndarray, frames: np.ndarray, tracklet_ids: np.ndarray, boxes: np.ndarray,
    maps: Mapping[tuple[str, str], np.ndarray],
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:  # fmt: skip
    """Tracklets of two cameras with a map that are seen together on :data:`MIN_COMMON` frames or more, by the
    median distance between the foot point of one mapped into the other's image and the other's, in the
    other's box heights (both ways where both maps exist, pooled): (near, apart), each a list of (common
    frames, tracklet x, tracklet y), most common frames first. Near: at most :data:`NEAR_HEIGHTS` (one person);
    apart: at least :data:`APART_HEIGHTS` (two people, at two places at once)."""
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
        return [], []
    pairs, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.lexsort((dist, inverse))
    count = np.bincount(inverse, minlength=len(pairs))
    starts = np.cumsum(count) - count
    median = dist[order][starts + (count - 1) // 2]  # the lower median of each pair's distances
    cam_of = dict(zip(tids.tolist(), cameras.tolist()))
    n_ways = np.array([ways[frozenset((cam_of[x], cam_of[y]))] for x, y in pairs.tolist()])
    common = count // n_ways

    def listed(ok: np.ndarray) -> list[tuple[int, int, int]]:
        found = [(int(n), int(x), int(y)) for n, (x, y) in zip(common[ok], pairs[ok].tolist())]
        return sorted(found, key=lambda p: (-p[0], p[1], p[2]))

    seen = common >= MIN_COMMON
    return listed(seen & (median <= NEAR_HEIGHTS)), listed(seen & (median >= APART_HEIGHTS))


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
    mapping: Mapping[int, int], pairs: Sequence[tuple[int, int, int]], tracklets: Sequence[Tracklet],
    apart: Sequence[tuple[int, int, int]] = (),
) -> dict[int, int]:  # fmt: skip
    """``mapping`` (tracklet id -> global id) corrected by the co-located pairs (``pairs``, from
    :func:`ground_pairs`: each pair is one person), identity pair by identity pair, most frames on one spot
    first. A tracklet without a global id counts as an identity of its own.

    Two identities whose co-located tracklets hold at least :data:`CONFIRMED` of the boxes of each are one
    person and are joined (the lower global id kept). Otherwise the geometry vouches only for those
    tracklets: the ones that are the smaller share of their identity (a look-alike that appearance put with
    someone else) move to the other. Evidence against a change: frames on which the result would have two
    tracklets of one camera at once (:meth:`Tracklet.overlaps`) or two tracklets at two places of overlapping
    views (``apart``). A change against any is made only when the frames on one spot are :data:`OUTWEIGH`
    times as many (a tracker that starts a track on a stray box and jumps to the person a moment later makes a
    short clash; two people cannot share a spot for long). On the frames of a clash one of the two tracks
    keeps the id (:func:`pipeline.identity.outputs.repeated_ids`)."""
    out = dict(mapping)
    by_id = {t.tracklet_id: t for t in tracklets}
    pairs = [p for p in pairs if p[1] in by_id and p[2] in by_id]
    refused: set[tuple[int, ...]] = set()
    moved_once: set[int] = set()  # a tracklet moves at most once (two moves could undo each other for ever)
    for _ in range(4 * len(pairs) + 1):  # every step joins identities or moves new tracklets: it ends
        groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        for n, x, y in pairs:
            kx, ky = _side(out, x), _side(out, y)
            if kx != ky:
                groups.setdefault((min(kx, ky), max(kx, ky)), []).append((n, x, y) if kx < ky else (n, y, x))
        todo = [(sum(n for n, _, _ in g), k) for k, g in groups.items()]
        todo = sorted((t for t in todo if _key(t[1], groups[t[1]]) not in refused), reverse=True)
        if not todo:
            return out
        support, (ka, kb) = todo[0]
        near = groups[(ka, kb)]
        moved = _change(out, by_id, ka, kb, near)
        against = _against(out, by_id, moved[0], apart)
        keep = _keep(out, ka, kb, moved)
        shifted = set() if moved[1] else moved[0] - moved[2]
        if keep < 0 or shifted & moved_once or (against and support < OUTWEIGH * against):
            refused.add(_key((ka, kb), near))
            continue
        moved_once |= shifted
        out.update(dict.fromkeys(moved[0], keep))
        logger.info("tracklets %s stand on one spot with %s in overlapping views on %d frames: %s global id %d%s",
                    sorted({x for _, x, _ in near}), sorted({y for _, _, y in near}), support,
                    "joined as" if moved[1] else "moved to", keep,
                    f" (despite {against} frames against)" if against else "")  # fmt: skip
    return out


def _side(out: Mapping[int, int], tid: int) -> int:
    """A tracklet's identity key: its global id, or -1 - its id when it has none."""
    gid = out.get(tid, -1)
    return gid if gid >= 0 else -1 - tid


def _members(out: Mapping[int, int], by_id: Mapping[int, Tracklet], key: int) -> list[int]:
    return [-1 - key] if key < 0 else [t for t, g in out.items() if g == key and t in by_id]


def _key(pair: tuple[int, int], near: list[tuple[int, int, int]]) -> tuple[int, ...]:
    return (*pair, *sorted({t for _, x, y in near for t in (x, y)}))


def _change(
    out: Mapping[int, int], by_id: Mapping[int, Tracklet], ka: int, kb: int, near: list[tuple[int, int, int]]
) -> tuple[set[int], bool, set[int]]:
    """What the geometry asks of identities ``ka`` and ``kb``: (tracklets that get one id, whether the two
    identities are joined whole, the tracklets they join)."""
    members = {ka: _members(out, by_id, ka), kb: _members(out, by_id, kb)}
    shown = {ka: {x for _, x, _ in near}, kb: {y for _, _, y in near}}
    boxes = lambda ts: sum(max(by_id[t].n_boxes, 1) for t in ts)  # noqa: E731
    share = {k: boxes(shown[k]) / boxes(members[k]) for k in (ka, kb)}
    if min(share.values()) >= CONFIRMED or min(ka, kb) < 0:  # a tracklet without an id joins whole
        both = set(members[ka]) | set(members[kb])
        return both, True, both
    small, large = (ka, kb) if share[ka] < share[kb] else (kb, ka)
    return set(shown[small]) | set(members[large]), False, set(members[large])


def _against(
    out: Mapping[int, int], by_id: Mapping[int, Tracklet], group: set[int], apart: Sequence[tuple[int, int, int]]
) -> int:
    """Frames that say two tracklets about to share one id, of two identities until now, are two people."""
    ts = [by_id[t] for t in sorted(group)]
    new = lambda a, b: _side(out, a) != _side(out, b)  # noqa: E731
    clash = sum(_shared_frames(p, q) for i, p in enumerate(ts) for q in ts[i + 1 :]
                if new(p.tracklet_id, q.tracklet_id) and p.overlaps(q))  # fmt: skip
    return clash + sum(n for n, a, b in apart if a in group and b in group and new(a, b))


def _keep(out: Mapping[int, int], ka: int, kb: int, moved: tuple[set[int], bool, set[int]]) -> int:
    """The global id the changed tracklets share: the lower of the two when joined, else the receiving one's."""
    if moved[1]:
        ids = [k for k in (ka, kb) if k >= 0]
        return min(ids) if ids else -1
    return {_side(out, t) for t in moved[2]}.pop()


def _shared_frames(a: Tracklet, b: Tracklet) -> int:
    return max(0, min(a.last_frame, b.last_frame) - max(a.first_frame, b.first_frame) + 1)
