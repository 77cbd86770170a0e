"""Tracklets: one per (camera, tracker id), with a quality-weighted mean embedding and diverse exemplars.

:class:`TrackletStore` keeps the per-tracklet state as parallel arrays (one row a tracklet, the row
number is the globally unique tracklet id) so a frame's boxes update it with array operations;
:class:`Tracklet` is a read-only snapshot of one row handed to the linker and the sinks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from pipeline.embed import detections_quality, usable_rows
from pipeline.records import embeddings_of

logger = logging.getLogger(__name__)

_DUPLICATE_SIM = 0.98  # a crop this close to an exemplar replaces it (if better) rather than adding one
_MIN_WEIGHT = 1e-3  # a crop of quality 0 still counts a little, so every embedded tracklet has a mean
SWITCH_WINDOW = 2  # the latest crops of a tracklet that are tested against the rest of it (identity switches)
SWITCH_MIN_BEFORE = 6  # crops a tracklet needs before its latest ones can be told apart from it


@dataclass(frozen=True)
class _Crop:
    """One embedded crop of an open tracklet, as :meth:`TrackletStore.split` needs it."""

    vec: np.ndarray  # (D,) float64 quality-weighted unit embedding
    weight: float
    odd: bool  # counted in the tracklet's odd half
    frame: int
    timestamp: float
    box: np.ndarray  # (4,) float32 xyxy
    n_boxes: int  # the tracklet's box count with this crop's box


@dataclass
class Tracklet:
    """One camera's track of one person (a snapshot; the store owns the live state).

    Attributes:
        tracklet_id: globally unique id. camera_id, track_id: where it comes from (track ids are per camera).
        first_frame, last_frame: frame indices of its first and last box (it was active in between).
        first_timestamp, last_timestamp: the same as seconds.
        n_boxes: boxes seen. n_embedded: boxes with a usable embedding.
        embedding_sum: (D,) float32 quality-weighted sum of its unit embeddings (zeros when none).
        odd_sum: (D,) float32 the part of ``embedding_sum`` from its odd (2nd, 4th, ...) embedded crops: the
            two halves of a tracklet are one person, the same-person evidence of :mod:`reid.calibration`.
        exemplars: (m, D) float32 up to M mutually dissimilar unit embeddings of its crops.
        global_id: the linked identity, -1 while unknown (the store never knows it: the identity record
            (:mod:`pipeline.identity.record`) does, and fills it in the snapshots it hands out). ended: closed by
            :meth:`TrackletStore.ended`.
        first_box, last_box: (4,) float32 xyxy of its first and last box (NaN when unknown).
    """

    tracklet_id: int
    camera_id: str
    track_id: int
    first_frame: int
    last_frame: int
    first_timestamp: float
    last_timestamp: float
    n_boxes: int = 0
    n_embedded: int = 0
    embedding_sum: np.ndarray | None = None
    odd_sum: np.ndarray | None = None
    exemplars: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    global_id: int = -1
    ended: bool = False
    first_box: np.ndarray = field(default_factory=lambda: np.full(4, np.nan, np.float32))
    last_box: np.ndarray = field(default_factory=lambda: np.full(4, np.nan, np.float32))

    @property
    def mean(self) -> np.ndarray | None:
        """(D,) float32 unit-norm mean embedding, or None when nothing was embedded."""
        if self.embedding_sum is None or self.n_embedded == 0:
            return None
        norm = float(np.linalg.norm(self.embedding_sum))
        if not np.isfinite(norm) or norm == 0.0:
            return None
        return (self.embedding_sum / norm).astype(np.float32)

    @property
    def halves(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Unit means of its even and of its odd embedded crops, or None with fewer than two crops."""
        if self.embedding_sum is None or self.odd_sum is None or self.n_embedded < 2:
            return None
        odd = self.odd_sum.astype(np.float64)
        even = self.embedding_sum.astype(np.float64) - odd
        na, nb = float(np.linalg.norm(even)), float(np.linalg.norm(odd))
        if not (np.isfinite(na) and np.isfinite(nb)) or na < 1e-9 or nb < 1e-9:
            return None
        return (even / na).astype(np.float32), (odd / nb).astype(np.float32)

    def overlaps(self, other: Tracklet) -> bool:
        """True when both come from one camera and were active on common frames beyond a hand-off
        (:func:`clash`): never one person."""
        boxes = lambda t: (np.asarray(t.first_box, np.float32), np.asarray(t.last_box, np.float32))  # noqa: E731
        return self.camera_id == other.camera_id and bool(
            clash(np.array(self.first_frame), np.array(self.last_frame), np.array(other.first_frame),
                  np.array(other.last_frame), boxes(self), boxes(other))  # fmt: skip
        )


