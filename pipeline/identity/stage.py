"""The identity stage: embed chosen boxes of all cameras in one call, grow tracklets, link them online.

Per batch of frames (one per camera): :class:`~pipeline.embed.EmbedSelector` picks boxes worth a crop,
:class:`~pipeline.embed.EmbedBatcher` embeds them across cameras, :class:`~pipeline.identity.tracklets.TrackletStore`
accumulates them, and :class:`~pipeline.identity.linker.OnlineLinker` gives mature tracklets a global id from the
shared :class:`~pipeline.identity.gallery.Gallery`, writing its decisions into the
:class:`~pipeline.identity.record.IdentityRecord`. At the end, :meth:`IdentityStage.finish` returns the final
tracklet → global id mapping (online, or re-clustered offline).

The stage is two halves joined by :class:`~pipeline.identity.updates.TrackletUpdate`: :class:`EmbedStep` needs
the images, :class:`LinkStep` never does. The local engine runs both in one process; the Ray engine runs the
first in its camera workers and the second in its identity service.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from configs.schema import EmbedConfig, GalleryConfig, LinkingConfig
from pipeline.embed import EmbedBatcher, EmbedSelector, crop_boxes
from pipeline.identity.gallery import Gallery
from pipeline.identity.linker import OnlineLinker, offline_relink
from pipeline.identity.record import IdentityRecord
from pipeline.identity.tracklets import Tracklet, TrackletStore, rejoin_lonely_cuts
from pipeline.identity.updates import TrackletUpdate
from pipeline.records import Frame, embeddings_of, with_ids

log = logging.getLogger(__name__)

THUMB_SIZE = (64, 128)  # width, height of contact-sheet thumbnails


@dataclass
class ThumbnailKeeper:
    """Up to ``per_track`` thumbnails per (camera, track), spread over the track's life (reservoir)."""

    per_track: int = 6
    seed: int = 0

    def __post_init__(self) -> None:
        self.thumbs: dict[tuple[str, int], list[np.ndarray]] = {}
        self._seen: dict[tuple[str, int], int] = {}
        self._rng = np.random.default_rng(self.seed)

    def add(self, frame: Frame, detections: sv.Detections, chosen: np.ndarray) -> None:
        rows = np.flatnonzero(chosen)
        if len(rows) == 0:
            return
        crops, valid = crop_boxes(frame.image, detections.xyxy[rows])
        for track_id, crop in zip(detections.tracker_id[rows[valid]].tolist(), crops):
            key = (frame.camera_id, int(track_id))
            seen = self._seen.get(key, 0) + 1
            self._seen[key] = seen
            kept = self.thumbs.setdefault(key, [])
            slot = len(kept) if len(kept) < self.per_track else int(self._rng.integers(seen))
            if slot >= self.per_track:
                continue
            thumb = cv2.resize(crop, THUMB_SIZE, interpolation=cv2.INTER_AREA)
            if slot == len(kept):
                kept.append(thumb)
            else:
                kept[slot] = thumb


def build_gallery(dim: int, g: GalleryConfig) -> Gallery:
    """The run's gallery, with the identities of ``g.load`` when set (ValueError names a bad file)."""
    gallery = Gallery(dim, index=g.index, device=g.device, max_identities=g.max_identities, expiry_s=g.expiry_s)
    if g.load is not None:
        gallery.load(g.load)
        log.info("gallery: %d identities loaded from %s", len(gallery), g.load)
    return gallery


