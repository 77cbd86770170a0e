"""Adjacent views: where one camera loses a person at its edge, the next camera picks them up at once.

Two cameras that cover neighbouring stretches of ground (a corridor seen in two sections, a square cut in
two views) hand people over: a track ends at the edge of one view and a track starts at the matching edge
of the other within a second, and where on the edge says where on the other edge (a similarity transform
of foot points across the seam). No calibration is needed: the run's own identities give the
correspondences. For each pair of cameras, the hand-overs the identities hold (two tracklets of one
identity, one starting in the other view within :data:`MAX_GAP_S` of the first one's end) give matched
points, exit foot point -> entry foot point (and entry -> exit for hand-overs the other way, so both
directions fit one map); a similarity transform is fitted with RANSAC (:func:`fit_handoff_maps`). Camera
pairs with too few hand-overs, or hand-overs that agree on no map (people who walk between the views for
longer, or cross anywhere), get none.

With a map, a tracklet that starts in one view within :data:`MAX_GAP_S` of another view's tracklet's end
and within :data:`NEAR_HEIGHTS` of a person's height of where the map puts that end is one person with it,
when each is the other's nearest such match (:func:`handoff_pairs`): a person crossing the seam, whatever
their crops look like (cut in half by the edge of the view, seen from behind on one side). Offline linking
takes these pairs as must-links (:func:`pipeline.identity.linker.offline_relink`), and the trainer's
pseudo-labels too (``pipeline.adapt``).

Online, the seam is learned while the run goes on, and the linker then decides again what it decided while
the views were separate cameras (:meth:`pipeline.identity.linker.OnlineLinker._revisit_adjacent`). Views that
meet at a seam and share no ground (:attr:`Handoffs.apart`) see one person at once only while crossing:
two tracklets there active together for longer than
:data:`pipeline.identity.tracklets.TOGETHER_S` are two people. Views whose identities' hand-overs typically
start in the next view more than :data:`SHARED_S` before they end share a band of ground
(:attr:`Handoffs.shared`) and are exempt.

Assumptions: people keep walking across the seam (one who stands at the edge for longer than
:data:`MAX_GAP_S` is no hand-over); the identities the maps are fitted on are mostly right where people
cross (RANSAC tolerates the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pipeline.identity.ground import consistent
from pipeline.identity.tracklets import Tracklet

logger = logging.getLogger(__name__)

MAX_GAP_S = 1.5  # a hand-over: the other view's track starts at most this long after (or before) the first ends
MIN_HANDOVERS = 6  # hand-overs within identities two cameras need for a map
MIN_INLIERS = 0.6  # ... of which RANSAC must keep this share
RANSAC_HEIGHTS = 0.5  # RANSAC tolerance, in median box heights
NEAR_HEIGHTS = 0.3  # the mapped end within this many box heights of the other's start: one person
MIN_SPREAD_HEIGHTS = 0.25  # the matched points on each side must spread along the seam at least this far
SCALES = (0.25, 4.0)  # a map's scale outside these is no seam (a degenerate fit)
STAY_HEIGHTS = 1.0  # a track of the same view this near the end (or the start) makes a hand-over ambiguous
SHARED_S = 0.5  # hand-overs that typically start in the next view this long before leaving: views share a band


@dataclass(frozen=True)
class Ends:
    """Where and when tracklets start and end.

    Attributes:
        ids: (T,) tracklet ids. cameras: (T,) camera ids. gids: (T,) global ids (-1: none).
        t0, t1: (T,) first and last timestamps (s). start, end: (T, 2) first and last foot points.
        h0, h1: (T,) first and last box heights.
    """

    ids: np.ndarray
    cameras: np.ndarray
    gids: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    start: np.ndarray
    end: np.ndarray
    h0: np.ndarray
    h1: np.ndarray


def tracklet_ends(tracklets: Sequence[Tracklet], mapping: Mapping[int, int] | None = None) -> Ends:
    """:class:`Ends` of the tracklets whose first and last boxes are known; global ids from ``mapping``
    (tracklet id -> global id; default: each tracklet's own ``global_id``)."""
    known = [t for t in tracklets if np.all(np.isfinite(t.first_box)) and np.all(np.isfinite(t.last_box))]
    first = np.array([t.first_box for t in known], np.float64).reshape(-1, 4)
    last = np.array([t.last_box for t in known], np.float64).reshape(-1, 4)
    gid = (lambda t: t.global_id) if mapping is None else (lambda t: mapping.get(t.tracklet_id, -1))  # noqa: E731
    return Ends(
        np.array([t.tracklet_id for t in known], np.int64),
        np.array([t.camera_id for t in known], dtype=object),
        np.array([gid(t) for t in known], np.int64),
        np.array([t.first_timestamp for t in known], np.float64),
        np.array([t.last_timestamp for t in known], np.float64),
        np.column_stack([(first[:, 0] + first[:, 2]) / 2, first[:, 3]]),
        np.column_stack([(last[:, 0] + last[:, 2]) / 2, last[:, 3]]),
        np.maximum(first[:, 3] - first[:, 1], 1.0),
        np.maximum(last[:, 3] - last[:, 1], 1.0),
    )


def _within(times: np.ndarray, pool: np.ndarray, around: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) pairs: ``pool[j]``'s time ``times[pool[j]]`` within ``width`` of ``around[i]`` (a sorted-time join:
    the pairs, not every pair of the two sets)."""
    order = pool[np.argsort(times[pool], kind="stable")]
    lo = np.searchsorted(times[order], around - width, side="left")
    hi = np.searchsorted(times[order], around + width, side="right")
    count = hi - lo
    i = np.repeat(np.arange(len(around)), count)
    offsets = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return i, order[np.repeat(lo, count) + offsets]


def _candidates(e: Ends, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) index pairs: x of camera ``a`` may hand over to y of camera ``b`` (y starts within
    :data:`MAX_GAP_S` of x's end, not before x starts, and carries on after x ends)."""
    xs, ys = np.flatnonzero(e.cameras == a), np.flatnonzero(e.cameras == b)
    i, y = _within(e.t0, ys, e.t1[xs], MAX_GAP_S)
    x = xs[i]
    ok = (e.t0[y] >= e.t0[x]) & (e.t1[y] >= e.t1[x])
    return x[ok], y[ok]