HANDOFF_FRAMES = 2  # a track may keep a person's last frame or two after another track took them over
DUPLICATE_FRAMES = 10  # two tracks on one person (a duplicate detection) may run side by side this long
DUPLICATE_IOU = 0.5  # ... when the ending one's last box and the other's first box overlap this much


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...,) IoU of xyxy boxes ``a`` and ``b`` (..., 4), broadcast; 0 where either is unknown (NaN)."""
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area(a) + area(b) - inter)
    return np.nan_to_num(iou, nan=0.0)


def clash(
    first_a: np.ndarray, last_a: np.ndarray, first_b: np.ndarray, last_b: np.ndarray,
    boxes_a: tuple[np.ndarray, np.ndarray] | None = None, boxes_b: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:  # fmt: skip
    """Elementwise bool: spans [first_a, last_a] and [first_b, last_b] (frames, one camera) share frames
    beyond a hand-off. A hand-off: one span ends on at most :data:`HANDOFF_FRAMES` frames of the other's start
    (a tracker that swaps two people, or starts a new track on someone, often leaves the old track a frame or
    two on them), or on at most :data:`DUPLICATE_FRAMES` when the ending track's last box and the other's
    first box overlap by :data:`DUPLICATE_IOU` (two tracks on one person; ``boxes_a``, ``boxes_b``: (first,
    last) xyxy boxes, (..., 4)). Nested spans and longer overlaps clash."""
    common = np.minimum(last_a, last_b) - np.maximum(first_a, first_b) + 1
    a_first, b_first = (first_a < first_b) & (last_a < last_b), (first_b < first_a) & (last_b < last_a)
    handoff = (a_first | b_first) & (common <= HANDOFF_FRAMES)
    if boxes_a is not None and boxes_b is not None:
        end_box = np.where(a_first[..., None], boxes_a[1], boxes_b[1])
        start_box = np.where(a_first[..., None], boxes_b[0], boxes_a[0])
        same = box_iou(end_box, start_box) >= DUPLICATE_IOU
        handoff |= (a_first | b_first) & (common <= DUPLICATE_FRAMES) & same
    return (common > 0) & ~handoff


def cannot_link(tracklets: list[Tracklet]) -> np.ndarray:
    """(N, N) bool: pairs of distinct tracklets of one camera active on common frames (:func:`clash`)."""
    n = len(tracklets)
    if n == 0:
        return np.zeros((0, 0), dtype=bool)
    cams = np.unique([t.camera_id for t in tracklets], return_inverse=True)[1]
    first = np.array([t.first_frame for t in tracklets], dtype=np.int64)
    last = np.array([t.last_frame for t in tracklets], dtype=np.int64)
    out = (cams[:, None] == cams[None, :]) & clash(first[:, None], last[:, None], first[None, :], last[None, :])
    i, j = np.nonzero(out)  # only these can be duplicate tracks of one person: their boxes decide
    if len(i):
        fb = np.stack([np.asarray(t.first_box, np.float32) for t in tracklets])
        lb = np.stack([np.asarray(t.last_box, np.float32) for t in tracklets])
        out[i, j] = clash(first[i], last[i], first[j], last[j], (fb[i], lb[i]), (fb[j], lb[j]))
    np.fill_diagonal(out, False)
    return out


MOTION_HEIGHTS_PER_S = 2.0  # a person covers at most this many of their own heights per second (running)
MOTION_SLACK_HEIGHTS = 1.0  # plus this much for box jitter and the tracker's last, predicted box


def implausible_motion(
    last_a: np.ndarray, first_a: np.ndarray, first_box_a: np.ndarray, last_box_a: np.ndarray,
    last_b: np.ndarray, first_b: np.ndarray, first_box_b: np.ndarray, last_box_b: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """(K,) bool: the later of two same-camera tracklets starts too far from where the earlier one ended.

    Re-stitching guard: one person who lost their track reappears within ``gap`` seconds at most
    ``(MOTION_SLACK_HEIGHTS + MOTION_HEIGHTS_PER_S * gap)`` box heights (the larger of the two boxes) from the
    earlier tracklet's last box, centre to centre (a hand-off overlap, :func:`clash`, counts as no gap). Unknown
    boxes (NaN) or nested spans are never called implausible here (those are cannot-links already).
    """
    a_first = (first_a <= first_b) & (last_a <= last_b)  # a ends first (before b starts, or as it starts)
    gap = np.where(a_first, first_b - last_a, first_a - last_b)
    end = np.where(a_first[:, None], last_box_a, last_box_b)
    start = np.where(a_first[:, None], first_box_b, first_box_a)
    centre = lambda box: (box[:, :2] + box[:, 2:]) / 2  # noqa: E731
    height = np.maximum(end[:, 3] - end[:, 1], start[:, 3] - start[:, 1])
    dist = np.linalg.norm(centre(end) - centre(start), axis=1)
    sequential = a_first | ((first_b <= first_a) & (last_b <= last_a))
    with np.errstate(invalid="ignore"):
        too_far = dist > height * (MOTION_SLACK_HEIGHTS + MOTION_HEIGHTS_PER_S * np.maximum(gap, 0.0))
    return sequential & np.isfinite(dist) & np.isfinite(height) & too_far


RESTITCH_WINDOW_S = 5.0  # default: the longest gap over which appearance alone re-stitches one camera's fragments


def same_camera_far(
    tracklets: list[Tracklet], window_s: float, groups: Mapping[str, str] | None = None
) -> np.ndarray:
    """(N, N) bool: pairs of one camera, one after the other, more than ``window_s`` seconds apart.

    Their similarity is no evidence for the linkers: one camera sees many look-alikes come and go, and the
    tracker's own ids are right unless it lost the person briefly, so a long-separated pair of one camera
    is joined only through the identity's sightings in other cameras. ``groups`` ({camera: group}) makes
    adjacent views that hand people over one camera here (:meth:`pipeline.identity.handoff.Handoffs.groups`).
    """
    n = len(tracklets)
    if n == 0:
        return np.zeros((0, 0), dtype=bool)
    groups = groups or {}
    cams = np.unique([groups.get(t.camera_id, t.camera_id) for t in tracklets], return_inverse=True)[1]
    first = np.array([t.first_timestamp for t in tracklets], np.float64)
    last = np.array([t.last_timestamp for t in tracklets], np.float64)
    gap = np.maximum(first[None, :] - last[:, None], first[:, None] - last[None, :])
    return (cams[:, None] == cams[None, :]) & (gap > window_s)


TOGETHER_S = 3.0  # views that meet at a seam see one person at once this long at most (twice the hand-over gap)


def motion_cannot_link(tracklets: list[Tracklet]) -> np.ndarray:
    """(N, N) bool: pairs of one camera that one person cannot be (:func:`implausible_motion`)."""
    n = len(tracklets)
    if n == 0:
        return np.zeros((0, 0), dtype=bool)
    cams = np.unique([t.camera_id for t in tracklets], return_inverse=True)[1]
    ts = np.array([[t.first_timestamp, t.last_timestamp] for t in tracklets], np.float64)
    fb = np.stack([np.asarray(t.first_box, np.float32) for t in tracklets])
    lb = np.stack([np.asarray(t.last_box, np.float32) for t in tracklets])
    i, j = np.triu_indices(n, 1)
    same = cams[i] == cams[j]
    i, j = i[same], j[same]
    bad = implausible_motion(ts[i, 1], ts[i, 0], fb[i], lb[i], ts[j, 1], ts[j, 0], fb[j], lb[j])
    out = np.zeros((n, n), dtype=bool)
    out[i[bad], j[bad]] = True
    return out | out.T


class TrackletStore:
    """Live state of every tracklet of every camera (one pipeline thread; not thread-safe).

    Args:
        max_exemplars: M, the most exemplar embeddings kept per tracklet.
        exemplar_min_quality: crops below this quality are averaged in but never become exemplars.
        first_id: the first tracklet id (offset it to keep ids unique across runs).
    """

    def __init__(self, max_exemplars: int = 8, exemplar_min_quality: float = 0.3, first_id: int = 0) -> None:
        if max_exemplars < 1:
            raise ValueError(f"max_exemplars: expected an int >= 1, got {max_exemplars}")
        self.max_exemplars = max_exemplars
        self.exemplar_min_quality = exemplar_min_quality
        self.first_id = first_id
        self._next_id = first_id  # ids only grow: rows are in id order (see skip_to)
        self.dim: int | None = None
        self._n = 0
        self._cameras: list[str] = []
        self._cam_index: dict[str, int] = {}
        self._open: dict[str, dict[int, int]] = {}  # camera -> track id -> row of its open tracklet
        self._exemplars: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # row -> (m, D) unit rows, (m,) quality
        self._updated: set[int] = set()
        self._recent: dict[int, deque[_Crop]] = {}  # row -> its latest SWITCH_WINDOW crops, for split()
        self._kept: dict[int, _Crop] = {}  # row -> its latest crop before those (where a split ends it)
        self.split_parent: dict[int, int] = {}  # tracklet id cut off by split() -> the tracklet it was cut from
        self._alloc(64)

    # ------------------------------------------------------------------ storage
    def _alloc(self, capacity: int) -> None:
        def grow(name: str, dtype: type, fill: float) -> None:
            old = getattr(self, name, None)
            new = np.full((capacity,) + (() if old is None else old.shape[1:]), fill, dtype=dtype)
            if old is not None:
                new[: self._n] = old[: self._n]
            setattr(self, name, new)

        for name, dtype, fill in [
            ("_id", np.int64, -1),
            ("_cam", np.int32, -1),
            ("_track", np.int64, -1),
            ("_first_frame", np.int64, 0),
            ("_last_frame", np.int64, 0),
            ("_first_ts", np.float64, 0.0),
            ("_last_ts", np.float64, 0.0),
            ("_n_boxes", np.int64, 0),
            ("_n_embedded", np.int64, 0),
            ("_weight", np.float64, 0.0),
            ("_closed", bool, False),
        ]:
            grow(name, dtype, fill)
        for name in ("_first_box", "_last_box"):
            old = getattr(self, name, None)
            new = np.full((capacity, 4), np.nan, np.float32)
            if old is not None:
                new[: self._n] = old[: self._n]
            setattr(self, name, new)
        if self.dim is not None:
            for name in ("_sum", "_odd"):
                old = getattr(self, name)
                setattr(self, name, np.zeros((capacity, self.dim), dtype=np.float64))
                getattr(self, name)[: self._n] = old[: self._n]

    def __len__(self) -> int:
        return self._n

    def _rows_for(self, camera_id: str, track_ids: np.ndarray, frame_index: int, timestamp: float) -> np.ndarray:
        """Rows of the open tracklets of ``track_ids`` (unique), creating the missing ones."""
        if camera_id not in self._cam_index:
            self._cam_index[camera_id] = len(self._cameras)
            self._cameras.append(camera_id)
            self._open[camera_id] = {}
        opened = self._open[camera_id]
        rows = np.array([opened.get(int(t), -1) for t in track_ids], dtype=np.int64)
        new = np.flatnonzero(rows < 0)
        if len(new):
            if self._n + len(new) > len(self._cam):
                self._alloc(max(2 * len(self._cam), self._n + len(new)))
            created = np.arange(self._n, self._n + len(new))
            self._n += len(new)
            self._id[created] = np.arange(self._next_id, self._next_id + len(new))
            self._next_id += len(new)
            rows[new] = created
            self._cam[created] = self._cam_index[camera_id]
            self._track[created] = track_ids[new]
            self._first_frame[created] = frame_index
            self._first_ts[created] = timestamp
            opened.update(zip(track_ids[new].tolist(), created.tolist()))
        return rows

    # ------------------------------------------------------------------ updates
    def update(
        self,
        camera_id: str,
        frame_index: int,
        timestamp: float,
        detections: sv.Detections,
        quality: np.ndarray | None = None,
    ) -> None:
        """Add one frame's tracked boxes of one camera.

        Boxes with tracker_id < 0 are ignored. Rows of the ``embedding`` column (N, D) that are NaN, not
        finite or zero count as not embedded. ``quality`` (N,) in [0, 1] weights the mean; by default
        :func:`pipeline.embed.detections_quality`.
        """
        if detections.tracker_id is None:
            raise ValueError("detections: expected a tracker_id column (run the tracker first), got None")
        track_ids = np.asarray(detections.tracker_id).astype(np.int64)
        keep = track_ids >= 0
        keep[keep] &= _first_occurrence(track_ids[keep])
        if not keep.any():
            return
        rows = self._rows_for(camera_id, track_ids[keep], int(frame_index), float(timestamp))
        boxes = np.asarray(detections.xyxy, np.float32)[keep]
        first = np.isnan(self._first_box[rows, 0])
        self._first_box[rows[first]] = boxes[first]
        latest = frame_index >= self._last_frame[rows]
        self._last_box[rows[latest]] = boxes[latest]
        self._last_frame[rows] = np.maximum(self._last_frame[rows], frame_index)
        self._last_ts[rows] = np.maximum(self._last_ts[rows], timestamp)
        self._n_boxes[rows] += 1
        self._updated.update(self._id[rows].tolist())
        embeddings = embeddings_of(detections)
        if embeddings is None:
            return
        if quality is None:
            quality = detections_quality(detections)
        quality = np.asarray(quality, dtype=np.float32).reshape(-1)
        if quality.shape != (len(detections),):
            raise ValueError(f"quality: expected ({len(detections)},), got {quality.shape}")
        emb = np.asarray(embeddings, dtype=np.float32)[keep]
        usable = usable_rows(emb)
        if not usable.any():
            return
        self._add_embeddings(rows[usable], emb[usable], quality[keep][usable], int(frame_index), float(timestamp),
                             boxes[usable])  # fmt: skip

    def _add_embeddings(
        self, rows: np.ndarray, emb: np.ndarray, quality: np.ndarray, frame: int, timestamp: float, boxes: np.ndarray
    ) -> None:
        if self.dim is None:
            self.dim = emb.shape[1]
            self._sum = np.zeros((len(self._cam), self.dim), dtype=np.float64)
            self._odd = np.zeros((len(self._cam), self.dim), dtype=np.float64)
        if emb.shape[1] != self.dim:
            raise ValueError(f"embedding: expected dimension {self.dim}, got {emb.shape[1]}")
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        weight = np.maximum(np.nan_to_num(quality, nan=0.0), _MIN_WEIGHT).astype(np.float64)
        self._sum[rows] += weight[:, None] * emb
        odd = self._n_embedded[rows] % 2 == 1  # this crop is the tracklet's 2nd, 4th, ...
        self._odd[rows[odd]] += weight[odd, None] * emb[odd]
        self._weight[rows] += weight
        self._n_embedded[rows] += 1
        for k, (row, vec, q, w, o) in enumerate(zip(rows.tolist(), emb, quality.tolist(), weight.tolist(), odd)):
            if q >= self.exemplar_min_quality or row not in self._exemplars:
                self._add_exemplar(row, vec, q)
            recent = self._recent.setdefault(row, deque(maxlen=SWITCH_WINDOW))
            if len(recent) == SWITCH_WINDOW:
                self._kept[row] = recent[0]
            recent.append(_Crop(w * vec.astype(np.float64), w, o, frame, timestamp, boxes[k], int(self._n_boxes[row])))

    def _add_exemplar(self, row: int, vec: np.ndarray, q: float) -> None:
        """Keep up to M exemplars spread out: when full, drop the most redundant of the M + 1."""
        current = self._exemplars.get(row)
        if current is None:
            self._exemplars[row] = (vec[None].copy(), np.array([q], np.float32))
            return
        ex, qs = current
        sims = ex @ vec
        nearest = int(np.argmax(sims))
        if sims[nearest] > _DUPLICATE_SIM:  # consecutive crops look alike: keep the better of the two
            if q > qs[nearest]:
                ex[nearest], qs[nearest] = vec, q
            return
        ex, qs = np.concatenate([ex, vec[None]]), np.append(qs, np.float32(q))
        if len(ex) > self.max_exemplars:
            sim = ex @ ex.T
            np.fill_diagonal(sim, -np.inf)
            # Most redundant = highest similarity to its nearest other exemplar; lower quality breaks ties.
            keep = np.arange(len(ex)) != int(np.argmax(sim.max(axis=1) - 1e-3 * qs))
            ex, qs = ex[keep], qs[keep]
        self._exemplars[row] = (ex, qs)

    # ------------------------------------------------------------------ identity switches
    def switch_candidates(
        self, tracklet_ids: np.ndarray | Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """The open tracklets among ``tracklet_ids`` whose latest ``SWITCH_WINDOW`` crops follow at least
        ``SWITCH_MIN_BEFORE`` others: (k,) ids, (k, D) means of the earlier crops, (k, D) means of the latest
        ones (both quality-weighted, not normalised) and their k cameras."""
        rows = self._rows_of(tracklet_ids)
        dim = self.dim or 0
        rows = rows[(self._n_embedded[rows] >= SWITCH_WINDOW + SWITCH_MIN_BEFORE) & ~self._closed[rows]]
        rows = [r for r in rows.tolist() if self._is_open(r) and len(self._recent.get(r, ())) == SWITCH_WINDOW]
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, dim)), np.zeros((0, dim)), []
        window = np.stack([sum(c.vec for c in self._recent[r]) for r in rows])
        before = self._sum[rows] - window
        return self._id[rows].copy(), before, window, [self._cameras[self._cam[r]] for r in rows]

    def _is_open(self, row: int) -> bool:
        return self._open.get(self._cameras[self._cam[row]], {}).get(int(self._track[row])) == row

    def split(self, tracklet_id: int) -> int:
        """Cut an open tracklet before its latest ``SWITCH_WINDOW`` crops (the tracker switched people):
        those crops, and every later box of its track, make a new tracklet; returns its id.

        The switch happened between the old tracklet's last crop before those and the first moved one, so
        each keeps only the span its own crops vouch for: the old tracklet now ends on its last crop (frame,
        time, box), the new one starts on the first moved crop. The two never share a frame (no cannot-link: a
        wrong cut can still be linked back by appearance), and a track that followed someone else for a while
        before the cut was noticed no longer clashes with that person's own track. The boxes between the two
        crops stay counted with the old tracklet; which of the two their rows in the track files go to is
        decided at the end, with the final ids (:func:`pipeline.identity.outputs.assign_cut_rows`).
        """
        (row,) = self._rows_of([tracklet_id]).tolist()
        recent = self._recent.pop(row, None)
        if not self._is_open(row) or not recent or len(recent) > self._n_embedded[row]:
            raise ValueError(f"tracklet {tracklet_id}: expected an open tracklet with recent crops to split off")
        camera = self._cameras[self._cam[row]]
        track = np.array([self._track[row]], np.int64)
        self._open[camera].pop(int(track[0]))
        first, kept = recent[0], self._kept.pop(row, None)
        (new,) = self._rows_for(camera, track, first.frame, first.timestamp)
        self._first_box[new], self._last_box[new] = first.box, self._last_box[row]
        self._last_frame[new], self._last_ts[new] = max(self._last_frame[row], first.frame), self._last_ts[row]
        self._n_boxes[new] = self._n_boxes[row] - first.n_boxes + 1
        self._n_boxes[row] = first.n_boxes - 1
        if kept is not None and kept.frame < first.frame:
            self._last_frame[row], self._last_ts[row], self._last_box[row] = kept.frame, kept.timestamp, kept.box
        else:  # no earlier crop known: it ends just before the first moved one
            self._last_frame[row] = first.frame - 1
        moved = deque(maxlen=SWITCH_WINDOW)
        for k, crop in enumerate(recent):
            self._sum[row] -= crop.vec
            self._weight[row] -= crop.weight
            if crop.odd:
                self._odd[row] -= crop.vec
            self._sum[new] += crop.vec
            self._weight[new] += crop.weight
            if k % 2 == 1:
                self._odd[new] += crop.vec
            moved.append(dataclasses.replace(crop, odd=k % 2 == 1))
        self._n_embedded[row] -= len(recent)
        self._n_embedded[new] = len(recent)
        self._recent[new] = moved
        units = np.stack([c.vec / max(np.linalg.norm(c.vec), 1e-12) for c in recent]).astype(np.float32)
        if row in self._exemplars:  # the moved crops are no exemplars of the old tracklet any more
            ex, qs = self._exemplars[row]
            keep = (ex @ units.T).max(axis=1) < 1.0 - 1e-5
            if keep.any():
                self._exemplars[row] = (ex[keep], qs[keep])
            else:
                del self._exemplars[row]
        for unit, crop in zip(units, recent):
            self._add_exemplar(new, unit, float(crop.weight))
        self._updated.update((int(tracklet_id), int(self._id[new])))
        self.split_parent[int(self._id[new])] = int(tracklet_id)
        return int(self._id[new])

    @property
    def splits(self) -> int:
        """How many tracklets :meth:`split` has cut off."""
        return len(self.split_parent)

    def open_ids(self, camera_id: str, track_ids: np.ndarray) -> np.ndarray:
        """(N,) int64 tracklet ids of the open tracklets of ``track_ids`` in ``camera_id`` (-1: unknown)."""
        opened = self._open.get(camera_id, {})
        rows = np.array([opened.get(int(t), -1) for t in np.asarray(track_ids).reshape(-1)], dtype=np.int64)
        return np.where(rows >= 0, self._id[np.maximum(rows, 0)], -1)

    def pop_updated(self) -> np.ndarray:
        """(K,) int64 ids of tracklets that got a box since the last call (one consumer: the linker)."""
        ids = np.array(sorted(self._updated), dtype=np.int64)
        self._updated.clear()
        return ids

    # ------------------------------------------------------------------ queries
    @property
    def next_id(self) -> int:
        """The id the next new tracklet gets."""
        return self._next_id

    def max_track_ids(self) -> dict[str, int]:
        """The largest tracker id each camera has used (a restarted camera worker numbers its tracks above)."""
        n = self._n
        return {cam: int(self._track[:n][self._cam[:n] == i].max()) for cam, i in self._cam_index.items()
                if (self._cam[:n] == i).any()}  # fmt: skip

    def skip_to(self, next_id: int) -> None:
        """Number new tracklets from ``next_id`` on (never back): a store restored from a checkpoint skips
        the ids it handed out after that checkpoint, so no id is ever given to two tracklets."""
        self._next_id = max(self._next_id, int(next_id))

    def _rows_of(self, tracklet_ids: np.ndarray | list[int]) -> np.ndarray:
        ids = np.asarray(tracklet_ids, dtype=np.int64).reshape(-1)
        rows = np.searchsorted(self._id[: self._n], ids).clip(0, max(self._n - 1, 0))
        if len(ids) and (self._n == 0 or (self._id[rows] != ids).any()):
            raise KeyError(f"tracklet ids: expected ids of this store's tracklets, got {tracklet_ids}")
        return rows

    def get(self, tracklet_id: int) -> Tracklet:
        """Snapshot of one tracklet; KeyError for an unknown id."""
        return self._snapshot(int(self._rows_of([tracklet_id])[0]))

    def _snapshot(self, row: int) -> Tracklet:
        ex = self._exemplars.get(row)
        dim = self.dim or 0
        return Tracklet(
            tracklet_id=int(self._id[row]),
            camera_id=self._cameras[self._cam[row]],
            track_id=int(self._track[row]),
            first_frame=int(self._first_frame[row]),
            last_frame=int(self._last_frame[row]),
            first_timestamp=float(self._first_ts[row]),
            last_timestamp=float(self._last_ts[row]),
            n_boxes=int(self._n_boxes[row]),
            n_embedded=int(self._n_embedded[row]),
            embedding_sum=None if self.dim is None else self._sum[row].astype(np.float32),
            odd_sum=None if self.dim is None else self._odd[row].astype(np.float32),
            exemplars=np.zeros((0, dim), np.float32) if ex is None else ex[0].copy(),
            ended=bool(self._closed[row]),
            first_box=self._first_box[row].copy(),
            last_box=self._last_box[row].copy(),
        )

    def active_since(self, timestamp: float, cameras: Iterable[str] | None = None) -> list[Tracklet]:
        """Snapshots of the tracklets (of ``cameras``, default all) last seen at or after ``timestamp`` (s)."""
        mask = self._last_ts[: self._n] >= timestamp
        if cameras is not None:
            codes = [self._cam_index[c] for c in cameras if c in self._cam_index]
            mask &= np.isin(self._cam[: self._n], codes)
        return self._snapshots(mask)

    def _snapshots(self, mask: np.ndarray) -> list[Tracklet]:
        return [self._snapshot(int(r)) for r in np.flatnonzero(mask)]

    def n_embedded(self, tracklet_ids: np.ndarray | list[int]) -> np.ndarray:
        """(K,) int64 embedded-crop counts of ``tracklet_ids``."""
        return self._n_embedded[self._rows_of(tracklet_ids)].copy()

    def overlaps(self, a: np.ndarray | list[int] | int, b: np.ndarray | list[int]) -> np.ndarray:
        """(K,) bool, pair by pair: tracklets ``a[i]`` and ``b[i]`` (``a`` may be one id) are distinct, of one
        camera and active on a common frame."""
        ra, rb = self._rows_of(np.atleast_1d(a)), self._rows_of(b)
        ff, lf, fb, lb = self._first_frame, self._last_frame, self._first_box, self._last_box
        ra = np.broadcast_to(ra, rb.shape)
        near = clash(ff[ra], lf[ra], ff[rb], lf[rb], (fb[ra], lb[ra]), (fb[rb], lb[rb]))
        return (self._cam[ra] == self._cam[rb]) & near & (ra != rb)

    def implausible(self, a: np.ndarray | list[int] | int, b: np.ndarray | list[int]) -> np.ndarray:
        """(K,) bool, pair by pair: distinct tracklets of one camera, one after the other, whose boxes are
        too far apart for one person to cover in the gap (:func:`implausible_motion`)."""
        ra, rb = self._rows_of(np.atleast_1d(a)), self._rows_of(b)
        ra = np.broadcast_to(ra, rb.shape)
        return (self._cam[ra] == self._cam[rb]) & (ra != rb) & implausible_motion(
            self._last_ts[ra], self._first_ts[ra], self._first_box[ra], self._last_box[ra],
            self._last_ts[rb], self._first_ts[rb], self._first_box[rb], self._last_box[rb],
        )  # fmt: skip

    def same_camera_far(
        self, a: int, b: np.ndarray | list[int], window_s: float, groups: Mapping[str, str] | None = None
    ) -> np.ndarray:
        """(K,) bool: ``b[i]`` is of ``a``'s camera (or of its group in ``groups``, {camera: group}: adjacent
        views, :func:`same_camera_far`) and more than ``window_s`` seconds before or after it."""
        ra, rb = self._rows_of([a])[0], self._rows_of(b)
        gap = np.maximum(self._first_ts[rb] - self._last_ts[ra], self._first_ts[ra] - self._last_ts[rb])
        cam = self._cam
        if groups:
            names = [groups.get(c, c) for c in self._cameras]
            cam = np.unique(names, return_inverse=True)[1][cam[: self._n]]
        return (cam[rb] == cam[ra]) & (gap > window_s)

    def together(
        self, a: np.ndarray | list[int] | int, b: np.ndarray | list[int], apart: Collection[tuple[str, str]]
    ) -> np.ndarray:
        """(K,) bool, pair by pair (``a`` may be one id): the cameras of ``a[i]`` and ``b[i]`` are adjacent views
        that share no ground (``apart``: camera pairs, :attr:`pipeline.identity.handoff.Handoffs.apart`) and the
        two were active together for longer than :data:`TOGETHER_S`: a person is in two such views at once
        only while crossing the seam, so such a pair is two people."""
        ra, rb = self._rows_of(np.atleast_1d(a)), self._rows_of(b)
        ra = np.broadcast_to(ra, rb.shape)
        names = self._cameras
        pairs = np.array([[(x, y) in apart for y in names] for x in names], dtype=bool).reshape(len(names), -1)
        common = np.minimum(self._last_ts[rb], self._last_ts[ra]) - np.maximum(self._first_ts[rb], self._first_ts[ra])
        return pairs[self._cam[ra], self._cam[rb]] & (common > TOGETHER_S)

    def times(self, tracklet_ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(K,) float64 first and last timestamps of ``tracklet_ids``."""
        rows = self._rows_of(tracklet_ids)
        return self._first_ts[rows].copy(), self._last_ts[rows].copy()

    def last_seen(self, tracklet_ids: np.ndarray | list[int]) -> tuple[list[str], np.ndarray]:
        """Camera ids and (K,) float64 last timestamps of ``tracklet_ids``."""
        rows = self._rows_of(tracklet_ids)
        return [self._cameras[c] for c in self._cam[rows]], self._last_ts[rows].copy()

    def mature(self, min_crops: int) -> list[Tracklet]:
        """Tracklets with at least ``min_crops`` usable embedded crops."""
        return self._snapshots(self._n_embedded[: self._n] >= max(min_crops, 1))

    def ended(self, now_by_camera: Mapping[str, float], timeout_s: float) -> list[Tracklet]:
        """Close and return the open tracklets of the cameras in ``now_by_camera`` unseen for > ``timeout_s``.

        A closed tracklet's track id, if it comes back, starts a new tracklet. Each tracklet is returned
        once, by the call that closes it.
        """
        n = self._n
        now = np.full(n, -np.inf)  # cameras not in now_by_camera: nothing ends
        for camera_id, t in now_by_camera.items():
            if camera_id in self._cam_index:
                now[self._cam[:n] == self._cam_index[camera_id]] = t
        closing = ~self._closed[:n] & (self._last_ts[:n] < now - timeout_s)
        self._closed[:n] |= closing
        for row in np.flatnonzero(closing).tolist():
            if self._is_open(row):  # a tracklet cut by split() no longer holds its track
                self._open[self._cameras[self._cam[row]]].pop(int(self._track[row]))
            self._recent.pop(row, None)
            self._kept.pop(row, None)
        return self._snapshots(closing)

    def embedded_count(self) -> int:
        """How many tracklets have at least one embedded crop."""
        return int(np.count_nonzero(self._n_embedded[: self._n] > 0))

    def evidence(self, max_tracklets: int | None = None) -> dict[str, np.ndarray | list[str]]:
        """Arrays for :func:`reid.calibration.fit_threshold` over the embedded tracklets (the latest
        ``max_tracklets`` of them): ``mean``, ``half_a``, ``half_b`` (N, D) unit rows (NaN halves for a
        one-crop tracklet), ``camera`` (N camera ids), ``first_frame``, ``last_frame``, ``first_timestamp``,
        ``last_timestamp`` (N,)."""
        rows = np.flatnonzero(self._n_embedded[: self._n] > 0)
        if max_tracklets is not None:
            rows = rows[-max_tracklets:]
        dim = self.dim or 0
        if len(rows) == 0:
            empty = np.zeros((0, dim), np.float32)
            return {"mean": empty, "half_a": empty, "half_b": empty, "camera": [],
                    "first_frame": np.zeros(0, np.int64), "last_frame": np.zeros(0, np.int64),
                    "first_timestamp": np.zeros(0), "last_timestamp": np.zeros(0)}  # fmt: skip
        total, odd = self._sum[rows], self._odd[rows]
        even = total - odd

        def unit(x: np.ndarray) -> np.ndarray:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            return np.where(norm > 1e-9, x / np.maximum(norm, 1e-12), np.nan).astype(np.float32)

        two = (self._n_embedded[rows] >= 2)[:, None]
        return {
            "mean": unit(total),
            "half_a": np.where(two, unit(even), np.nan).astype(np.float32),
            "half_b": np.where(two, unit(odd), np.nan).astype(np.float32),
            "camera": [self._cameras[c] for c in self._cam[rows]],
            "first_frame": self._first_frame[rows].copy(),
            "last_frame": self._last_frame[rows].copy(),
            "first_timestamp": self._first_ts[rows].copy(),
            "last_timestamp": self._last_ts[rows].copy(),
        }

    def all(self) -> list[Tracklet]:
        """Snapshots of every tracklet, open and ended, in id order."""
        return self._snapshots(np.ones(self._n, dtype=bool))