class EmbedStep:
    """Crop choice and ReID for a batch of frames: the half of the identity stage that needs the images.

    Returns the detections with their ``embedding`` column and one :class:`TrackletUpdate` per frame, and
    keeps contact-sheet thumbnails of the embedded crops.
    """

    def __init__(self, embedder: Any, camera_ids: Sequence[str], embed: EmbedConfig) -> None:
        self.embedding_dim = int(embedder.embedding_dim)
        options = {"min_height": embed.min_height, "min_width": embed.min_width, "max_overlap": embed.max_overlap}
        gaps = {"every_k": embed.every_k, "slow_after": embed.slow_after, "max_every_k": embed.max_every_k}
        self.selectors = {cid: EmbedSelector(**gaps, **options) for cid in camera_ids}
        self.batcher = EmbedBatcher(embedder, max_batch=embed.batch_size)
        self.thumbnails = ThumbnailKeeper()
        self.crops_embedded = 0

    def __call__(
        self, frames: Sequence[Frame], tracked: Sequence[sv.Detections]
    ) -> tuple[list[sv.Detections], list[TrackletUpdate]]:
        embedded, updates = self.many([frames], [tracked])
        return embedded[0], updates[0]

    def many(
        self, batches: Sequence[Sequence[Frame]], tracked: Sequence[Sequence[sv.Detections]]
    ) -> tuple[list[list[sv.Detections]], list[list[TrackletUpdate]]]:
        """:meth:`__call__` for consecutive batches at once: boxes are chosen batch by batch in order (the
        choice never depends on an embedding), then the crops of all of them go through one embedder call."""
        if len(batches) != len(tracked):
            raise ValueError(f"batches, tracked: expected equal lengths, got {len(batches)}, {len(tracked)}")
        frames = [f for batch in batches for f in batch]
        dets = [d for batch in tracked for d in batch]
        if len(frames) != len(dets):
            raise ValueError(f"expected one Detections per frame, got {len(dets)} for {len(frames)} frames")
        masks = [self.selectors[f.camera_id](d, f) for f, d in zip(frames, dets)]
        embedded = self.batcher(frames, dets, masks)
        updates = []
        for frame, d, mask in zip(frames, embedded, masks):
            updates.append(TrackletUpdate.of(frame.camera_id, frame.index, frame.timestamp, d))
            emb = embeddings_of(d)
            if emb is not None:
                usable = mask & np.isfinite(emb).all(axis=1)
                self.crops_embedded += int(usable.sum())
                self.thumbnails.add(frame, d, usable)
        bounds = np.cumsum([0] + [len(b) for b in batches])
        return (
            [embedded[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
            [updates[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
        )


class LinkStep:
    """Tracklets, online linking and the identity record for a batch of :class:`TrackletUpdate`: the half
    of the identity stage that never sees an image (the Ray engine's identity service runs it)."""

    def __init__(
        self, dim: int, camera_ids: Sequence[str], linking: LinkingConfig, gallery: Gallery | None = None
    ) -> None:
        self.gallery = build_gallery(dim, linking.gallery) if gallery is None else gallery
        if self.gallery.dim != dim:
            raise ValueError(f"gallery: expected embeddings of dim {dim} (the embedder's), got {self.gallery.dim}")
        self.store = TrackletStore()
        self.record = IdentityRecord()  # the one owner of tracklet id -> global id (the linker writes it)
        transit = {tuple(w.cameras): (w.min_s, w.max_s) for w in linking.transit}
        self.linker = OnlineLinker(
            self.gallery, threshold=linking.threshold, margin=linking.margin, min_crops=linking.min_crops,
            revise_until_crops=linking.revise_until_crops, transit=transit or None, cameras=list(camera_ids),
            center_cameras=linking.center_cameras, calibration_fraction=linking.calibration_fraction,
            restitch_window_s=linking.restitch_window_s, record=self.record, split_switches=linking.split_switches,
            handover=linking.handover,
            handoffs=linking.handoffs,
        )  # fmt: skip
        self.linking = linking
        self.offline_report: dict = {}

    def __call__(self, updates: Sequence[TrackletUpdate]) -> list[np.ndarray]:
        """Add the updates, link; return each update's (N,) int64 tracklet ids (global ids: :attr:`record`)."""
        if not updates:
            return []
        for u in updates:
            self.store.update(u.camera_id, u.frame_index, u.timestamp, u.detections(), quality=u.quality)
        now = max(u.timestamp for u in updates)
        ended = self.store.ended({u.camera_id: u.timestamp for u in updates}, self.linking.tracklet_timeout_s)
        self.linker.step(self.store, now, ended)
        return [self.store.open_ids(u.camera_id, u.track_ids) for u in updates]

    def finish(self, offline: bool | None = None) -> tuple[list[Tracklet], dict[int, int]]:
        """All tracklets (``global_id`` final) and the final {tracklet_id: global_id}; offline re-clustering
        when asked, written into :attr:`record` (its events stamped with the last stream time)."""
        tracklets = self.store.all()
        if offline if offline is not None else self.linking.offline:
            mapping = offline_relink(
                tracklets, threshold=self.linking.offline_threshold, rerank=self.linking.rerank,
                center_cameras=self.linking.center_cameras, calibration_fraction=self.linking.calibration_fraction,
                restitch_window_s=self.linking.restitch_window_s, handover=self.linking.handover,
                handoffs=self.linking.handoffs, consistent=self.linking.consistent_threshold,
                report=self.offline_report,
            )  # fmt: skip
            log.info(
                "offline re-clustering: %d tracklets -> %d identities",
                len(tracklets),
                len(set(mapping.values()) - {-1}),
            )
            self.record.assign_all(mapping)
            self.record.publish(max((t.last_timestamp for t in tracklets), default=0.0))
        if self.store.split_parent:  # a cut whose piece found no other person is undone (rejoin_lonely_cuts)
            labelled = {t.tracklet_id: t.global_id for t in self.record.label(tracklets)}
            rejoined = rejoin_lonely_cuts(labelled, self.store.split_parent, tracklets)
            if rejoined != labelled:
                self.record.assign_all(rejoined)
                self.record.publish(max((t.last_timestamp for t in tracklets), default=0.0))
        tracklets = self.record.label(tracklets)
        return tracklets, {t.tracklet_id: t.global_id for t in tracklets}

    def conclude(self, offline: bool) -> dict[str, Any]:
        """:meth:`finish` and what the run summary says about linking: ``tracklets``, ``mapping``,
        ``offline``, ``linking`` (thresholds and calibrations, online and offline) and ``split_parent`` (the
        cuts, kept in ``tracklets.npz`` so that ``relink`` can undo lonely ones as the run did)."""
        tracklets, mapping = self.finish(offline)
        online = self.linker.calibration
        linking = {"online_threshold": round(online.threshold, 4), "online_calibration": online.describe(),
                   "switches_split": self.store.splits}  # fmt: skip
        if self.linker.handover:
            linking["online_handover"] = self.linker.timing.describe()
        if offline:
            linking["offline_threshold"] = round(self.offline_report.get("threshold", float("nan")), 4)
            if "calibration" in self.offline_report:
                linking["offline_calibration"] = self.offline_report["calibration"].describe()
            if "consistency" in self.offline_report:
                linking["offline_consistency"] = self.offline_report["consistency"]
            if "handover" in self.offline_report:
                linking["offline_handover"] = self.offline_report["handover"].describe()
        return {"tracklets": tracklets, "mapping": mapping, "offline": offline, "linking": linking,
                "split_parent": dict(self.store.split_parent)}  # fmt: skip

    def save_gallery(self, path: Path) -> None:
        self.gallery.save(path)


class IdentityStage:
    """Embed → tracklets → online linking for every batch (:class:`EmbedStep` then :class:`LinkStep`);
    see the module docstring. ``gallery`` is built from ``linking.gallery`` when not given (``build_gallery``).
    """

    def __init__(
        self, embedder: Any, camera_ids: Sequence[str], embed: EmbedConfig, linking: LinkingConfig,
        gallery: Gallery | None = None,
    ) -> None:  # fmt: skip
        self.embed = EmbedStep(embedder, camera_ids, embed)
        self.link = LinkStep(self.embed.embedding_dim, camera_ids, linking, gallery)
        self.gallery, self.store, self.record, self.linker = (
            self.link.gallery, self.link.store, self.link.record, self.link.linker
        )
        self.thumbnails = self.embed.thumbnails

    @property
    def crops_embedded(self) -> int:
        return self.embed.crops_embedded

    @property
    def offline_report(self) -> dict:
        return self.link.offline_report

    def __call__(self, frames: Sequence[Frame], tracked: Sequence[sv.Detections]) -> list[sv.Detections]:
        """Return ``tracked`` with the ``embedding`` (where embedded), ``global_id`` and ``tracklet_id`` columns."""
        return self.many([frames], [tracked])[0]

    def many(
        self, batches: Sequence[Sequence[Frame]], tracked: Sequence[Sequence[sv.Detections]]
    ) -> list[list[sv.Detections]]:
        """:meth:`__call__` for consecutive batches: one embedder call for all their crops
        (:meth:`EmbedStep.many`), then each batch linked in order, so every id is that of calling batch by
        batch (up to the embedder's arithmetic, which may differ in the last bits with the batch size)."""
        embedded, updates = self.embed.many(batches, tracked)
        out = []
        for dets, batch_updates in zip(embedded, updates):
            ids = self.link(batch_updates)
            out.append([with_ids(d, global_ids=self.record.global_ids(t), tracklet_ids=t) for d, t in zip(dets, ids)])
        return out

    def finish(self, offline: bool | None = None) -> tuple[list[Tracklet], dict[int, int]]:
        """See :meth:`LinkStep.finish`."""
        return self.link.finish(offline)

    def save_gallery(self, path: Path) -> None:
        self.link.save_gallery(path)