def _identity_handovers(e: Ends, a: str, b: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points of camera ``a``, their matches in camera ``b``, b's box heights there and the gaps (s, entry's
    start minus exit's end), of the hand-overs within one identity, both ways (a -> b: a's exit -> b's
    entry; b -> a: a's entry -> b's exit)."""
    src, dst, hgt, gap = [np.zeros((0, 2))], [np.zeros((0, 2))], [np.zeros(0)], [np.zeros(0)]
    for p, q in ((a, b), (b, a)):
        x, y = _candidates(e, p, q)
        same = (e.gids[x] == e.gids[y]) & (e.gids[x] >= 0)
        x, y = x[same], y[same]
        gap.append(e.t0[y] - e.t1[x])
        if p == a:
            src.append(e.end[x]), dst.append(e.start[y]), hgt.append(e.h0[y])
        else:
            src.append(e.start[y]), dst.append(e.end[x]), hgt.append(e.h1[x])
    return np.concatenate(src), np.concatenate(dst), np.concatenate(hgt), np.concatenate(gap)


def _spread(points: np.ndarray) -> float:
    """Standard deviation of ``points`` (K, 2) along their principal axis."""
    if len(points) < 2:
        return 0.0
    return float(np.sqrt(np.linalg.eigvalsh(np.cov(points.T))[-1]))


def fit_handoff_maps(e: Ends) -> tuple[dict[tuple[str, str], np.ndarray], frozenset[tuple[str, str]]]:
    """{(a, b): 2x3 similarity transform from camera a's side of the seam to camera b's} (a < b) for every
    camera pair whose identities hold :data:`MIN_HANDOVERS` hand-overs, :data:`MIN_INLIERS` of them on one map,
    spread along the seam (:data:`MIN_SPREAD_HEIGHTS`) with a plausible scale (:data:`SCALES`); and the pairs
    among them whose views share a band of ground: their identities' hand-overs typically start in the next
    view more than :data:`SHARED_S` before they end in this one (median gap)."""
    import cv2

    maps, fits, shared = {}, [], set()
    names = sorted(set(e.cameras.tolist()))
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            src, dst, hgt, gap = _identity_handovers(e, a, b)
            if len(src) < MIN_HANDOVERS:
                continue
            tolerance = max(RANSAC_HEIGHTS * float(np.median(hgt)), 1.0)
            m, inliers = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32),
                                                     method=cv2.RANSAC, ransacReprojThreshold=tolerance)  # fmt: skip
            if m is None or not consistent(inliers, MIN_HANDOVERS, MIN_INLIERS):
                continue
            on = inliers.ravel().astype(bool)
            spread = min(_spread(src[on]), _spread(dst[on])) / float(np.median(hgt))
            if spread < MIN_SPREAD_HEIGHTS or not SCALES[0] <= float(np.hypot(m[0, 0], m[1, 0])) <= SCALES[1]:
                continue  # every match on one spot (a door, or boxes that carry no place): no seam to map
            maps[(a, b)] = m
            if float(np.median(gap)) < -SHARED_S:  # every hand-over: in a shared band the seam map is loose
                shared.add((a, b))
            fits.append(f"{a}<->{b} {int(on.sum())}/{len(src)}")
    if fits:
        logger.debug("hand-over maps (the identities' hand-overs that fit one map): %s", ", ".join(fits))
    return maps, frozenset(shared)


def handoff_pairs(e: Ends, maps: Mapping[tuple[str, str], np.ndarray]) -> list[tuple[int, int]]:
    """(tracklet x, tracklet y) of every hand-over the maps vouch for: y starts within :data:`MAX_GAP_S` of
    x's end in the other view, within :data:`NEAR_HEIGHTS` box heights of where the map puts x's end, and
    each of the two is the other's nearest such match (two people crossing the seam together are not
    swapped); nearest first. A pair another explanation fits is left out (:func:`_stays`): the person may have
    stayed in x's view, or y may be the continuation of a track of its own view."""
    import cv2

    xs, ys, ds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for (a, b), m in maps.items():
        for (p, q), tf in (((a, b), m), ((b, a), cv2.invertAffineTransform(m))):
            x, y = _candidates(e, p, q)
            d = np.linalg.norm(e.end[x] @ tf[:, :2].T + tf[:, 2] - e.start[y], axis=1) / e.h0[y]
            near = d <= NEAR_HEIGHTS
            near[near] = ~_stays(e, x[near], y[near])
            xs.append(x[near]), ys.append(y[near]), ds.append(d[near])
    x, y, d = np.concatenate(xs), np.concatenate(ys), np.concatenate(ds)
    order = np.argsort(d, kind="stable")
    x, y = x[order].tolist(), y[order].tolist()
    best_x, best_y = {}, {}
    for i, j in zip(x, y):  # nearest first: the first match of each is its best
        best_x.setdefault(i, j), best_y.setdefault(j, i)
    return [(int(e.ids[i]), int(e.ids[j])) for i, j in zip(x, y) if best_x[i] == j and best_y[j] == i]