def rejoin_lonely_cuts(
    mapping: Mapping[int, int], split_parent: Mapping[int, int], tracklets: Sequence[Tracklet]
) -> dict[int, int]:
    """``mapping`` (tracklet id -> global id) with every piece of a cut track whose identity holds nothing but
    pieces of that same track given back to the identity of the piece it was cut from, unless one of that
    identity's tracklets shares a frame of the camera with it (``tracklets``: every tracklet of the mapping).

    A cut (:meth:`TrackletStore.split`) is worth its extra tracklet when the pieces join different people
    seen elsewhere; a piece that founds an identity of its own found no such person, so the cut is taken to
    be a change of pose or light rather than a switch (on EPFL campus4 two such cuts of one man turning
    round added two identities). Pieces are handled in id order, so a chain of cuts collapses from its root.
    """
    out = dict(mapping)
    by_id = {t.tracklet_id: t for t in tracklets}

    def root(tid: int) -> int:
        while tid in split_parent:
            tid = split_parent[tid]
        return tid

    for piece in sorted(split_parent):
        gid, before = out.get(piece, -1), out.get(split_parent[piece], -1)
        if gid < 0 or before < 0 or gid == before:
            continue
        members = [t for t, g in out.items() if g == gid]
        if not all(root(t) == root(piece) for t in members):
            continue
        hosts = [by_id[t] for t, g in out.items() if g == before]
        if not any(by_id[m].overlaps(h) for m in members for h in hosts):
            out.update(dict.fromkeys(members, before))
    return out


class TrackletNumbers:
    """Tracklet ids for a run without an identity stage: one per (camera, track), in order of appearance,
    ``start``, ``start + step``, ... (a Ray camera worker numbers its own block: its index, step the workers)."""

    def __init__(self, start: int = 0, step: int = 1) -> None:
        if start < 0 or step < 1:
            raise ValueError(f"expected start >= 0 and step >= 1, got {start}, {step}")
        self.start, self.step = start, step
        self._ids: dict[tuple[str, int], int] = {}

    def __call__(self, camera_id: str, track_ids: np.ndarray) -> np.ndarray:
        out = np.empty(len(track_ids), np.int64)
        for i, track in enumerate(np.asarray(track_ids).reshape(-1).tolist()):
            out[i] = self._ids.setdefault((camera_id, int(track)), self.start + self.step * len(self._ids))
        return out


def _first_occurrence(values: np.ndarray) -> np.ndarray:
    """(N,) bool marking the first occurrence of each value."""
    mask = np.zeros(len(values), dtype=bool)
    mask[np.unique(values, return_index=True)[1]] = True
    return mask
