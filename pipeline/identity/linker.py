"""Cross-camera linking: tracklets -> global identities, online against the gallery and offline by clustering.

Constraints that hold for every assignment either linker makes:
- cannot-link: two tracklets of one camera active on common frames are never one identity, except where one
  ends on at most two frames of the other's start (a hand-off: :func:`~pipeline.identity.tracklets.clash`);
- transit windows ``{(cam_a, cam_b): (min_s, max_s)}``: an identity last seen in ``cam_a`` may be joined
  by a tracklet of ``cam_b`` starting ``gap`` seconds later only when ``min_s <= gap <= max_s`` (a window
  given for one direction also serves the other unless that one has its own; same-camera re-entry and
  pairs without a window are unconstrained).

Similarity (both linkers, by default): embeddings are compared after removing each camera's mean
embedding (the appearance every person in that camera shares: background, light, colour cast) and
re-normalising; without it, strangers in one camera look alike and one person looks different across
cameras. Online, the camera means are running means over the tracklets linked so far, shrunk towards zero
while a camera has few (``camera_prior`` pseudo-tracklets), so a new camera starts as plain cosine.
Online, an identity's score is the mean similarity to its member tracklets' means (average linkage, as
the offline clustering), the gallery search only proposes the candidates; the best allowed identity must
reach ``threshold`` and beat the runner-up by ``margin``.

A tracklet keeps its identity while it grows unless another identity now wins clearly (checked whenever
it has grown by half since its last decision, so an early, wrongly founded identity is given up once its
tracklet clearly matches another), or its grown mean no longer fits: scored against the rest of its
identity below threshold minus margin (early decisions on three crops can be wrong), it is decided again
and founds a new identity if nothing fits.

Identity switches inside a track (``split_switches``, on by default): a tracker that swaps two people
who cross keeps one track id for both. Whenever an open tracklet with at least
:data:`~pipeline.identity.tracklets.SWITCH_MIN_BEFORE` crops gains crops, the mean of its latest
:data:`~pipeline.identity.tracklets.SWITCH_WINDOW` crops is compared with the mean of the rest, in the
camera-centred space; when they are no more alike than the run's median pair of strangers (the calibration's
``m_neg``, 0 from the prior or with a given threshold), the latest crops and the rest of the track become a new
tracklet (:meth:`TrackletStore.split`), linked like any other; each of the two keeps the span its own crops
vouch for, and the boxes between go to whichever side clashes with no other box of its final identity
(:func:`~pipeline.identity.outputs.assign_cut_rows`). At the end of the run a piece whose
identity holds nothing but pieces of its own track is given back to the piece before it
(:func:`~pipeline.identity.tracklets.rejoin_lonely_cuts`: the cut found no other person). Measured on every
scene in ``benchmarks/identity_defaults.py`` and ``benchmarks/pets_split.py``; ``benchmarks/pets_ceiling.py``
shows why PETS09 needs it: perfect linking of its tracker's tracks reaches only 0.843 IDF1.

Hand-over timing (``handover``, on by default): how soon after one camera loses a person another camera
picks them up is learned from the run itself (:mod:`reid.handover`: a likelihood ratio over
time-gap bins, from cross-camera pairs whose appearance already agrees) and added to every cross-camera
similarity, online (the gap between an identity's latest sighting and the new tracklet) and offline (every
pair). Refitted with the threshold; off while there is too little evidence.

Threshold ``"auto"`` (the default, online and offline): the threshold is fitted on the run's own evidence
in the same camera-centred space (:mod:`pipeline.calibration`: tracklet halves are one person, same-camera
tracklets on a common frame are two) and, online, refitted as the run grows; a number overrides it.

Re-stitching within a camera: a tracklet may join an identity whose latest sighting is in its own camera
(the tracker lost the person and started a new track), scored like any other candidate, when it is
physically plausible: no clash on a common frame, and it starts near enough to where that camera's fragment
ended for the time between them (:func:`pipeline.identity.tracklets.implausible_motion`: at most one box height
plus two per second). Implausible same-camera pairs are cannot-links offline too. Appearance alone
re-stitches only within ``restitch_window_s`` (5 s: a tracker that lost someone for longer has seen many
look-alikes pass): the similarity of two fragments of one camera further apart is left out of an
identity's score, online and offline, so such a pair joins only through the identity's sightings in other
cameras (:func:`pipeline.identity.tracklets.same_camera_far`). A single camera's global ids are then never coarser
than the tracker's own ids beyond short, plausible re-stitches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from pipeline.identity.gallery import Gallery, GalleryFullError
from pipeline.identity.handoff import MAX_GAP_S as HANDOFF_GAP_S
from pipeline.identity.handoff import NO_HANDOFFS, Handoffs, find_handoffs, handed_over_from
from pipeline.identity.record import IdentityRecord, IdEvent
from pipeline.identity.tracklets import (
    RESTITCH_WINDOW_S,
    Tracklet,
    TrackletStore,
    cannot_link,
    motion_cannot_link,
    same_camera_far,
)
from reid.agglomerative import constrained_agglomerative
from reid.calibration import (
    DEFAULT_FRACTION,
    PRIOR_NEGATIVE,
    PRIOR_POSITIVE,
    Calibration,
    fit_threshold,
    prior_calibration,
)
from reid.camera_centring import camera_sums, centre_by_camera, centre_finite_rows
from reid.consistency import consistent_threshold
from reid.handover import NO_HANDOVER, Handover, fit_handover, time_gap

logger = logging.getLogger(__name__)

Transit = Mapping[tuple[str, str], tuple[float, float]]
Threshold = float | str  # a cosine similarity, or "auto" (calibrated)
MAX_CALIBRATION_TRACKLETS = 1500  # the latest tracklets an online refit reads
HANDOFF_BONUS = 1.0  # similarity added to the identity that handed a new tracklet over: it wins
RERANK_JACCARD = 0.79  # "auto" with re-ranking: the neighbourhood distance a pair at the cosine threshold may have


def check_threshold(threshold: Threshold, name: str = "threshold") -> Threshold:
    """``threshold`` as a float in [-1, 1] or the string "auto"; ValueError otherwise."""
    if isinstance(threshold, str):
        if threshold != "auto":
            raise ValueError(f"{name}: expected a number in [-1, 1] or 'auto', got {threshold!r}")
        return threshold
    value = float(threshold)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a number in [-1, 1] or 'auto', got {threshold}")
    return value


Cache = dict[int, Tracklet]  # tracklet snapshots taken during one step


def check_transit(transit: Transit | None, cameras: Iterable[str] | None) -> dict[tuple[str, str], tuple[float, float]]:
    """Validated copy of ``transit``; ValueError for unknown cameras, a camera paired with itself or min > max."""
    if not transit:
        return {}
    if cameras is None:
        raise ValueError("transit: expected cameras=[...] alongside transit windows to check their names, got None")
    known = set(cameras)
    out = {}
    for pair, window in transit.items():
        if len(pair) != 2 or not set(pair) <= known:
            raise ValueError(f"transit {pair}: expected a pair of known cameras {sorted(known)}, got {pair!r}")
        if pair[0] == pair[1]:
            raise ValueError(f"transit {pair}: expected two different cameras (re-entry is always allowed)")
        low, high = (float(v) for v in window)
        if not low <= high:
            raise ValueError(f"transit {pair}: expected (min_s, max_s) with min_s <= max_s, got {tuple(window)}")
        out[(pair[0], pair[1])] = (low, high)
    return out


class OnlineLinker:
    """Give each mature tracklet a global id from ``gallery`` (see the module docstring for constraints).

    Args:
        gallery: the shared :class:`Gallery` (passed in; the linker never creates one).
        threshold: smallest cosine similarity to join an identity, or "auto": fitted on the run's evidence
            (:mod:`pipeline.calibration`) and refitted as tracklets accumulate. margin: the best allowed
            identity must beat the runner-up by this much, else the tracklet founds a new identity.
        calibration_fraction: with "auto", where the threshold sits between the strangers' and the
            tracklet halves' median similarity.
        min_crops: embedded crops a tracklet needs before it is linked.
        revise_until_crops: a tracklet with fewer crops than this is re-queried whenever it gains crops
            and moves when another identity now wins clearly (an identity it founded and left empty is
            removed from the gallery; its id is never reused).
        transit: optional camera-pair transit windows; needs ``cameras`` to check the names.
        k: candidate identities fetched from the gallery per query. max_prototypes: prototypes stored per
            identity, and the most recent member tracklets an identity is scored against.
        score: "mean" (average similarity to the identity's member tracklets) or "max" (the most similar).
        center_cameras: compare camera-centred embeddings (module docstring); camera_prior: pseudo-tracklets
            that shrink a camera's running mean towards zero.
        split_switches: cut a tracklet whose latest crops look like a stranger to the rest (module docstring).
        handover: learn the cameras' hand-over timing from the run and add it to cross-camera similarities
            (:mod:`reid.handover`).
        handoffs: adjacent views that hand people over count as one camera for ``restitch_window_s``
            (:mod:`pipeline.identity.handoff`; refitted with the threshold).
    """

    def __init__(
        self,
        gallery: Gallery,
        threshold: Threshold = "auto",
        margin: float = 0.05,
        min_crops: int = 3,
        revise_until_crops: int = 10,
        transit: Transit | None = None,
        *,
        cameras: Iterable[str] | None = None,
        k: int = 20,
        max_prototypes: int = 16,
        score: str = "mean",
        center_cameras: bool = True,
        camera_prior: float = 10.0,
        calibration_fraction: float = DEFAULT_FRACTION,
        restitch_window_s: float = RESTITCH_WINDOW_S,
        record: IdentityRecord | None = None,
        split_switches: bool = True,
        handover: bool = True,
        handoffs: bool = True,
    ) -> None:
        threshold = check_threshold(threshold)
        self.handover = handover
        self.timing: Handover = NO_HANDOVER  # refitted with the threshold (also with a given one)
        self.handoffs = handoffs
        self.adjacent: Handoffs = NO_HANDOFFS  # refitted with the threshold
        self._new_views = False  # the adjacent views changed at the last refit: their history is decided again
        self.split_switches = split_switches
        self.restitch_window_s = float(restitch_window_s)
        if min_crops < 1 or revise_until_crops < 0 or k < 1 or max_prototypes < 1:
            raise ValueError(
                f"expected min_crops, k, max_prototypes >= 1 and revise_until_crops >= 0, got "
                f"{min_crops}, {k}, {max_prototypes}, {revise_until_crops}"
            )
        if margin < 0:
            raise ValueError(f"margin: expected >= 0, got {margin}")
        if score not in ("mean", "max") or camera_prior < 0:
            raise ValueError(f"expected score 'mean' or 'max' and camera_prior >= 0, got {score!r}, {camera_prior}")
        self.gallery, self.threshold, self.margin = gallery, threshold, margin
        self.min_crops, self.revise_until_crops, self.k = min_crops, revise_until_crops, k
        self.max_prototypes, self.score = max_prototypes, score
        self.center_cameras, self.camera_prior = center_cameras, camera_prior
        self.transit = check_transit(transit, cameras)
        self.record = IdentityRecord() if record is None else record  # tracklet id -> global id: written here only
        self._cam_sum: dict[str, np.ndarray] = {}  # camera -> sum of its tracklets' means at first decision
        self._cam_n: dict[str, int] = {}
        self._latest: dict[int, tuple[np.ndarray, str]] = {}  # tracklet id -> (mean, camera) at its last snapshot
        self._base: dict[int, tuple[np.ndarray, str, float]] = {}  # pre-existing identity -> (protos, cam, seen)
        self._used_n: dict[int, int] = {}  # tracklet id -> n_embedded at its last decision / refresh
        self._next_expiry = -np.inf
        self.calibration_fraction = calibration_fraction
        self.calibration: Calibration = (
            prior_calibration(calibration_fraction) if threshold == "auto" else
            Calibration(float(threshold), np.nan, np.nan, 0, 0, "given", "given")
        )  # fmt: skip
        self._fit_size = 0  # embedded tracklets at the last fit
        self._steps_since_fit = 0

    @property
    def current_threshold(self) -> float:
        """The similarity a join needs now (the fitted one with "auto")."""
        return self.calibration.threshold

    def recalibrate(self, store: TrackletStore) -> Calibration:
        """Refit the "auto" threshold (a given one stays) and the hand-over timing on the latest tracklets of
        ``store`` (in the centred space)."""
        ev = store.evidence(MAX_CALIBRATION_TRACKLETS)
        cams = ev["camera"]
        before = self.calibration
        self._fit_size, self._steps_since_fit = store.embedded_count(), 0
        if before.negatives != "given":
            half_a, half_b = self._centred_nan(ev["half_a"], cams), self._centred_nan(ev["half_b"], cams)
            means = self._centred(ev["mean"], cams)
            self.calibration = fit_threshold(
                means, half_a, half_b, cams, ev["first_frame"], ev["last_frame"], fraction=self.calibration_fraction
            )
            if self.calibration.from_prior and not before.from_prior:
                logger.info("linking: too little evidence, prior threshold %.3f", self.calibration.threshold)
            elif not self.calibration.from_prior and (
                before.from_prior or abs(before.threshold - self.current_threshold) > 0.02
            ):
                logger.info("linking calibrated on %d tracklets: %s", len(cams), self.calibration.describe())
        if self.handover:
            self._fit_timing(ev)
        if self.handoffs:
            self._fit_handoffs(store)
        return self.calibration

    def _fit_handoffs(self, store: TrackletStore) -> None:
        before = self.adjacent
        ts = store.mature(1)[-MAX_CALIBRATION_TRACKLETS:]  # the latest, as the threshold's refit
        self.adjacent = find_handoffs(ts, {t.tracklet_id: self.record.global_id(t.tracklet_id) or -1 for t in ts})
        if set(self.adjacent.maps) != set(before.maps):
            logger.info("linking: adjacent views %s", sorted(self.adjacent.maps) or "none")
            self._new_views = bool(set(self.adjacent.maps) - set(before.maps))

    def _fit_timing(self, ev: dict) -> None:
        before = self.timing
        means = self._centred(ev["mean"], ev["camera"]).astype(np.float64)
        span = _scale_span(None if self.calibration.negatives == "given" else self.calibration)
        self.timing = fit_handover(means @ means.T, ev["camera"], ev["first_timestamp"], ev["last_timestamp"],
                                   self.current_threshold, span)  # fmt: skip
        if self.timing.active != before.active:
            logger.info("linking: %s", self.timing.describe())

    def _centred_nan(self, vecs: np.ndarray, cams: Sequence[str]) -> np.ndarray:
        if not self.center_cameras or not self._cam_sum:
            return vecs
        return centre_finite_rows(vecs, cams, self._cam_sum, self._cam_n, self.camera_prior)

    def _maybe_recalibrate(self, store: TrackletStore) -> None:
        if self.calibration.negatives == "given" and not (self.handover or self.handoffs):
            return
        self._steps_since_fit += 1
        size = store.embedded_count()
        # refit on a geometric schedule of tracklet counts (tracklets' halves keep growing: also every 500 steps)
        if size >= max(self._fit_size + 3, 1.1 * self._fit_size) or (self._steps_since_fit >= 500 and size > 1):
            self.recalibrate(store)

    def members(self, global_id: int) -> list[int]:
        """Tracklet ids this linker has put in ``global_id``."""
        return self.record.members(global_id)

    # ------------------------------------------------------------------ the step
    def step(self, store: TrackletStore, now: float, ended: Sequence[Tracklet] = ()) -> list[IdEvent]:
        """Link what changed in ``store`` since the last step into :attr:`record`; return its events (the
        new or changed (tracklet_id, global_id) of this step, stamped ``now``).

        ``now`` (seconds, the cameras' shared clock) drives gallery expiry. ``ended`` (from
        ``store.ended``) only serves logging tracklets that end without a global id.
        """
        expiry = self.gallery.expiry_s
        if expiry is not None and now >= self._next_expiry:  # a scan of every identity: not every frame
            self._next_expiry = now + expiry / 10
            for gid in self.gallery.expire(now):
                self._forget_identity(gid)
        self._log_unlinked(ended)
        updated = store.pop_updated()
        if len(updated) == 0:
            return self.record.publish(now)
        updated = self._split_switches(store, updated)
        cache: dict[int, Tracklet] = {}
        n_emb = store.n_embedded(updated)
        detached = self._repair(store, updated, cache)
        self._maybe_recalibrate(store)
        decide, refresh, doubtful = [], [], set()
        if self._new_views:  # what was decided before the seam was known is decided again with it
            self._new_views = False
            revisit = self._revisit_adjacent(store, cache)
            detached |= revisit
            decide += sorted(revisit)
            doubtful |= revisit
        for tid, n in zip(updated.tolist(), n_emb.tolist()):
            gid = self.record.global_id(tid)
            if n < self.min_crops:
                continue
            young = self._used_n.get(tid, 0) < n < self.revise_until_crops
            if gid is None or tid in detached or young:
                decide.append(tid)
            elif n >= max(1.5 * self._used_n.get(tid, 0), self._used_n.get(tid, 0) + 1):
                if self._fits(store, tid, gid, cache):
                    refresh.append(tid)
                    decide.append(tid)  # moves only if another identity now wins clearly
                else:  # its grown mean no longer agrees with its identity: decide again, a new one if need be
                    doubtful.add(tid)
                    decide.append(tid)
        self._decide_all(store, decide, cache, doubtful)
        self._refresh(store, refresh, cache)
        self._touch(store, updated)
        return self.record.publish(now)

    def _split_switches(self, store: TrackletStore, updated: np.ndarray) -> np.ndarray:
        """Cut the updated tracklets whose latest crops look like a stranger to the rest; ``updated`` plus
        the new tracklets."""
        if not self.split_switches:
            return updated
        ids, before, window, cams = store.switch_candidates(updated)
        if len(ids) == 0:
            return updated
        b, w = self._centred(before, cams), self._centred(window, cams)
        norms = np.linalg.norm(b, axis=1) * np.linalg.norm(w, axis=1)
        sims = (b * w).sum(axis=1) / np.maximum(norms, 1e-12)
        m_neg = self.calibration.m_neg
        cut_below = float(m_neg) if np.isfinite(m_neg) else PRIOR_NEGATIVE
        new = []
        for tid, sim in zip(ids[sims < cut_below].tolist(), sims[sims < cut_below].tolist()):
            new.append(store.split(tid))
            logger.debug("tracklet %d: latest crops at %.3f to the rest (< %.3f): split off as %d", tid, sim,
                         cut_below, new[-1])  # fmt: skip
        return np.union1d(updated, np.asarray(new, np.int64)) if new else updated

    def _fits(self, store: TrackletStore, tid: int, gid: int, cache: Cache) -> bool:
        """False when ``tid`` now scores below the threshold minus the margin against the rest of ``gid``."""
        t = self._get(store, tid, cache)
        if t.mean is None:
            return True
        score = float(self._scores(store, t, [gid], cache)[0])
        return not np.isfinite(score) or score >= self.current_threshold - self.margin

    def _decide_all(
        self, store: TrackletStore, tids: list[int], cache: Cache, doubtful: set[int] = frozenset()
    ) -> None:
        tracklets = [self._get(store, t, cache) for t in tids]
        usable = [t for t in tracklets if t.mean is not None]
        if not usable:
            return
        for t in usable:
            if t.tracklet_id not in self._used_n:  # first decision: it joins its camera's running mean
                self._cam_sum[t.camera_id] = self._cam_sum.get(t.camera_id, 0.0) + t.mean.astype(np.float64)
                self._cam_n[t.camera_id] = self._cam_n.get(t.camera_id, 0) + 1
        _, ids = self.gallery.search(np.stack([t.mean for t in usable]), self.k)
        fresh: dict[int, np.ndarray] = {}  # identities changed in this step (may be missing from ``ids``)
        for t, row_ids in zip(usable, ids):
            current = self.record.global_id(t.tracklet_id)
            target = self._choose(store, t, row_ids, fresh, cache)
            self._used_n[t.tracklet_id] = t.n_embedded
            if current is not None and (target == current or (target is None and t.tracklet_id not in doubtful)):
                continue  # stays: only a clear win elsewhere (or a lost fit) moves an assigned tracklet
            if current is not None:
                self._leave(store, t.tracklet_id, current, cache, fresh)
            self._join(store, t, target, cache, fresh)

    def _choose(self, store: TrackletStore, t: Tracklet, row_ids: np.ndarray, fresh: dict, cache: Cache) -> int | None:
        """The identity ``t`` should join (candidates: gallery hits, identities changed this step, its own),
        or None to found a new one."""
        current = self.record.global_id(t.tracklet_id)
        handed = self._handed_over(store, t)
        gids = {int(g) for g in row_ids if g >= 0} | set(fresh) | ({current, handed} - {None})
        gids = sorted(g for g in gids if self.record.is_live(g) or g in self.gallery)
        if not gids:
            return None
        scores = self._scores(store, t, gids, cache)
        if handed in gids:  # a person crossing the seam of two adjacent views: whatever their crops look like
            scores[gids.index(handed)] += HANDOFF_BONUS
        ok = self._allowed(store, t, gids) & np.isfinite(scores)
        allowed = sorted(zip(scores[ok].tolist(), np.asarray(gids)[ok].tolist()), reverse=True)
        if not allowed or allowed[0][0] < self.current_threshold:
            return None
        runner_up = allowed[1][0] if len(allowed) > 1 else -np.inf
        return allowed[0][1] if allowed[0][0] - runner_up >= self.margin else None

    def _handed_over(self, store: TrackletStore, t: Tracklet) -> int | None:
        """The identity of the tracklet that handed ``t`` over from an adjacent view, or None."""
        groups = self.adjacent.groups
        if t.camera_id not in groups:
            return None
        views = [c for c, g in groups.items() if g == groups[t.camera_id]]
        around = store.active_since(t.first_timestamp - 2 * HANDOFF_GAP_S, views)
        source = handed_over_from(self.adjacent, t, around)
        return None if source is None else self.record.global_id(source)

    def _scores(self, store: TrackletStore, t: Tracklet, gids: list[int], cache: Cache) -> np.ndarray:
        """(G,) float64 similarity of ``t`` to each identity: mean (or max) over the identity's latest
        ``max_prototypes`` member tracklets other than ``t`` plus its pre-existing prototypes; -inf when empty."""
        vecs, cams, owner = [], [], []
        candidates = [[m for m in self.record.members(g) if m != t.tracklet_id and m in self._latest] for g in gids]
        flat = [m for ms in candidates for m in ms]
        # one camera's fragments far apart in time are no evidence (module docstring)
        far = (
            set(np.asarray(flat)[store.same_camera_far(t.tracklet_id, flat, self.restitch_window_s,
                                                       self.adjacent.groups)].tolist())  # fmt: skip
            if flat
            else set()
        )
        for g, gid in enumerate(gids):
            members = [m for m in candidates[g] if m not in far][-self.max_prototypes :]  # the latest to join
            vecs += [self._latest[m][0][None] for m in members]
            cams += [self._latest[m][1] for m in members]
            if gid in self._base:
                protos, cam = self._base[gid][:2]
            elif not self.record.is_live(gid) and gid in self.gallery:  # a gallery identity not touched yet
                protos, cam = self.gallery.prototypes(gid), self.gallery.info(gid).last_camera
            else:
                protos, cam = np.zeros((0, len(t.mean)), np.float32), ""
            vecs.append(protos)
            cams += [cam] * len(protos)
            owner += [g] * (len(members) + len(protos))
        out = np.full(len(gids), -np.inf)
        if not owner:
            return out
        sims = self._centred(np.concatenate(vecs), cams) @ self._centred(t.mean[None], [t.camera_id])[0]
        owner_arr = np.asarray(owner, dtype=np.int64)
        if self.score == "max":
            np.maximum.at(out, owner_arr, sims)
            return out + self._timing_bonus(store, t, candidates)
        n = np.bincount(owner_arr, minlength=len(gids))
        out = np.where(n > 0, np.bincount(owner_arr, sims, len(gids)) / np.maximum(n, 1), -np.inf)
        return out + self._timing_bonus(store, t, candidates)

    def _timing_bonus(self, store: TrackletStore, t: Tracklet, members: list[list[int]]) -> np.ndarray:
        """(G,) hand-over bonus of ``t`` joining each identity: the timing of the identity's latest member
        tracklet against ``t``; 0 when that member is of ``t``'s camera, or the identity has no member here."""
        out = np.zeros(len(members))
        if not self.timing.active:
            return out
        owned = [g for g, ms in enumerate(members) if ms]
        if not owned:
            return out
        flat = np.array([m for g in owned for m in members[g]], np.int64)
        owner = np.repeat(np.arange(len(owned)), [len(members[g]) for g in owned])
        first, last = store.times(flat)
        order = np.lexsort((-np.arange(len(flat)), last, owner))  # by identity, its latest (first listed) last
        latest = order[np.r_[np.flatnonzero(np.diff(owner[order])), len(order) - 1]]
        gap = time_gap(first[latest], last[latest], t.first_timestamp, t.last_timestamp)
        cams = [self._latest[int(m)][1] for m in flat[latest]]
        out[owned] = self.timing.bonus(cams, [t.camera_id] * len(cams), gap)
        return out

    def _centred(self, vecs: np.ndarray, cams: Sequence[str]) -> np.ndarray:
        """(n, D) ``vecs`` minus their cameras' running means, re-normalised (as they are without centring)."""
        if not self.center_cameras or not self._cam_sum:
            return vecs
        return centre_by_camera(vecs, cams, self._cam_sum, self._cam_n, self.camera_prior)

    def _allowed(self, store: TrackletStore, t: Tracklet, gids: list[int]) -> np.ndarray:
        """(G,) bool: which candidate identities ``t`` may join (cannot-link, then transit windows)."""
        members = [[m for m in self.record.members(g) if m != t.tracklet_id] for g in gids]
        flat = np.array([m for ms in members for m in ms], dtype=np.int64)
        owner = np.repeat(np.arange(len(gids)), [len(ms) for ms in members])
        clash = np.zeros(len(gids), dtype=bool)
        if len(flat):
            np.logical_or.at(clash, owner, store.overlaps(t.tracklet_id, flat) | store.implausible(t.tracklet_id, flat))
        if not self.transit:
            return ~clash
        cams, times = store.last_seen(flat) if len(flat) else ([], np.zeros(0))
        ok = ~clash
        for g, gid in enumerate(gids):
            seen = [(ts, cam) for ts, cam, o in zip(times.tolist(), cams, owner.tolist()) if o == g]
            if gid in self._base:
                seen.append((self._base[gid][2], self._base[gid][1]))
            elif not seen and gid in self.gallery:  # a gallery identity this linker has not touched yet
                info = self.gallery.info(gid)
                seen.append((info.last_seen, info.last_camera))
            ok[g] &= not seen or self._transit_ok(max(seen), t)
        return ok

    def _transit_ok(self, last: tuple[float, str], t: Tracklet) -> bool:
        last_ts, last_cam = last
        window = self.transit.get((last_cam, t.camera_id)) or self.transit.get((t.camera_id, last_cam))
        gap = t.first_timestamp - last_ts
        return last_cam == t.camera_id or window is None or window[0] <= gap <= window[1]

    # ------------------------------------------------------------------ membership
    def _join(self, store: TrackletStore, t: Tracklet, gid: int | None, cache: Cache, fresh: dict) -> int:
        """Put ``t`` in ``gid`` (None: a new identity); return the id it got (-1 if the gallery refused)."""
        tid = t.tracklet_id
        if gid is None:
            try:
                gid = self.gallery.add_identity(self._own_prototypes(t), t.camera_id, t.last_timestamp)
            except GalleryFullError as exc:
                logger.error("tracklet %d stays unlinked: %s", tid, exc)
                self.record.leave(tid)
                return -1
        elif gid not in self._base and not self.record.is_live(gid) and gid in self.gallery:
            info = self.gallery.info(gid)
            self._base[gid] = (self.gallery.prototypes(gid), info.last_camera, info.last_seen)
        self.record.join(tid, gid)
        self._push(store, gid, cache, fresh, t.camera_id, t.last_timestamp)
        return gid

    def _leave(self, store: TrackletStore, tid: int, gid: int, cache: Cache, fresh: dict) -> None:
        members = self.record.leave(tid)
        if not members and gid not in self._base:
            if gid in self.gallery:
                self.gallery.remove(gid)
            self._forget_identity(gid)
            fresh.pop(gid, None)
            logger.debug("identity %d removed: its only tracklet %d moved", gid, tid)
        elif members:
            last = max((self._get(store, m, cache) for m in members), key=lambda m: m.last_timestamp)
            self._push(store, gid, cache, fresh, last.camera_id, last.last_timestamp)

    def _push(self, store: TrackletStore, gid: int, cache: Cache, fresh: dict, camera: str, ts: float) -> None:
        protos = self._prototypes(store, gid, cache)
        if gid in self.gallery and len(protos):
            self.gallery.update(gid, protos, camera, ts)
            fresh[gid] = self.gallery.prototypes(gid)

    def _forget_identity(self, gid: int) -> None:
        for tid in self.record.retire(gid):
            self._latest.pop(tid, None)
        self._base.pop(gid, None)

    def _own_prototypes(self, t: Tracklet) -> np.ndarray:
        protos = np.concatenate([t.mean[None], t.exemplars.reshape(-1, len(t.mean))])
        return protos[: self.max_prototypes]

    def _prototypes(self, store: TrackletStore, gid: int, cache: Cache, exclude: int | None = None) -> np.ndarray:
        """Means of the identity's tracklets (newest first), then their exemplars, then pre-existing ones."""
        tracklets = [self._get(store, m, cache) for m in self.record.members(gid) if m != exclude]
        tracklets = sorted((t for t in tracklets if t.mean is not None), key=lambda t: -t.last_timestamp)
        parts = [np.stack([t.mean for t in tracklets])] if tracklets else []
        parts += [t.exemplars for t in tracklets if len(t.exemplars)]
        if gid in self._base:
            parts.append(self._base[gid][0])
        if not parts:
            return np.zeros((0, self.gallery.dim), np.float32)
        return np.concatenate(parts)[: self.max_prototypes].astype(np.float32)

    def _refresh(self, store: TrackletStore, tids: list[int], cache: Cache) -> None:
        """Re-send the prototypes of identities whose tracklets gained many crops (geometric schedule)."""
        done: set[int] = set()
        for tid in tids:
            gid = self.record.global_id(tid)
            if gid is None:  # left its identity in this step's decisions (gallery full)
                continue
            t = self._get(store, tid, cache)
            self._used_n[tid] = t.n_embedded
            if gid not in done:
                done.add(gid)
                self._push(store, gid, cache, {}, t.camera_id, t.last_timestamp)

    def _touch(self, store: TrackletStore, updated: np.ndarray) -> None:
        """Record the latest sighting of every identity with an updated tracklet (keeps it from expiring)."""
        tids = [t for t in updated.tolist() if t in self.record]
        if tids:
            cams, times = store.last_seen(tids)
            for tid, cam, ts in zip(tids, cams, times.tolist()):
                gid = self.record.global_id(tid)
                if gid in self.gallery:
                    self.gallery.update(gid, None, cam, ts)

    def _repair(self, store: TrackletStore, updated: np.ndarray, cache: Cache) -> set[int]:
        """Detach tracklets whose growth made them overlap a tracklet of their identity in their camera, or in
        an adjacent view for longer than a crossing (:meth:`TrackletStore.together`)."""
        record = self.record
        pairs = [(t, m) for t in updated.tolist() if t in record for m in record.members(record.global_id(t))]
        if not pairs:
            return set()
        a, b = np.array(pairs, dtype=np.int64).T
        detached: set[int] = set()
        clash = store.overlaps(a, b)
        if self.adjacent.apart:
            clash |= store.together(a, b, self.adjacent.apart)
        for tid, other in zip(a[clash].tolist(), b[clash].tolist()):
            gid = record.global_id(tid)
            if gid is None or record.global_id(other) != gid:
                continue  # already resolved by an earlier pair
            loser = max(tid, other)  # the later tracklet leaves
            logger.info("tracklet %d left identity %d: it now overlaps tracklet %d", loser, gid, min(tid, other))
            self._leave(store, loser, gid, cache, {})
            detached.add(loser)
        return detached

    def _revisit_adjacent(self, store: TrackletStore, cache: Cache) -> set[int]:
        """Once adjacent views are known, what was decided while they were taken for separate cameras: the later
        of two tracklets of one identity in two adjacent views for longer than a crossing
        (:meth:`TrackletStore.together`: two people), the later runs of identities that now hold one view's
        fragments far apart in time (:meth:`_far_chains`), and the later tracklet of every hand-over whose two
        sides are in different identities (the seam now vouches for the crossing). Detaches the first two
        kinds; returns all three, to be decided again."""
        out: set[int] = set()
        for gid, tids in self._by_identity().items() if self.adjacent.apart else ():
            kept = [min(tids)]
            for tid in sorted(tids)[1:]:
                if not store.together(tid, kept, self.adjacent.apart).any():
                    kept.append(tid)
                    continue
                logger.info("tracklet %d left identity %d: seen beside it in an adjacent view", tid, gid)
                self._leave(store, tid, gid, cache, {})
                out.add(tid)
        out |= self._far_chains(store, cache)
        for x, y in self.adjacent.pairs:
            gx = self.record.global_id(x)
            if gx is not None and self.record.global_id(y) != gx:
                out.add(y)
        return out

    def _far_chains(self, store: TrackletStore, cache: Cache) -> set[int]:
        """Detach and return the later runs of identities seen only in one group of adjacent views whose
        members there fall into runs more than ``restitch_window_s`` apart: joined by appearance while the
        views were taken for separate cameras, now one view's fragments far apart in time (no evidence)."""
        groups = self.adjacent.groups
        out: set[int] = set()
        for gid, tids in self._by_identity().items():
            cams, last = store.last_seen(tids)
            if len({groups.get(c) for c in cams}) != 1 or cams[0] not in groups:
                continue  # seen outside one group of adjacent views: other cameras vouch for it
            first, _ = store.times(tids)
            order = np.argsort(first, kind="stable")
            reach = np.maximum.accumulate(last[order])  # the run so far ends at the latest last sighting
            breaks = np.flatnonzero(first[order][1:] - reach[:-1] > self.restitch_window_s)
            if len(breaks) == 0:
                continue
            later = np.asarray(tids, np.int64)[order][breaks[0] + 1 :].tolist()
            logger.info("identity %d: tracklets %s left it: %.0f s after the rest in one view", gid, later,
                        first[order][breaks[0] + 1] - reach[breaks[0]])  # fmt: skip
            for tid in later:
                self._leave(store, tid, gid, cache, {})
            out.update(later)
        return out

    def _by_identity(self) -> dict[int, list[int]]:
        """{global id: its tracklet ids} of the record now."""
        out: dict[int, list[int]] = {}
        for tid, gid in self.record.mapping().items():
            out.setdefault(gid, []).append(tid)
        return out

    def _get(self, store: TrackletStore, tid: int, cache: Cache) -> Tracklet:
        if tid not in cache:
            t = cache[tid] = store.get(tid)
            mean = t.mean
            if mean is not None:
                self._latest[tid] = (mean, t.camera_id)
        return cache[tid]

    def _log_unlinked(self, ended: Sequence[Tracklet]) -> None:
        for t in ended:
            if t.tracklet_id in self.record:
                continue
            if t.n_embedded == 0:
                logger.info(
                    "tracklet %d (camera %s, track %d, %d boxes) ended with no usable crop: no global id",
                    t.tracklet_id,
                    t.camera_id,
                    t.track_id,
                    t.n_boxes,
                )
            else:
                logger.debug(
                    "tracklet %d ended with %d of %d crops needed: no global id",
                    t.tracklet_id,
                    t.n_embedded,
                    self.min_crops,
                )


# ---------------------------------------------------------------------- offline
def offline_relink(
    tracklets: Sequence[Tracklet],
    *,
    threshold: Threshold = "auto",
    linkage: str = "average",
    rerank: bool = False,
    k1: int = 6,
    k2: int = 3,
    lambda_value: float = 0.3,
    center_cameras: bool = True,
    camera_prior: float = 10.0,
    calibration_fraction: float = DEFAULT_FRACTION,
    restitch_window_s: float = RESTITCH_WINDOW_S,
    handover: bool = True,
    handoffs: bool = True,
    consistent: bool = True,
    report: dict | None = None,
) -> dict[int, int]:
    """Cluster all tracklets on their mean embeddings; return {tracklet_id: global id 1..K}.

    Agglomerative clustering (``linkage`` "average", "complete" or "single") on cosine distance, merging
    while the linkage similarity is >= ``threshold``; never merges clusters holding a cannot-link pair.
    ``threshold="auto"`` fits it on the tracklets themselves (:func:`calibrate_tracklets`).
    ``rerank`` uses k-reciprocal Jaccard distances from :mod:`reid.cluster` over the tracklets (``k1``,
    ``k2`` count tracklets, not images; distance = (1 - lambda_value) * jaccard + lambda_value * cosine
    distance). With "auto" and ``rerank`` the cut is the calibrated cosine threshold carried into that
    scale: a pair at exactly the cosine threshold must share a ``1 - RERANK_JACCARD`` (21 %) overlap of
    k-reciprocal neighbourhoods, a more similar pair less (``RERANK_JACCARD`` = 0.79 is a documented
    constant: Jaccard distances are rank-based, the same for every embedder's scale).
    ``center_cameras``: means are first centred on their
    camera's mean over all tracklets (module docstring; ``camera_prior`` as online). Tracklets without an
    embedding get -1. Ids are numbered by each cluster's smallest tracklet id. ``report``, when given,
    receives ``threshold`` and, with "auto", ``calibration`` (the :class:`Calibration`).
    ``handoffs``: people crossing the seam of two adjacent views are must-links
    (:mod:`pipeline.identity.handoff`, its maps fitted on a first clustering without them; the clustering is
    then redone with them; ``report["handoffs"]``: how many).
    """
    threshold = check_threshold(threshold)
    if linkage not in ("average", "complete", "single"):
        raise ValueError(f"linkage: expected 'average', 'complete' or 'single', got {linkage!r}")
    with_mean = [t for t in tracklets if t.mean is not None]
    out = {t.tracklet_id: -1 for t in tracklets}
    if not with_mean:
        return out
    feats = np.stack([t.mean for t in with_mean])
    cams = [t.camera_id for t in with_mean]
    sums, counts = camera_sums(feats, cams)
    if center_cameras:
        feats = centre_by_camera(feats, cams, sums, counts, camera_prior)
    feats = feats.astype(np.float64)
    sims = feats @ feats.T
    dist = np.clip(1.0 - sims, 0.0, 2.0)
    forbidden = cannot_link(with_mean) | motion_cannot_link(with_mean)
    ignored = same_camera_far(with_mean, restitch_window_s)
    calibration = None
    if threshold == "auto":
        calibration = calibrate_tracklets(
            with_mean, center_cameras=center_cameras, camera_prior=camera_prior, fraction=calibration_fraction
        )
        threshold = cosine_threshold = calibration.threshold
        if consistent:
            cosine_threshold, steps = consistent_threshold(
                sims, np.asarray(cams), forbidden, calibration.threshold, calibration.m_pos,
                linkage=linkage, ignored=ignored,
            )  # fmt: skip
            threshold = cosine_threshold
            said = (f"raised {calibration.threshold:.3f} -> {cosine_threshold:.3f} in {steps} steps, where the "
                    "nearest outsiders of other cameras sit" if steps else "kept: nearest outsiders sit below it")
            if steps:
                logger.info("offline linking: threshold %s", said)
            if report is not None:
                report["consistency"] = said
        if rerank:
            threshold = lambda_value * threshold + (1.0 - lambda_value) * (1.0 - RERANK_JACCARD)
        logger.info("offline linking: %s%s", calibration.describe(), f", re-ranked cut {threshold:.3f}" * rerank)
        if report is not None:
            report["calibration"] = calibration
    else:
        cosine_threshold = float(threshold)
    if report is not None:
        report["threshold"] = float(threshold)
    timing = NO_HANDOVER
    if handover:
        first = np.array([t.first_timestamp for t in with_mean], np.float64)
        last = np.array([t.last_timestamp for t in with_mean], np.float64)
        timing = fit_handover(sims, cams, first, last, cosine_threshold, _scale_span(calibration))
        logger.info("offline linking: %s", timing.describe())
        if report is not None:
            report["handover"] = timing
    if rerank:
        from reid.cluster import k_reciprocal_jaccard

        k1, k2 = min(k1, len(feats) - 1), min(k2, len(feats) - 1)
        jaccard = np.asarray(k_reciprocal_jaccard(feats.astype(np.float32), k1, k2), dtype=np.float64)
        dist = (1.0 - lambda_value) * jaccard + lambda_value * dist
    if timing.active:  # a plausible hand-over brings a pair closer, an implausible one pushes it apart
        dist = dist - timing.bonus_matrix(cams, first, last) * (lambda_value if rerank else 1.0)
    labels = constrained_agglomerative(dist, forbidden, 1.0 - threshold, linkage, ignored)
    if handoffs:
        found = find_handoffs(with_mean, {t.tracklet_id: int(c) for t, c in zip(with_mean, labels)})
        index = {t.tracklet_id: i for i, t in enumerate(with_mean)}
        i, j = (np.array([index[p[k]] for p in found.pairs], np.int64) for k in (0, 1))
        allowed = ~forbidden[i, j]
        if report is not None:
            report["handoffs"] = int(allowed.sum())
        if found.maps:
            logger.info("offline linking: %d hand-overs between adjacent views are must-links", int(allowed.sum()))
            ignored = same_camera_far(with_mean, restitch_window_s, found.groups)
            labels = constrained_agglomerative(dist, forbidden, 1.0 - threshold, linkage, ignored,
                                               np.column_stack([i[allowed], j[allowed]]))  # fmt: skip
    order = np.argsort([t.tracklet_id for t in with_mean], kind="stable")
    _, first_seen = np.unique(labels[order], return_index=True)
    renumber = np.empty(labels.max() + 1, np.int64)
    renumber[labels[order][np.sort(first_seen)]] = np.arange(1, len(first_seen) + 1)  # ids start at 1, as MOT's
    out.update({t.tracklet_id: int(renumber[label]) for t, label in zip(with_mean, labels)})
    return out


def _scale_span(calibration: Calibration | None) -> float:
    """The similarity scale strangers -> tracklet halves (the prior's with a given threshold)."""
    if calibration is None or not np.isfinite(calibration.m_pos - calibration.m_neg):
        return PRIOR_POSITIVE - PRIOR_NEGATIVE
    return calibration.m_pos - calibration.m_neg


def calibrate_tracklets(
    tracklets: Sequence[Tracklet],
    *,
    center_cameras: bool = True,
    camera_prior: float = 10.0,
    fraction: float = DEFAULT_FRACTION,
) -> Calibration:
    """The "auto" threshold of a set of finished tracklets (in the space offline linking compares in)."""
    with_mean = [t for t in tracklets if t.mean is not None]
    if not with_mean:
        return prior_calibration(fraction)
    means = np.stack([t.mean for t in with_mean])
    cams = [t.camera_id for t in with_mean]
    dim = means.shape[1]
    halves = np.stack([np.stack(t.halves) if t.halves is not None else np.full((2, dim), np.nan, np.float32)
                       for t in with_mean])  # fmt: skip
    half_a, half_b = halves[:, 0], halves[:, 1]
    if center_cameras:
        sums, counts = camera_sums(means, cams)
        means = centre_by_camera(means, cams, sums, counts, camera_prior)
        half_a = centre_finite_rows(half_a, cams, sums, counts, camera_prior)
        half_b = centre_finite_rows(half_b, cams, sums, counts, camera_prior)
    first = np.array([t.first_frame for t in with_mean], np.int64)
    last = np.array([t.last_frame for t in with_mean], np.int64)
    return fit_threshold(means, half_a, half_b, cams, first, last, fraction=fraction)