def _stays(e: Ends, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(P,) bool: hand-over x -> y has another explanation: a track of x's view starts within
    :data:`MAX_GAP_S` of x's end, within :data:`STAY_HEIGHTS` of it (the tracker lost the person there and
    found them again on the same side), or a track of y's view ends within :data:`MAX_GAP_S` of y's start
    within :data:`STAY_HEIGHTS` of it (y carries on that track)."""
    out = np.zeros(len(x), bool)
    for cam in np.unique(e.cameras[np.concatenate([x, y])]):
        pool = np.flatnonzero(e.cameras == cam)
        mine = np.flatnonzero(e.cameras[x] == cam)  # x's view: a track that resumes where x ended
        i, z = _within(e.t0, pool, e.t1[x[mine]], MAX_GAP_S)
        xi = x[mine][i]
        hit = (z != xi) & (e.t1[z] >= e.t1[xi])
        hit &= np.linalg.norm(e.start[z] - e.end[xi], axis=1) <= STAY_HEIGHTS * e.h1[xi]
        out[mine[np.unique(i[hit])]] = True
        mine = np.flatnonzero(e.cameras[y] == cam)  # y's view: a track that ended where y starts
        i, w = _within(e.t1, pool, e.t0[y[mine]], MAX_GAP_S)
        yi = y[mine][i]
        hit = (w != yi) & (e.t0[w] <= e.t0[yi])
        hit &= np.linalg.norm(e.end[w] - e.start[yi], axis=1) <= STAY_HEIGHTS * e.h0[yi]
        out[mine[np.unique(i[hit])]] = True
    return out


@dataclass(frozen=True)
class Handoffs:
    """What :func:`find_handoffs` found: the maps of adjacent camera pairs and the hand-overs they vouch for."""

    maps: dict[tuple[str, str], np.ndarray]
    pairs: list[tuple[int, int]]
    shared: frozenset[tuple[str, str]] = frozenset()  # map pairs whose views share a band of ground

    @cached_property
    def apart(self) -> frozenset[tuple[str, str]]:
        """Camera pairs (both orders) that meet at a seam and share no ground: a person is in both views at
        once only while crossing."""
        return frozenset(p for a, b in self.maps if (a, b) not in self.shared for p in ((a, b), (b, a)))

    @cached_property
    def groups(self) -> dict[str, str]:
        """{camera: its group's first camera} for the cameras joined by maps (chains of adjacent views that
        together see one stretch of ground); cameras without a map are not listed."""
        parent: dict[str, str] = {}

        def root(cam: str) -> str:
            while parent.setdefault(cam, cam) != cam:
                cam = parent[cam]
            return cam

        for a, b in self.maps:
            ra, rb = root(a), root(b)
            parent[max(ra, rb)] = min(ra, rb)
        return {cam: root(cam) for cam in list(parent)}


NO_HANDOFFS = Handoffs({}, [])


def handed_over_from(adjacent: Handoffs, t: Tracklet, around: Sequence[Tracklet]) -> int | None:
    """The tracklet of an adjacent view that handed ``t`` over (:func:`handoff_pairs` among ``around``, the
    tracklets seen about when ``t`` started, ``t`` included), or None."""
    if not adjacent.maps:
        return None
    pairs = handoff_pairs(tracklet_ends(around), adjacent.maps)
    return next((x for x, y in pairs if y == t.tracklet_id), None)


def find_handoffs(tracklets: Sequence[Tracklet], mapping: Mapping[int, int] | None = None) -> Handoffs:
    """The adjacent views of ``tracklets`` and their hand-overs (:func:`handoff_pairs`), with maps fitted on the
    identities of ``mapping`` (default: the tracklets' own global ids)."""
    ends = tracklet_ends(tracklets, mapping)
    maps, shared = fit_handoff_maps(ends)
    return Handoffs(maps, handoff_pairs(ends, maps) if maps else [], shared)
